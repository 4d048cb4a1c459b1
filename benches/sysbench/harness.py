"""sysbench harness: MariaDB direct vs an HAProxy `mode tcp` relay vs shardgate.

Every target talks to the same MariaDB primary, so the comparison is what each proxy
costs. Runs are interleaved (A B C A B C ...) and repeated; the table shows medians,
ratios, p95 latency, proxy CPU time per query (user+sys from /proc) and shardgate's
peak RSS. Speed targets live here, never in tests.

The sharded point select runs on two layouts: shards on two nodes (two MariaDB
servers), and shards on one node (two physical tables per table on the pass-through's
server). On a small machine the servers compete with each other and with the proxy
for the same cores, so the table also shows MariaDB's CPU per query: the one-node
layout measures what shardgate's sharded path costs, the two-node layout what the
whole box does.
"""

import argparse
import hashlib
import os
import re
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

USER = PASSWORD = "sandbox"
SHARDED_DB = "sbtest_sharded"
ONE_NODE_DB = "sbtest_one_node"
TICK = os.sysconf("SC_CLK_TCK")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def mariadb_cpu_seconds():
    """CPU time of every MariaDB server on the machine: the benchmark's sandbox."""
    total = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() != "mariadbd":
                    continue
            total += cpu_seconds(pid)
        except OSError:
            continue
    return total


