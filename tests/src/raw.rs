//! A deliberately small blocking MySQL client speaking raw packets, for what real
//! drivers will not send: unknown commands, invalid UTF-8, exact packet sizes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use mysql_common::constants::CapabilityFlags;
use mysql_common::io::ParseBuf;
use mysql_common::packets::{AuthPlugin, HandshakePacket, HandshakeResponse};
use mysql_common::proto::MySerialize;

pub struct RawClient {
    stream: TcpStream,
    /// The server answered a caching_sha2 login with "fast authentication succeeded".
    pub fast_auth: bool,
}

impl RawClient {
    /// Logs in with mysql_native_password, no DEPRECATE_EOF (classic EOF packets).
    pub fn connect(
        addr: &str,
        user: &str,
        password: &str,
    ) -> std::io::Result<(RawClient, Vec<u8>)> {
        Self::connect_as(addr, user, password, false)
    }

    /// Like [`connect`](Self::connect); with `sha2` the client first offers a
    /// caching_sha2_password answer, as MySQL 8 clients do, and follows an auth switch.
    pub fn connect_as(
        addr: &str,
        user: &str,
        password: &str,
        sha2: bool,
    ) -> std::io::Result<(RawClient, Vec<u8>)> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut c = RawClient {
            stream,
            fast_auth: false,
        };
        let (_, greeting) = c.read_packet()?;
        let hs: HandshakePacket<'_> = ParseBuf(&greeting)
            .parse(())
            .map_err(std::io::Error::other)?;
        let nonce = hs.nonce();
        let native = |nonce: &[u8]| {
            mysql_common::auth::plugins::mysql_native_password::scramble_native(
                &nonce[..20],
                password.as_bytes(),
            )
            .map(|s| s.to_vec())
            .unwrap_or_default()
        };
        let (scramble, plugin) = if sha2 {
            let mut n = [0u8; 20];
            n.copy_from_slice(&nonce[..20]);
            let s = mysql_common::auth::plugins::caching_sha2_password::scramble_sha256(
                &n,
                password.as_bytes(),
            )
            .map(|s| s.to_vec())
            .unwrap_or_default();
            (s, AuthPlugin::CachingSha2Password)
        } else {
            (native(&nonce), AuthPlugin::MysqlNativePassword)
        };
        let caps = CapabilityFlags::CLIENT_PROTOCOL_41
            | CapabilityFlags::CLIENT_SECURE_CONNECTION
            | CapabilityFlags::CLIENT_LONG_PASSWORD
            | CapabilityFlags::CLIENT_TRANSACTIONS
            | CapabilityFlags::CLIENT_MULTI_RESULTS
            | CapabilityFlags::CLIENT_PLUGIN_AUTH;
        let resp = HandshakeResponse::new(
            Some(scramble),
            (8, 0, 0),
            Some(user.as_bytes()),
            None::<&[u8]>,
            Some(plugin),
            caps,
            None,
            1 << 30,
        );
        let mut buf = Vec::new();
        resp.serialize(&mut buf);
        c.write_packet(1, &buf)?;
        let (seq, mut answer) = c.read_packet()?;
        if answer.first() == Some(&0xFE) {
            // Auth switch: plugin name, NUL, a new nonce ending in NUL.
            let body = &answer[1..];
            let end = body.iter().position(|&b| b == 0).unwrap_or(body.len());
            assert_eq!(&body[..end], b"mysql_native_password", "switch target");
            let new_nonce = body[end + 1..].to_vec();
            c.write_packet(seq.wrapping_add(1), &native(&new_nonce))?;
            answer = c.read_packet()?.1;
        }
        if answer == [0x01, 0x03] {
            c.fast_auth = true;
            answer = c.read_packet()?.1;
        }
        Ok((c, answer))
    }

    pub fn write_packet(&mut self, seq: u8, payload: &[u8]) -> std::io::Result<()> {
        let mut out = Vec::with_capacity(payload.len() + 8);
        let mut seq = seq;
        let mut rest = payload;
        loop {
            let n = rest.len().min(0xFF_FFFF);
            out.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
            out.push(seq);
            seq = seq.wrapping_add(1);
            out.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if n < 0xFF_FFFF {
                break;
            }
        }
        self.stream.write_all(&out)
    }

    /// Reads one physical packet.
    pub fn read_packet(&mut self) -> std::io::Result<(u8, Vec<u8>)> {
        let mut h = [0u8; 4];
        self.stream.read_exact(&mut h)?;
        let len = h[0] as usize | (h[1] as usize) << 8 | (h[2] as usize) << 16;
        let mut p = vec![0u8; len];
        self.stream.read_exact(&mut p)?;
        Ok((h[3], p))
    }

    /// Sends a command and reads its whole response: returns the first packet, and
    /// for a result set the text rows (each as raw packet bytes).
    pub fn command(&mut self, payload: &[u8]) -> std::io::Result<(Vec<u8>, Vec<Vec<u8>>)> {
        self.write_packet(0, payload)?;
        let (_, first) = self.read_packet()?;
        if matches!(first.first(), Some(0x00) | Some(0xFF)) || payload.first() != Some(&0x03) {
            return Ok((first, Vec::new()));
        }
        let cols = first[0] as usize;
        for _ in 0..cols {
            self.read_packet()?;
        }
        let (_, eof) = self.read_packet()?;
        assert_eq!(eof[0], 0xFE, "EOF after column definitions");
        let mut rows = Vec::new();
        loop {
            let (_, p) = self.read_packet()?;
            if p.first() == Some(&0xFE) && p.len() < 9 {
                return Ok((first, rows));
            }
            if p.first() == Some(&0xFF) {
                return Ok((p, rows));
            }
            rows.push(p);
        }
    }
}

