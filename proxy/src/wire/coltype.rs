//! Column type codes (Protocol::ColumnType), for matching on the byte.

pub const DECIMAL: u8 = 0x00;
pub const TINY: u8 = 0x01;
pub const SHORT: u8 = 0x02;
pub const LONG: u8 = 0x03;
pub const FLOAT: u8 = 0x04;
pub const DOUBLE: u8 = 0x05;
pub const NULL: u8 = 0x06;
pub const TIMESTAMP: u8 = 0x07;
pub const LONGLONG: u8 = 0x08;
pub const INT24: u8 = 0x09;
pub const DATE: u8 = 0x0a;
pub const TIME: u8 = 0x0b;
pub const DATETIME: u8 = 0x0c;
pub const YEAR: u8 = 0x0d;
pub const NEWDATE: u8 = 0x0e;
pub const NEWDECIMAL: u8 = 0xf6;
pub const ENUM: u8 = 0xf7;
pub const SET: u8 = 0xf8;
pub const VAR_STRING: u8 = 0xfd;