def rss_kib(pid, key="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def wait_line(proc, pattern, timeout):
    deadline = time.time() + timeout
    lines = []
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(pattern, line)
        if m:
            return m, lines
    raise RuntimeError("".join(lines) or f"no output matching {pattern}")


class Targets:
    def __init__(self, args, work):
        self.procs = []
        self.work = work
        log("starting the sandbox (shardgate playground) ...")
        pg = self.spawn([args.shardgate, "playground", "--listen", "127.0.0.1:0"])
        text = ""
        deadline = time.time() + 180
        while "Press Ctrl-C" not in text and time.time() < deadline:
            line = pg.stdout.readline()
            if not line:
                raise RuntimeError("playground exited:\n" + text)
            text += line
        m = re.search(r"data node dn1: primary 127\.0\.0\.1:(\d+)", text)
        self.primary = int(m.group(1))
        m = re.search(r"data node dn2: primary 127\.0\.0\.1:(\d+)", text)
        self.primary2 = int(m.group(1))

        cfg = os.path.join(work, "haproxy.cfg")
        hport = free_port()
        with open(cfg, "w") as f:
            f.write(
                "global\n  maxconn 4000\ndefaults\n  mode tcp\n  timeout connect 5s\n"
                "  timeout client 1h\n  timeout server 1h\n"
                f"listen mysql\n  bind 127.0.0.1:{hport}\n  server db 127.0.0.1:{self.primary}\n"
            )
        haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
        self.haproxy = self.spawn([haproxy, "-f", cfg, "-db"])
        self.haproxy_port = hport

        self.shardgate, self.shardgate_port = self.passthrough(args.shardgate)
        # A second build (e.g. main before a change), run beside the first.
        self.baseline = self.baseline_port = None
        if args.baseline:
            self.baseline, self.baseline_port = self.passthrough(args.baseline)
        wait_port(self.haproxy_port)

        # shardgate with sbtest1..4 sharded by id (mod 2) over both groups' primaries,
        # and again over two tables each on dn1 alone.
        tables = "".join(
            f'[schemas.{SHARDED_DB}.tables.sbtest{i}]\nkind = "sharded"\ncolumn = "id"\nrule = "by_id"\n'
            f'nodes = ["dn1", "dn2"]\n' for i in range(1, 5))
        tables += f'[schemas.{ONE_NODE_DB}]\nnode = "dn1"\n' + "".join(
            f'[schemas.{ONE_NODE_DB}.tables.sbtest{i}]\nkind = "sharded"\ncolumn = "id"\nrule = "by_id"\n'
            f'nodes = ["dn1"]\ntables_per_node = 2\n' for i in range(1, 5))
        sharded_cfg = os.path.join(work, "sharded.toml")
        with open(sharded_cfg, "w") as f:
            f.write(
                f'[server]\nlisten = "127.0.0.1:0"\n[[users]]\nname = "{USER}"\npassword = "{PASSWORD}"\n'
                f'[nodes.dn1]\nprimary = "127.0.0.1:{self.primary}"\nuser = "{USER}"\npassword = "{PASSWORD}"\n'
                f'[nodes.dn2]\nprimary = "127.0.0.1:{self.primary2}"\nuser = "{USER}"\npassword = "{PASSWORD}"\n'
                f'[rules.by_id]\nalgorithm = "mod"\nshards = 2\n[schemas.{SHARDED_DB}]\nnode = "dn1"\n{tables}')
        self.sharded, self.sharded_port = self.configured(args.shardgate, sharded_cfg)
        self.baseline_sharded = self.baseline_sharded_port = None
        if args.baseline:
            self.baseline_sharded, self.baseline_sharded_port = self.configured(args.baseline, sharded_cfg)

    def passthrough(self, binary):
        p = self.spawn(
            [binary, "--listen", "127.0.0.1:0", "--primary", f"127.0.0.1:{self.primary}",
             "--user", USER, "--password", PASSWORD],
            env={**os.environ, "SHARDGATE_LOG": "warn"},
        )
        m, _ = wait_line(p, r"listening on 127\.0\.0\.1:(\d+)", 30)
        return p, int(m.group(1))

    def configured(self, binary, config):
        p = self.spawn([binary, "--config", config], env={**os.environ, "SHARDGATE_LOG": "warn"})
        m, _ = wait_line(p, r"listening on 127\.0\.0\.1:(\d+)", 30)
        return p, int(m.group(1))

    def spawn(self, cmd, env=None):
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        self.procs.append(p)
        return p

    def all(self):
        targets = [
            ("direct", self.primary, None),
            ("haproxy", self.haproxy_port, self.haproxy.pid),
            ("shardgate", self.shardgate_port, self.shardgate.pid),
        ]
        if self.baseline:
            targets.append(("baseline", self.baseline_port, self.baseline.pid))
        return targets

    def sharded_pair(self):
        pair = [
            ("pass-through", self.shardgate_port, "sbtest", self.shardgate.pid),
            ("sharded", self.sharded_port, SHARDED_DB, self.sharded.pid),
            ("sharded, one node", self.sharded_port, ONE_NODE_DB, self.sharded.pid),
        ]
        if self.baseline:
            pair.append(("baseline sharded", self.baseline_sharded_port, SHARDED_DB, self.baseline_sharded.pid))
        return pair

    def close(self):
        for p in reversed(self.procs):
            p.terminate()
        for p in reversed(self.procs):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port):
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def sysbench(test, port, threads, mode, seconds, action="run", table_size=10000, db="sbtest", extra=()):
    cmd = [
        "sysbench", test, "--mysql-host=127.0.0.1", f"--mysql-port={port}",
        f"--mysql-user={USER}", f"--mysql-password={PASSWORD}", f"--mysql-db={db}", *extra,
        "--tables=4", f"--table-size={table_size}", f"--threads={threads}",
        f"--time={seconds}", f"--db-ps-mode={mode}", "--percentile=95", action,
    ]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
    return r.stdout


def parse(out):
    q = re.search(r"queries:\s+(\d+)\s+\((\d+\.\d+) per sec", out)
    p95 = re.search(r"95th percentile:\s+(\d+\.\d+)", out)
    errs = re.search(r"ignored errors:\s+(\d+)", out)
    return int(q.group(1)), float(q.group(2)), float(p95.group(1)), int(errs.group(1)) if errs else 0


def idle_connections_rss(port, pid, count):
    """Opens `count` logged-in idle client connections; returns VmRSS (KiB) with them open."""
    socks = []
    try:
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", port))
            greeting = read_packet(s)
            # protocol 10: version NUL, conn id, 8 bytes scramble, filler, ... 12 more bytes.
            end = greeting.index(b"\0", 1)
            pos = end + 1 + 4
            nonce = greeting[pos:pos + 8]
            pos += 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10
            nonce += greeting[pos:pos + 12]
            h1 = hashlib.sha1(PASSWORD.encode()).digest()
            h2 = hashlib.sha1(nonce + hashlib.sha1(h1).digest()).digest()
            token = bytes(a ^ b for a, b in zip(h1, h2))
            caps = 0x00000200 | 0x00008000 | 0x00080000 | 0x00000001
            body = struct.pack("<IIB23x", caps, 1 << 24, 45) + USER.encode() + b"\0"
            body += bytes([len(token)]) + token + b"mysql_native_password\0"
            s.sendall(struct.pack("<I", len(body))[:3] + b"\x01" + body)
            ok = read_packet(s)
            if ok[0] != 0:
                raise RuntimeError(f"login failed: {ok!r}")
            socks.append(s)
        time.sleep(1)
        return rss_kib(pid)
    finally:
        for s in socks:
            s.close()