impl RawClient {
    /// Runs `sql` and returns the server status flags its response ends with (of the
    /// OK packet, or of the EOF after a result set's rows); `None` after an error.
    pub fn status_after(&mut self, sql: &str) -> std::io::Result<Option<u16>> {
        let mut p = vec![0x03];
        p.extend_from_slice(sql.as_bytes());
        self.write_packet(0, &p)?;
        let (_, first) = self.read_packet()?;
        match first.first() {
            Some(0x00) => return Ok(ok_status(&first)),
            Some(0xFF) => return Ok(None),
            _ => {}
        }
        // Column definitions, their EOF, the rows, the final EOF.
        let mut eofs = 0;
        loop {
            let (_, p) = self.read_packet()?;
            match p.first() {
                Some(0xFF) => return Ok(None),
                Some(0xFE) if p.len() < 9 => {
                    eofs += 1;
                    if eofs == 2 {
                        return Ok(p.get(3..5).map(|s| u16::from_le_bytes([s[0], s[1]])));
                    }
                }
                _ => {}
            }
        }
    }
}

/// The status flags of an OK packet.
pub fn ok_status(p: &[u8]) -> Option<u16> {
    fn skip_lenenc(p: &[u8], at: usize) -> Option<usize> {
        Some(match *p.get(at)? {
            0xFC => at + 3,
            0xFD => at + 4,
            0xFE => at + 9,
            _ => at + 1,
        })
    }
    if p.first() != Some(&0x00) {
        return None;
    }
    let at = skip_lenenc(p, 1).and_then(|at| skip_lenenc(p, at))?;
    Some(u16::from_le_bytes([*p.get(at)?, *p.get(at + 1)?]))
}

/// The error code of an ERR packet.
pub fn err_code(p: &[u8]) -> Option<u16> {
    (p.first() == Some(&0xFF) && p.len() >= 3).then(|| u16::from_le_bytes([p[1], p[2]]))
}

/// A cursor just opened: the statement id, the column definitions, and the status
/// flags of the EOF after them.
pub type OpenCursor = ([u8; 4], Vec<Vec<u8>>, u16);

/// What a cursor gave: its column definitions and its binary rows, as sent.
pub struct Fetched {
    pub columns: Vec<Vec<u8>>,
    pub rows: Vec<Vec<u8>>,
    /// The status flags of the EOF that ended the column definitions, then of each
    /// fetch's EOF.
    pub statuses: Vec<u16>,
    /// COM_STMT_FETCH round trips until the server said the last row was sent.
    pub fetches: usize,
}

impl RawClient {
    /// Prepares `sql` (one BIGINT parameter), executes it with a read-only cursor
    /// and fetches `batch` rows at a time to the end. An ERR packet anywhere is the
    /// error, as its text.
    pub fn cursor(&mut self, sql: &str, param: i64, batch: u32) -> Result<Fetched, String> {
        let (id, columns, opened) = self.open_cursor(sql, param)?;
        let (mut rows, mut fetches, mut statuses) = (Vec::new(), 0, vec![opened]);
        loop {
            let (mut more, status) = self.fetch(id, batch)?;
            rows.append(&mut more);
            fetches += 1;
            statuses.push(status);
            if status & 0x0080 != 0 {
                return Ok(Fetched {
                    columns,
                    rows,
                    statuses,
                    fetches,
                });
            }
        }
    }

