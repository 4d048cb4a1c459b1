"""Read-your-writes through shardgate with PyMySQL and mysql-connector-python, while
the replica applies each transaction a second late (tests/tests/causal.rs sets that
up). Each check writes a row and reads it back at once in the same session.

usage: causal.py HOST PORT USER PASSWORD DATABASE REPLICA_SERVER_ID
"""

import sys

import mysql.connector
import pymysql

from checks import check, finish

HOST, PORT, USER, PASSWORD, DB = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
REPLICA = int(sys.argv[6])


def write_then_read(cur, key):
    cur.execute("INSERT INTO t VALUES (%s)", (key,))
    cur.execute("SELECT @@server_id, COUNT(*) FROM t WHERE id = %s", (key,))
    return tuple(cur.fetchone())


@check
def pymysql_autocommit_reads_its_write_on_the_replica():
    c = pymysql.connect(host=HOST, port=PORT, user=USER, password=PASSWORD, database=DB, autocommit=True)
    with c.cursor() as cur:
        for key in (10, 11):
            server, n = write_then_read(cur, key)
            assert n == 1, f"row {key} not read back"
            assert server == REPLICA, f"read on server {server}, not the replica"
    c.close()


@check
def mysql_connector_reads_its_write():
    c = mysql.connector.connect(host=HOST, port=PORT, user=USER, password=PASSWORD, database=DB,
                                use_pure=True, autocommit=True)
    cur = c.cursor()
    server, n = write_then_read(cur, 30)
    assert n == 1, "row 30 not read back"
    assert server == REPLICA, f"read on server {server}, not the replica"
    # Prepared statements (the binary protocol) as well.
    cur = c.cursor(prepared=True)
    server, n = write_then_read(cur, 31)
    assert n == 1, "row 31 not read back"
    c.close()


finish()
