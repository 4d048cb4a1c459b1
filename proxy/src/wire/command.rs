//! Command bytes that open every client request.

pub const COM_QUIT: u8 = 0x01;
pub const COM_INIT_DB: u8 = 0x02;
pub const COM_QUERY: u8 = 0x03;
pub const COM_FIELD_LIST: u8 = 0x04;
pub const COM_STATISTICS: u8 = 0x09;
pub const COM_PROCESS_KILL: u8 = 0x0c;
pub const COM_PING: u8 = 0x0e;
pub const COM_CHANGE_USER: u8 = 0x11;
pub const COM_STMT_PREPARE: u8 = 0x16;
pub const COM_STMT_EXECUTE: u8 = 0x17;
pub const COM_STMT_SEND_LONG_DATA: u8 = 0x18;
pub const COM_STMT_CLOSE: u8 = 0x19;
pub const COM_STMT_RESET: u8 = 0x1a;
pub const COM_SET_OPTION: u8 = 0x1b;
pub const COM_STMT_FETCH: u8 = 0x1c;
pub const COM_RESET_CONNECTION: u8 = 0x1f;

/// A command's name as MySQL's process list shows it.
pub fn command_name(cmd: u8) -> &'static str {
    match cmd {
        COM_QUIT => "Quit",
        COM_INIT_DB => "Init DB",
        COM_QUERY => "Query",
        COM_FIELD_LIST => "Field List",
        COM_STATISTICS => "Statistics",
        COM_PROCESS_KILL => "Kill",
        COM_PING => "Ping",
        COM_CHANGE_USER => "Change user",
        COM_STMT_PREPARE => "Prepare",
        COM_STMT_EXECUTE => "Execute",
        COM_STMT_SEND_LONG_DATA => "Long Data",
        COM_STMT_CLOSE => "Close stmt",
        COM_STMT_RESET => "Reset stmt",
        COM_SET_OPTION => "Set option",
        COM_STMT_FETCH => "Fetch",
        COM_RESET_CONNECTION => "Reset connection",
        _ => "Unknown",
    }
}
