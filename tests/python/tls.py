"""TLS and caching_sha2_password through shardgate with PyMySQL and
mysql-connector-python.

usage: tls.py HOST PORT USER PASSWORD DATABASE CA_CERT   (USER must have require_tls)
"""
import sys

import mysql.connector
import pymysql

from checks import check, finish

HOST, PORT, USER, PASSWORD, DB, CA = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]


@check
def pymysql_over_verified_tls():
    c = pymysql.connect(host=HOST, port=PORT, user=USER, password=PASSWORD, database=DB,
                        ssl={"ca": CA, "check_hostname": True})
    with c.cursor() as cur:
        cur.execute("SELECT 6 * 7, DATABASE()")
        assert cur.fetchone() == (42, DB)
    c.close()


@check
def pymysql_without_tls_is_refused_for_a_tls_only_user():
    # (PyMySQL switches to TLS by itself when the server offers it.)
    try:
        pymysql.connect(host=HOST, port=PORT, user=USER, password=PASSWORD, database=DB,
                        ssl_disabled=True)
    except pymysql.err.OperationalError as e:
        assert e.args[0] == 1045, e.args
    else:
        raise AssertionError("a require_tls user logged in without TLS")


@check
def connector_caching_sha2_over_tls():
    # The first login is a full authentication (password over TLS), the second the
    # fast path.
    for _ in range(2):
        c = mysql.connector.connect(host=HOST, port=PORT, user=USER, password=PASSWORD, database=DB,
                                    use_pure=True, ssl_ca=CA, ssl_verify_cert=True,
                                    auth_plugin="caching_sha2_password")
        cur = c.cursor()
        cur.execute("SELECT 1 + 1")
        assert cur.fetchall() == [(2,)]
        cur.close()
        c.close()


@check
def connector_caching_sha2_wrong_password_is_1045():
    try:
        mysql.connector.connect(host=HOST, port=PORT, user=USER, password="wrong", database=DB,
                                use_pure=True, ssl_ca=CA, auth_plugin="caching_sha2_password")
    except mysql.connector.Error as e:
        assert e.errno == 1045, e
    else:
        raise AssertionError("a wrong caching_sha2 password was accepted")


@check
def statement_timeout_stops_long_statements():
    # The proxy runs with server.statement_timeout_ms = 1000.
    import time
    c = pymysql.connect(host=HOST, port=PORT, user=USER, password=PASSWORD, database=DB,
                        ssl={"ca": CA})
    with c.cursor() as cur:
        started = time.monotonic()
        try:
            cur.execute("SELECT SLEEP(10)")
            assert cur.fetchone() == (1,)  # SLEEP reports the interruption
        except pymysql.err.OperationalError as e:
            assert e.args[0] == 1317, e.args
        assert time.monotonic() - started < 5
        cur.execute("SELECT 2")
        assert cur.fetchone() == (2,)
    c.close()
    k = mysql.connector.connect(host=HOST, port=PORT, user=USER, password=PASSWORD, database=DB,
                                use_pure=True, ssl_ca=CA)
    cur = k.cursor()
    started = time.monotonic()
    try:
        cur.execute("SELECT SLEEP(10)")
        assert cur.fetchall() == [(1,)]
    except mysql.connector.Error as e:
        assert e.errno == 1317, e
    assert time.monotonic() - started < 5
    cur.close()
    k.close()


finish()
