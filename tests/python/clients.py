"""Real Python drivers through shardgate: PyMySQL and mysql-connector-python (its
pure-Python protocol; the wheel on PyPI ships no C extension). Run by tests/tests/clients.rs against a live sandbox; prints
'N passed, M failed' and exits non-zero on any failure.

usage: clients.py HOST PORT USER PASSWORD DATABASE
"""

import datetime
import decimal
import os
import sys

import mysql.connector
import pymysql

from checks import check, finish
from pymysql.constants import CLIENT

HOST, PORT, USER, PASSWORD, DB = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ROW = (1, decimal.Decimal("12.50"), datetime.datetime(2024, 2, 29, 13, 45, 1), b"\x00\xffbin", "héllo ✓", None)


def pymysql_conn(**kw):
    return pymysql.connect(host=HOST, port=PORT, user=USER, password=PASSWORD, database=DB, **kw)


def connector(pure, **kw):
    return mysql.connector.connect(host=HOST, port=PORT, user=USER, password=PASSWORD, database=DB,
                                   use_pure=pure, **kw)


@check
def pymysql_round_trip_with_types():
    c = pymysql_conn()
    with c.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS py_types")
        cur.execute("CREATE TABLE py_types (id INT PRIMARY KEY, d DECIMAL(10,2), t DATETIME, b BLOB, s VARCHAR(20), n INT)")
        cur.executemany("INSERT INTO py_types VALUES (%s, %s, %s, %s, %s, %s)", [ROW, (2,) + ROW[1:]])
        assert cur.rowcount == 2, cur.rowcount
    c.commit()
    with c.cursor() as cur:
        cur.execute("SELECT * FROM py_types WHERE id = %s", (1,))
        got = cur.fetchone()
        assert got == ROW, got
        assert [d[0] for d in cur.description] == ["id", "d", "t", "b", "s", "n"]
    c.close()


@check
def pymysql_multi_statements():
    c = pymysql_conn(client_flag=CLIENT.MULTI_STATEMENTS)
    with c.cursor() as cur:
        cur.execute("SELECT 1; SELECT 2, 3")
        assert cur.fetchall() == ((1,),)
        assert cur.nextset()
        assert cur.fetchall() == ((2, 3),)
        assert not cur.nextset()
    c.close()


@check
def pymysql_session_state_stays_private():
    a = pymysql_conn(autocommit=True)
    b = pymysql_conn(autocommit=True)
    with a.cursor() as cur:
        cur.execute("SET @secret = 'a-only'")
        cur.execute("SET SESSION time_zone = '+05:00'")
        cur.execute("SELECT @secret, @@time_zone")
        assert cur.fetchone() == ("a-only", "+05:00")
    for _ in range(10):
        with b.cursor() as cur:
            cur.execute("SELECT @secret, @@time_zone")
            secret, tz = cur.fetchone()
            assert secret is None and tz != "+05:00", (secret, tz)
    a.close()
    b.close()


@check
def pymysql_settings_replayed_and_private():
    a = pymysql_conn(autocommit=True)
    b = pymysql_conn(autocommit=True)
    with a.cursor() as cur:
        cur.execute("SET SESSION time_zone = '+03:00'")
        cur.execute("SET sql_mode = 'ANSI_QUOTES'")
    for _ in range(10):
        with a.cursor() as cur:
            cur.execute("SELECT @@time_zone, @@sql_mode")
            assert cur.fetchone() == ("+03:00", "ANSI_QUOTES")
        with b.cursor() as cur:
            cur.execute("SELECT @@time_zone, @@sql_mode")
            tz, mode = cur.fetchone()
            assert tz != "+03:00" and mode != "ANSI_QUOTES", (tz, mode)
    a.close()
    b.close()


