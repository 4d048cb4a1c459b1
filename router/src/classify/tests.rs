use super::*;

fn c(sql: &str) -> Statement {
    classify(sql.as_bytes()).unwrap()
}

#[test]
fn client_charset_changes_are_noticed() {
    for sql in [
        "SET NAMES latin1",
        "set names 'utf8mb4' collate 'utf8mb4_bin'",
        "SET CHARACTER SET cp1251",
        "SET character_set_client = gbk",
        "SET @@session.character_set_client = @saved",
        "SET sql_mode = '', NAMES DEFAULT",
    ] {
        assert!(may_change_client_charset(sql.as_bytes()), "{sql}");
    }
    for sql in ["SET sql_mode = ''", "SELECT 'names'", "SET @a = 1"] {
        assert!(!may_change_client_charset(sql.as_bytes()), "{sql}");
    }
}

#[test]
fn what_needs_no_table_and_what_travels_with_the_session() {
    for sql in [
        "SELECT 1",
        "SELECT NOW()",
        "select @@port",
        "SELECT 1 FROM DUAL",
        "SET NAMES utf8mb4",
        "SAVEPOINT a",
        "BEGIN",
    ] {
        assert!(!c(sql).names_tables, "{sql}");
    }
    for sql in [
        "SELECT * FROM t",
        "SELECT 1 FROM DUAL WHERE EXISTS (SELECT 1 FROM t)",
        "INSERT INTO t VALUES (1)",
        "SET @a = (SELECT MAX(id) FROM t)",
        "SELECT 1; SELECT a FROM t",
    ] {
        assert!(c(sql).names_tables, "{sql}");
    }
    for sql in [
        "SELECT LAST_INSERT_ID()",
        "select @@identity",
        "SELECT @@session.last_insert_id",
        "INSERT INTO child (parent) VALUES (LAST_INSERT_ID())",
    ] {
        let s = c(sql);
        assert!(s.reads_insert_id && s.pin.is_none(), "{sql}");
    }
    let sets = c("SELECT LAST_INSERT_ID(42)");
    assert_eq!(sets.pin, Some(PinReason::LastInsertId));
    assert!(c("SET TRANSACTION ISOLATION LEVEL READ COMMITTED").next_transaction);
    assert!(c("set transaction read only").next_transaction);
    assert!(!c("SET SESSION TRANSACTION READ ONLY").next_transaction);
    assert!(!c("SET GLOBAL TRANSACTION READ ONLY").next_transaction);
}

#[test]
fn plain_reads_may_use_replicas() {
    for sql in [
        "SELECT 1",
        "select * from t where a = 'for update'",
        "  /* x */ SELECT @@server_id",
        "(SELECT a FROM t) UNION (SELECT b FROM u)",
        "WITH x AS (SELECT 1) SELECT * FROM x",
        "SELECT `update` FROM t",
    ] {
        let s = c(sql);
        assert_eq!(s.kind, StatementKind::Select, "{sql}");
        assert!(s.read_only, "{sql}");
    }
}

#[test]
fn locking_and_stateful_reads_need_the_primary() {
    for sql in [
        "SELECT * FROM t FOR UPDATE",
        "SELECT * FROM t WHERE id=1 LOCK IN SHARE MODE",
        "select * from t for share",
        "SELECT GET_LOCK('x', 1)",
        "SELECT LAST_INSERT_ID()",
        "SELECT NEXTVAL(s)",
        "SELECT @a := 1",
        "SELECT a INTO @x FROM t",
        "SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 1",
        "/* shardgate:primary */ SELECT 1",
        "SELECT 1; DELETE FROM t",
    ] {
        assert!(!c(sql).read_only, "{sql}");
    }
}

