//! The MySQL wire protocol, server and client side. Knows nothing of sharding: it frames
//! packets, performs handshakes and tracks where responses end.

pub mod binary_rows;
pub mod codes;
pub mod coldef;
pub mod coltype;
pub mod command;
pub mod compress;
pub mod generic;
pub mod handshake;
pub mod lenenc;
pub mod outgoing;
pub mod packet;
pub mod response;
pub mod resultset;
pub mod session_state;
pub mod stmt;

pub use codes::SqlError;
pub use packet::{Packet, PacketReader};

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("connection closed in the middle of a packet")]
    UnexpectedEof,
    #[error("packet of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    #[error("server error {code} ({state}): {message}")]
    Server {
        code: u16,
        state: String,
        message: String,
    },
    #[error("authentication: {0}")]
    Auth(String),
    /// TLS to a backend was asked for and could not be had.
    #[error("TLS: {0}")]
    Tls(String),
}

impl WireError {
    /// The error for a client: a backend's own error passes on with its code and
    /// SQLSTATE; anything else means the backend connection broke, and `context`
    /// says what was being done.
    pub fn to_client(&self, context: &str) -> SqlError {
        match self {
            WireError::Server {
                code,
                state,
                message,
            } => SqlError::new(*code, state, message.clone()),
            other => SqlError::backend_lost(format!(
                "shardgate: lost the backend connection {context}: {other}"
            )),
        }
    }

    /// An ERR packet received where the protocol allows one.
    pub fn from_err_packet(payload: &[u8]) -> WireError {
        match generic::parse_err(payload) {
            Some((code, state, message)) => WireError::Server {
                code,
                state,
                message,
            },
            None => WireError::Protocol("malformed ERR packet"),
        }
    }
}
