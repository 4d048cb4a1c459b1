//! MySQL error codes and SQLSTATEs shardgate sends itself. Codes are MySQL's own, so
//! drivers and ORMs map them to the exceptions they already know.

/// An error to send to a client as an ERR packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    pub code: u16,
    pub state: String,
    pub message: String,
}

impl SqlError {
    pub fn new(code: u16, state: &str, message: impl Into<String>) -> Self {
        SqlError {
            code,
            state: state.to_string(),
            message: message.into(),
        }
    }

    /// ER_HOST_IS_BLOCKED: too many failed logins from this address.
    pub fn host_blocked(host: &str) -> Self {
        Self::new(
            1129,
            "HY000",
            format!(
                "Host '{host}' is blocked because of many connection errors; unblock with FLUSH HOSTS on shardgate's admin port"
            ),
        )
    }

    pub fn access_denied(user: &str, host: &str, with_password: bool) -> Self {
        Self::new(
            1045,
            "28000",
            format!(
                "Access denied for user '{user}'@'{host}' (using password: {})",
                if with_password { "YES" } else { "NO" }
            ),
        )
    }

    pub fn unknown_database(db: &str) -> Self {
        Self::new(1049, "42000", format!("Unknown database '{db}'"))
    }

    pub fn db_access_denied(user: &str, host: &str, db: &str) -> Self {
        Self::new(
            1044,
            "42000",
            format!("Access denied for user '{user}'@'{host}' to database '{db}'"),
        )
    }

    /// ER_PARSE_ERROR.
    pub fn syntax(message: impl Into<String>) -> Self {
        Self::new(1064, "42000", message)
    }

    /// ER_SPECIFIC_ACCESS_DENIED_ERROR: the statement needs a right the user lacks.
    pub fn specific_access_denied(message: impl Into<String>) -> Self {
        Self::new(1227, "42000", message)
    }

    /// ER_TABLEACCESS_DENIED_ERROR.
    pub fn table_access_denied(message: impl Into<String>) -> Self {
        Self::new(1142, "42000", message)
    }

    /// ER_NO_SUCH_TABLE.
    pub fn no_such_table(message: impl Into<String>) -> Self {
        Self::new(1146, "42S02", message)
    }

    /// ER_CONNECTION_KILLED.
    pub fn connection_killed(message: impl Into<String>) -> Self {
        Self::new(1927, "70100", message)
    }

    /// ER_HANDSHAKE_ERROR.
    pub fn bad_handshake(message: impl Into<String>) -> Self {
        Self::new(1043, "08S01", message)
    }

    pub fn unknown_command(cmd: u8) -> Self {
        Self::new(
            1047,
            "08S01",
            format!(
                "Unknown command 0x{cmd:02x}: shardgate does not support this protocol command"
            ),
        )
    }

    pub fn too_many_connections() -> Self {
        Self::new(1040, "08004", "Too many connections")
    }

    /// ER_USER_LIMIT_REACHED, as MySQL words it for max_user_connections.
    pub fn user_limit_reached(user: &str, limit: usize) -> Self {
        Self::new(
            1226,
            "42000",
            format!(
                "User '{user}' has exceeded the 'max_user_connections' resource (current value: {limit})"
            ),
        )
    }

    pub fn packet_too_large(max: usize) -> Self {
        Self::new(
            1153,
            "08S01",
            format!("Got a packet bigger than 'max_allowed_packet' bytes ({max}); raise max_allowed_packet in shardgate's [server] config"),
        )
    }

    pub fn no_database() -> Self {
        Self::new(1046, "3D000", "No database selected")
    }

    /// The client gave something shardgate cannot act on (bad hint, unsupported use).
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(1235, "42000", message)
    }

    /// No connection to a backend could be made; the statement did not run.
    pub fn backend_unavailable(message: impl Into<String>) -> Self {
        // ER_CONNECT_TO_FOREIGN_DATA_SOURCE: a server-range code. Clients reject the
        // client-range codes (2003 and the like) from a server as a malformed packet,
        // and never show the message.
        Self::new(1429, "HY000", message)
    }

    /// A backend connection broke while a statement ran; it may or may not have taken effect.
    pub fn backend_lost(message: impl Into<String>) -> Self {
        // ER_QUERY_ON_FOREIGN_DATA_SOURCE, not 2013 (a client-range code, see above)
        // nor an 08xxx state, which drivers take as their own connection being dead.
        Self::new(1430, "HY000", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(1105, "HY000", message)
    }

    /// A COM_STMT_EXECUTE shardgate could not read (ER_WRONG_ARGUMENTS).
    pub fn bad_execute(detail: impl std::fmt::Display) -> Self {
        Self::new(
            1210,
            "HY000",
            format!("Incorrect arguments to mysqld_stmt_execute: {detail}"),
        )
    }
}