#[test]
fn pins_for_connection_state() {
    let cases = [
        ("SET @x = 1", Some(PinReason::UserVariable)),
        ("SET sql_mode = ''", None),
        ("SET NAMES utf8mb4", None),
        ("SET TRANSACTION ISOLATION LEVEL READ COMMITTED", None),
        (
            "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
            None,
        ),
        ("SET autocommit = 0", None),
        ("SET autocommit = 0, @a = 1", Some(PinReason::UserVariable)),
        (
            "SET autocommit = 0; SELECT 1",
            Some(PinReason::SessionVariable),
        ),
        (
            "SELECT 1; SET time_zone = '+01:00'",
            Some(PinReason::SessionVariable),
        ),
        (
            "SET GLOBAL max_connections = 10",
            Some(PinReason::SessionVariable),
        ),
        ("SET @@global.x = 1", Some(PinReason::SessionVariable)),
        (
            "SET time_zone = (SELECT '+00:00')",
            Some(PinReason::SessionVariable),
        ),
        ("SET PASSWORD = 'x'", Some(PinReason::SessionVariable)),
        ("SET STATEMENT max_statement_time=1 FOR SELECT 1", None),
        (
            "CREATE TEMPORARY TABLE t (a int)",
            Some(PinReason::TemporaryTable),
        ),
        ("LOCK TABLES t READ", Some(PinReason::TableLock)),
        (
            "CREATE OR REPLACE TEMPORARY TABLE t (a int)",
            Some(PinReason::TemporaryTable),
        ),
        (
            "PREPARE s FROM 'SELECT 1'",
            Some(PinReason::PreparedStatement),
        ),
        ("SELECT GET_LOCK('a', 0)", Some(PinReason::NamedLock)),
        ("CREATE TABLE t (a int)", None),
        ("INSERT INTO t VALUES (1)", None),
    ];
    for (sql, pin) in cases {
        assert_eq!(c(sql).pin, pin, "{sql}");
    }
    for sql in [
        "SET sql_mode = 'ANSI'",
        "SET NAMES latin1",
        "SET @@session.time_zone = '+01:00', SESSION wait_timeout = 10",
        "SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        "SET CHARACTER SET utf8mb4",
    ] {
        assert!(c(sql).replayable, "{sql}");
    }
    for sql in [
        "SET @x = 1",
        "SET TRANSACTION READ ONLY",
        "SET autocommit=1",
        "SELECT 1",
    ] {
        assert!(!c(sql).replayable, "{sql}");
    }
    // autocommit alone is kept by the session itself.
    for (sql, on) in [
        ("SET autocommit=1", Some(true)),
        ("set session autocommit = OFF", Some(false)),
        ("SET @@autocommit := 0", Some(false)),
        ("SET @@global.autocommit = 0", None),
        ("SET autocommit = @x", None),
        ("SET autocommit = 0, sql_mode = ''", None),
    ] {
        assert_eq!(c(sql).autocommit, on, "{sql}");
    }
}

#[test]
fn kinds_and_use() {
    assert_eq!(c("insert into t values (1)").kind, StatementKind::Insert);
    assert_eq!(c("/*!40101 SET NAMES utf8 */").kind, StatementKind::Set);
    assert_eq!(c("START TRANSACTION").kind, StatementKind::Transaction);
    assert_eq!(c("").kind, StatementKind::Empty);
    assert_eq!(c("-- only a comment").kind, StatementKind::Empty);
    assert_eq!(c("USE `my``db`").use_db.as_deref(), Some("my`db"));
    assert_eq!(c("use shop;").use_db.as_deref(), Some("shop"));
    assert!(c("SHOW WARNINGS").needs_previous);
    assert!(c("USE a; SELECT 1").batch_changes_database);
    assert_eq!(c("BEGIN").transaction, Some(TxnOp::Begin));
    assert_eq!(
        c("start transaction read only").transaction,
        Some(TxnOp::Begin)
    );
    assert_eq!(c("COMMIT WORK").transaction, Some(TxnOp::Commit));
    assert_eq!(c("rollback").transaction, Some(TxnOp::Rollback));
    assert_eq!(
        c("ROLLBACK TO SAVEPOINT a").transaction,
        Some(TxnOp::RollbackTo)
    );
    assert_eq!(c("rollback work to b").savepoint.as_deref(), Some("b"));
    assert_eq!(c("SAVEPOINT `x y`").transaction, Some(TxnOp::Savepoint));
    assert_eq!(c("SAVEPOINT `x y`").savepoint.as_deref(), Some("x y"));
    // Quoted names are identifiers but not words: no shape of them may panic.
    assert_eq!(c("ROLLBACK TO `a` `b`").transaction, Some(TxnOp::Other));
    assert!(c("ROLLBACK `a` `b` `c`").transaction.is_some());
    assert_eq!(
        c("RELEASE SAVEPOINT a").transaction,
        Some(TxnOp::ReleaseSavepoint)
    );
    assert_eq!(c("COMMIT AND CHAIN").transaction, Some(TxnOp::Commit));
    assert_eq!(c("XA START 'x'").transaction, Some(TxnOp::Other));
    assert_eq!(c("SELECT 1").transaction, None);
    assert_eq!(
        show_databases_in(&crate::catalog::significant(b"show databases")),
        Some(None)
    );
    assert_eq!(
        show_databases_in(&crate::catalog::significant(b"SHOW SCHEMAS LIKE 'a%';")),
        Some(Some("a%".into()))
    );
    assert_eq!(
        show_databases_in(&crate::catalog::significant(b"SHOW DATABASES WHERE 1")),
        None
    );
    let q = b"/* x */ explain  sharding SELECT 1";
    assert_eq!(&q[explain_sharding(q).unwrap()..], b" SELECT 1");
    assert_eq!(explain_sharding(b"EXPLAIN SELECT 1"), None);
    assert!(c("SELECT ROW_COUNT()").needs_previous);
}

