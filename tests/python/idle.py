"""Opens N PyMySQL connections with the driver's defaults (autocommit off, which
PyMySQL sets with SET AUTOCOMMIT = 0 as it connects), prints 'open N', and keeps them
idle until its stdin closes. Run by tests/tests/clients.rs.

usage: idle.py HOST PORT USER PASSWORD N
"""

import resource
import sys

import pymysql

HOST, PORT, USER, PASSWORD, N = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, N + 256)), hard))
conns = [pymysql.connect(host=HOST, port=PORT, user=USER, password=PASSWORD) for _ in range(N)]
assert all(not c.get_autocommit() for c in conns)
print(f"open {len(conns)}", flush=True)
sys.stdin.read()
for c in conns:
    c.close()