    /// Prepares `sql` (one BIGINT parameter) and executes it with a read-only
    /// cursor: the statement id, the column definitions and the status flags of the
    /// EOF after them.
    pub fn open_cursor(&mut self, sql: &str, param: i64) -> Result<OpenCursor, String> {
        let io = |e: std::io::Error| e.to_string();
        let mut prepare = vec![0x16];
        prepare.extend_from_slice(sql.as_bytes());
        self.write_packet(0, &prepare).map_err(io)?;
        let (_, ok) = self.read_packet().map_err(io)?;
        if ok.first() != Some(&0x00) || ok.len() < 9 {
            return Err(String::from_utf8_lossy(&ok).into_owned());
        }
        let id = [ok[1], ok[2], ok[3], ok[4]];
        let (cols, params) = (
            u16::from_le_bytes([ok[5], ok[6]]),
            u16::from_le_bytes([ok[7], ok[8]]),
        );
        for n in [params, cols] {
            for _ in 0..n {
                self.read_packet().map_err(io)?;
            }
            if n > 0 {
                self.read_packet().map_err(io)?; // EOF
            }
        }
        assert_eq!(params, 1, "{sql}: one parameter");
        let mut exec = vec![0x17];
        exec.extend_from_slice(&id);
        exec.push(0x01); // CURSOR_TYPE_READ_ONLY
        exec.extend_from_slice(&1u32.to_le_bytes());
        exec.extend_from_slice(&[0x00, 0x01, 0x08, 0x00]);
        exec.extend_from_slice(&param.to_le_bytes());
        self.write_packet(0, &exec).map_err(io)?;
        let mut seq = 1;
        let count = self.next_in_order(&mut seq)?;
        if count.first() == Some(&0xFF) {
            return Err(String::from_utf8_lossy(&count).into_owned());
        }
        let mut columns = Vec::new();
        for _ in 0..count[0] {
            columns.push(self.next_in_order(&mut seq)?);
        }
        let eof = self.next_in_order(&mut seq)?;
        let status = u16::from_le_bytes([eof[3], eof[4]]);
        if eof[0] != 0xFE || status & 0x0040 == 0 {
            return Err(format!("no cursor opened: {eof:?}"));
        }
        Ok((id, columns, status))
    }

    /// The next packet of a response, whose sequence id must be `seq` (then
    /// counted on).
    fn next_in_order(&mut self, seq: &mut u8) -> Result<Vec<u8>, String> {
        let (got, p) = self.read_packet().map_err(|e| e.to_string())?;
        if got != *seq {
            return Err(format!(
                "packet out of order: sequence id {got}, expected {seq}"
            ));
        }
        *seq = seq.wrapping_add(1);
        Ok(p)
    }

    /// One COM_STMT_FETCH of `n` rows: the binary rows, and the status flags of the
    /// EOF after them (0x0080: the last row was sent).
    pub fn fetch(&mut self, id: [u8; 4], n: u32) -> Result<(Vec<Vec<u8>>, u16), String> {
        let io = |e: std::io::Error| e.to_string();
        let mut fetch = vec![0x1C];
        fetch.extend_from_slice(&id);
        fetch.extend_from_slice(&n.to_le_bytes());
        self.write_packet(0, &fetch).map_err(io)?;
        let (mut rows, mut seq) = (Vec::new(), 1);
        loop {
            let p = self.next_in_order(&mut seq)?;
            match p.first() {
                Some(0xFF) => return Err(String::from_utf8_lossy(&p).into_owned()),
                Some(0xFE) if p.len() < 9 => {
                    return Ok((rows, u16::from_le_bytes([p[3], p[4]])));
                }
                _ => rows.push(p),
            }
        }
    }
}

/// The (schema, table, org_table) of a column definition.
pub fn column_tables(def: &[u8]) -> (String, String, String) {
    let mut at = 0;
    let mut next = || {
        let n = usize::from(def.get(at).copied().unwrap_or(0));
        let s = String::from_utf8_lossy(def.get(at + 1..at + 1 + n).unwrap_or_default());
        at += 1 + n;
        s.into_owned()
    };
    let _catalog = next();
    (next(), next(), next())
}