#[test]
fn hints_and_bad_hints() {
    let s = c("SELECT /* shardgate:node=dn2 */ 1");
    assert_eq!(s.hints.node.as_deref(), Some("dn2"));
    assert!(classify(b"/* shardgate:bogus */ SELECT 1").is_err());
}

#[test]
fn invalid_utf8_is_classified() {
    let s = classify(b"SELECT '\xff\xfe'").unwrap();
    assert!(s.read_only);
}

#[test]
fn ddl_commits_the_transaction_first_but_temporary_tables_do_not() {
    for (sql, commits) in [
        ("CREATE TABLE t (a int)", true),
        ("ALTER TABLE t ADD b int", true),
        ("DROP TABLE t", true),
        ("CREATE OR REPLACE TEMPORARY TABLE t (a int)", false),
        ("DROP TEMPORARY TABLE t", false),
        ("DROP PREPARE s", false),
        ("SELECT 1", false),
    ] {
        assert_eq!(c(sql).commits_first, commits, "{sql}");
    }
}

#[test]
fn drops_database_finds_drop_database_and_schema_in_batches() {
    assert!(drops_database(b"DROP DATABASE x"));
    assert!(drops_database(b"/* c */ drop schema if exists `x`"));
    assert!(drops_database(b"SELECT 1; DROP DATABASE x"));
    assert!(!drops_database(b"DROP TABLE x"));
    assert!(!drops_database(b"SELECT 'drop database x'"));
    assert!(!drops_database(b"SELECT dropped FROM t"));
}

#[test]
fn transaction_endings_and_their_options() {
    for sql in [
        "COMMIT AND CHAIN",
        "commit work and no chain release",
        "ROLLBACK AND CHAIN",
    ] {
        let t = classify(sql.as_bytes()).unwrap().transaction;
        assert!(matches!(t, Some(TxnOp::Commit | TxnOp::Rollback)), "{sql}");
    }
    assert!(chains(b"COMMIT AND CHAIN") && !chains(b"COMMIT AND NO CHAIN"));
    assert!(releases(b"COMMIT RELEASE") && !releases(b"COMMIT NO RELEASE"));
    assert!(sets_completion_type(b"SET completion_type = 1"));
    assert!(sets_completion_type(
        b"SET SESSION completion_type = 'CHAIN'"
    ));
    assert!(sets_completion_type(
        b"SET @@session.completion_type = RELEASE"
    ));
    assert!(!sets_completion_type(b"SET completion_type = 0"));
    assert!(!sets_completion_type(b"SET completion_type = 'NO_CHAIN'"));
    assert!(!sets_completion_type(b"SET autocommit = 1"));
    for bad in [
        "COMMIT CHAIN",
        "COMMIT AND CHAIN RELEASE",
        "COMMIT NO",
        "ROLLBACK WORK WORK",
    ] {
        let t = classify(bad.as_bytes()).unwrap().transaction;
        assert_eq!(t, Some(TxnOp::Other), "{bad}");
    }
    assert!(releases(b"commit and no chain release"));
    assert!(classify(b"LOCK TABLES t WRITE").unwrap().commits_first);
    assert!(!classify(b"UNLOCK TABLES").unwrap().commits_first);
}