@check
def pymysql_load_data_local_infile():
    import tempfile
    a = pymysql_conn(autocommit=True, local_infile=True)
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
        for i in range(1000):
            f.write(f"{i},v{i}\n")
        path = f.name
    with a.cursor() as cur:
        cur.execute("CREATE TABLE py_infile (id INT PRIMARY KEY, v VARCHAR(10))")
        cur.execute(f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE py_infile FIELDS TERMINATED BY ','")
        assert cur.rowcount == 1000, cur.rowcount
        cur.execute("/* shardgate:primary */ SELECT COUNT(*), MAX(id) FROM py_infile")
        assert cur.fetchone() == (1000, 999)
    os.unlink(path)
    a.close()


@check
def pymysql_stored_procedure_results():
    a = pymysql_conn(autocommit=True)
    with a.cursor() as cur:
        cur.execute("CREATE PROCEDURE py_two(IN n INT) BEGIN SELECT n; SELECT n * 2, 'y'; END")
        cur.execute("CALL py_two(21)")
        assert cur.fetchall() == ((21,),)
        assert cur.nextset()
        assert cur.fetchall() == ((42, "y"),)
        cur.execute("SELECT 3")
        assert cur.fetchall() == ((3,),)
    a.close()


@check
def pymysql_bad_password_is_1045():
    try:
        pymysql.connect(host=HOST, port=PORT, user=USER, password="wrong", database=DB)
    except pymysql.err.OperationalError as e:
        assert e.args[0] == 1045, e.args
    else:
        raise AssertionError("login with a wrong password succeeded")


def connector_checks(pure):
    c = connector(pure)
    cur = c.cursor(prepared=True)
    cur.execute("SELECT id, d, t, b, s, n FROM py_types WHERE id = %s", (2,))
    got = tuple(cur.fetchall()[0])
    assert got[0] == 2 and got[1] == ROW[1] and got[2] == ROW[2] and bytes(got[3]) == ROW[3] and got[4] == ROW[4], got
    cur.close()
    cur = c.cursor()
    cur.execute("SELECT s FROM py_types ORDER BY id")
    assert [r[0] for r in cur.fetchall()] == [ROW[4], ROW[4]]
    cur.execute("INSERT INTO py_types (id, d) VALUES (%s, %s)", (100 + int(pure), decimal.Decimal("1.5")))
    c.commit()
    assert cur.rowcount == 1
    stats = c.cmd_statistics()
    assert "Uptime" in stats, stats
    c.ping(reconnect=False)
    c.cmd_reset_connection()
    cur = c.cursor()
    cur.execute("SELECT DATABASE()")
    assert cur.fetchone()[0] == DB
    c.close()


@check
def connector_pure_python():
    connector_checks(True)


@check
def connector_change_user_and_kill():
    c = connector(True, autocommit=True)
    cur = c.cursor()
    cur.execute("SET @gone = 1")
    cur.execute("SELECT CONNECTION_ID()")
    (cid,) = cur.fetchone()
    assert cid == c.connection_id, (cid, c.connection_id)
    cur.close()
    c.cmd_change_user(username=USER, password=PASSWORD, database=DB)
    cur = c.cursor()
    cur.execute("SELECT @gone, DATABASE(), CONNECTION_ID()")
    assert cur.fetchone() == (None, DB, cid)
    cur.close()
    # Another client kills this one's connection by shardgate's id.
    k = pymysql_conn(autocommit=True)
    with k.cursor() as kc:
        kc.execute(f"KILL {cid}")
    k.close()
    try:
        cur = c.cursor()
        cur.execute("SELECT 1")
        cur.fetchall()
    except mysql.connector.Error:
        pass
    else:
        raise AssertionError("a killed connection still answered")


@check
def connector_caching_sha2_fast_path_without_tls():
    c = connector(True, auth_plugin="caching_sha2_password")
    cur = c.cursor()
    cur.execute("SELECT 40 + 2")
    assert cur.fetchall() == [(42,)]
    cur.close()
    c.close()


@check
def connector_compressed_protocol():
    c = connector(True, compress=True, autocommit=True)
    cur = c.cursor()
    cur.execute("SELECT REPEAT('xyz', 1000000), 7")
    v, n = cur.fetchone()
    assert len(v) == 3_000_000 and n == 7
    cur.close()
    cur = c.cursor(prepared=True)
    cur.execute("SELECT %s + 1", (41,))
    assert cur.fetchall() == [(42,)]
    cur.close()
    c.close()


@check
def connector_bad_password_is_1045():
    try:
        mysql.connector.connect(host=HOST, port=PORT, user=USER, password="wrong", use_pure=True)
    except mysql.connector.Error as e:
        assert e.errno == 1045, e
    else:
        raise AssertionError("login with a wrong password succeeded")


finish()