def read_packet(s):
    head = recv_exact(s, 4)
    return recv_exact(s, head[0] | head[1] << 8 | head[2] << 16)


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise RuntimeError("connection closed")
        buf += chunk
    return buf


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shardgate", required=True)
    ap.add_argument("--tests", default="oltp_point_select,oltp_read_only,oltp_read_write")
    ap.add_argument("--threads", default="1,8,32")
    ap.add_argument("--modes", default="auto,disable")
    ap.add_argument("--time", type=int, default=10, help="seconds per run")
    ap.add_argument("--repeat", type=int, default=3, help="runs per target and cell")
    ap.add_argument("--idle", type=int, default=1000, help="idle connections for the RSS check")
    ap.add_argument("--quick", action="store_true", help="point_select and read_write, 8 threads, 5 s, 2 repeats")
    ap.add_argument("--baseline", help="a second shardgate binary (e.g. main before a change), measured beside --shardgate")
    args = ap.parse_args()
    if args.quick:
        args.tests, args.threads, args.time, args.repeat = "oltp_point_select,oltp_read_write", "8", 5, 2

    work = tempfile.mkdtemp(prefix="shardgate-bench-")
    targets = Targets(args, work)
    try:
        subprocess.run(
            ["mariadb", "--no-defaults", "-h127.0.0.1", f"-P{targets.primary}", f"-u{USER}", f"-p{PASSWORD}",
             "-e", "CREATE DATABASE IF NOT EXISTS sbtest"], check=True)
        log("preparing sbtest (4 tables x 10000 rows) ...")
        sysbench("oltp_read_write", targets.primary, 4, "disable", 1, action="prepare")
        for port in (targets.primary, targets.primary2):
            subprocess.run(
                ["mariadb", "--no-defaults", "-h127.0.0.1", f"-P{port}", f"-u{USER}", f"-p{PASSWORD}",
                 "-e", f"CREATE DATABASE IF NOT EXISTS {SHARDED_DB}; CREATE DATABASE IF NOT EXISTS {ONE_NODE_DB}"],
                check=True)
        log("preparing the sharded sbtest through shardgate (ids split over two nodes, and over one) ...")
        for db in (SHARDED_DB, ONE_NODE_DB):
            sysbench("oltp_point_select", targets.sharded_port, 1, "disable", 1, action="prepare",
                     db=db, extra=("--auto_inc=off",))
        sharded_rows = []
        rows = []
        sg_pid = targets.shardgate.pid
        for test in args.tests.split(","):
            for threads in [int(t) for t in args.threads.split(",")]:
                for mode in args.modes.split(","):
                    results = {name: [] for name, _, _ in targets.all()}
                    for rep in range(args.repeat):
                        for name, port, pid in targets.all():
                            cpu0 = cpu_seconds(pid) if pid else 0
                            out = sysbench(test, port, threads, mode, args.time)
                            queries, qps, p95, errs = parse(out)
                            cpu = (cpu_seconds(pid) - cpu0) if pid else 0
                            results[name].append((qps, p95, cpu * 1e6 / max(queries, 1), errs))
                            log(f"{test} t={threads} ps={mode} #{rep + 1} {name}: {qps:.0f} qps p95 {p95} ms")
                    med = {n: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v),
                               statistics.median(r[2] for r in v), sum(r[3] for r in v)) for n, v in results.items()}
                    rows.append((test, threads, mode, med))
                    if test == "oltp_point_select":
                        # Sharded vs pass-through, interleaved, in the same conditions.
                        pair = {name: [] for name, _, _, _ in targets.sharded_pair()}
                        for rep in range(args.repeat):
                            for name, port, db, pid in targets.sharded_pair():
                                cpu0, db0 = cpu_seconds(pid), mariadb_cpu_seconds()
                                out = sysbench(test, port, threads, mode, args.time, db=db)
                                queries, qps, p95, errs = parse(out)
                                per_query = 1e6 / max(queries, 1)
                                cpu = (cpu_seconds(pid) - cpu0) * per_query
                                db_cpu = (mariadb_cpu_seconds() - db0) * per_query
                                pair[name].append((qps, p95, errs, cpu, db_cpu))
                                log(f"{test} t={threads} ps={mode} #{rep + 1} shardgate {name}: {qps:.0f} qps p95 {p95} ms")
                        sharded_rows.append((threads, mode, {
                            n: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v),
                                sum(x[2] for x in v), statistics.median(x[3] for x in v),
                                statistics.median(x[4] for x in v)) for n, v in pair.items()}))
        idle_rss = idle_connections_rss(targets.shardgate_port, sg_pid, args.idle) if args.idle else 0
        peak = rss_kib(sg_pid, "VmHWM")
    finally:
        targets.close()
        shutil.rmtree(work, ignore_errors=True)

    base = bool(args.baseline)
    print("| test | threads | ps-mode | direct qps | haproxy qps | shardgate qps | sg/direct | sg/haproxy "
          "| p95 ms direct / haproxy / sg | CPU µs/query haproxy / sg | errors |"
          + (" baseline qps | sg/baseline | CPU µs/query baseline |" if base else ""))
    print("|---|---|---|---|---|---|---|---|---|---|---|" + ("---|---|---|" if base else ""))
    for test, threads, mode, m in rows:
        d, h, s = m["direct"], m["haproxy"], m["shardgate"]
        errors = d[3] + h[3] + s[3] + (m["baseline"][3] if base else 0)
        line = (f"| {test} | {threads} | {mode} | {d[0]:.0f} | {h[0]:.0f} | {s[0]:.0f} | {s[0] / d[0]:.2f} "
                f"| {s[0] / h[0]:.2f} | {d[1]:.2f} / {h[1]:.2f} / {s[1]:.2f} | {h[2]:.1f} / {s[2]:.1f} | {errors} |")
        if base:
            b = m["baseline"]
            line += f" {b[0]:.0f} | {s[0] / b[0]:.2f} | {b[2]:.1f} |"
        print(line)
    print()
    if sharded_rows:
        print("Sharded `oltp_point_select` vs pass-through: sbtest1..4 sharded by id over two nodes, "
              "and over two tables on one node (CPU µs/query: shardgate / all MariaDB servers):")
        print()
        print("| threads | ps-mode | pass-through qps | sharded qps | sharded/pass-through | one-node qps "
              "| one-node/pass-through | CPU pass-through | CPU sharded | CPU one-node | p95 ms pass-through / sharded / one-node | errors |"
              + (" baseline sharded qps | sharded/baseline sharded |" if base else ""))
        print("|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|---|" if base else ""))
        for threads, mode, m in sharded_rows:
            a, b, o = m["pass-through"], m["sharded"], m["sharded, one node"]
            line = (f"| {threads} | {mode} | {a[0]:.0f} | {b[0]:.0f} | {b[0] / a[0]:.2f} | {o[0]:.0f} | {o[0] / a[0]:.2f} "
                    f"| {a[3]:.1f} / {a[4]:.1f} | {b[3]:.1f} / {b[4]:.1f} | {o[3]:.1f} / {o[4]:.1f} "
                    f"| {a[1]:.2f} / {b[1]:.2f} / {o[1]:.2f} | {a[2] + b[2] + o[2]} |")
            if base:
                c = m["baseline sharded"]
                line += f" {c[0]:.0f} | {b[0] / c[0]:.2f} |"
            print(line)
        print()
    print(f"shardgate peak RSS: {peak / 1024:.1f} MiB; with {args.idle} idle client connections: "
          f"{idle_rss / 1024:.1f} MiB")
    print(f"({args.repeat} interleaved runs of {args.time} s per cell, medians; "
          f"{os.cpu_count()} CPUs; sysbench 4 tables x 10000 rows)")


if __name__ == "__main__":
    main()
