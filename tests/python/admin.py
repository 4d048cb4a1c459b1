"""The admin port with PyMySQL and mysql-connector-python: read the runtime tables,
stage a change with a parameterised statement, see it in SHOW CONFIG DIFF and
VALIDATE CONFIG, and take it back (tests/tests/admin.rs runs this).

usage: admin.py HOST PORT USER PASSWORD
"""

import sys

import mysql.connector
import pymysql

from checks import check, finish

HOST, PORT, USER, PASSWORD = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]


def stage_and_take_back(cur):
    cur.execute("SELECT name FROM runtime_nodes ORDER BY name")
    assert [r[0] for r in cur.fetchall()] == ["dn1", "dn2"]
    cur.execute("UPDATE settings SET value = %s WHERE name = %s", ("250", "reads.causal_wait_ms"))
    assert cur.rowcount == 1, cur.rowcount
    cur.execute("SHOW CONFIG DIFF")
    rows = [tuple(r) for r in cur.fetchall()]
    assert rows == [("reads.causal_wait_ms", "1000", "250")], rows
    cur.execute("VALIDATE CONFIG")
    rows = [tuple(r) for r in cur.fetchall()]
    assert rows[-1][0] == "ok" and "1 key differs" in rows[-1][3], rows
    cur.execute("UPDATE settings SET value = %s WHERE name = %s", ("1000", "reads.causal_wait_ms"))
    cur.execute("SHOW CONFIG DIFF")
    assert list(cur.fetchall()) == [], "the change is taken back"


@check
def pymysql_stages_and_validates():
    c = pymysql.connect(host=HOST, port=PORT, user=USER, password=PASSWORD)
    with c.cursor() as cur:
        stage_and_take_back(cur)
    c.commit()
    c.close()


@check
def mysql_connector_stages_and_validates():
    c = mysql.connector.connect(host=HOST, port=PORT, user=USER, password=PASSWORD, use_pure=True)
    cur = c.cursor()
    stage_and_take_back(cur)
    cur.close()
    c.close()


finish()
