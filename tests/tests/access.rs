//! Names and access: connections that never log in, and (to come) every table
//! resolved to the schema it names and checked against the user's rights. One sandbox
//! for the whole binary.

use std::io::Read;
use std::net::TcpStream;
use std::sync::OnceLock;
use std::time::Duration;

use mysql_async::prelude::*;
use tests::{error_code, Proxy, Sandbox, PASSWORD, USER};

fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| Sandbox::start(&[0]).expect("start the MariaDB sandbox"))
}

fn proxy(extra: &str) -> Proxy {
    let g = &sandbox().groups[0];
    Proxy::with_config(&format!(
        "passthrough_node = \"dn1\"\n\
         [[users]]\nname = \"{USER}\"\npassword = \"{PASSWORD}\"\n\
         [nodes.dn1]\nprimary = \"{}\"\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n{extra}",
        g.primary.address(),
    ))
}

#[tokio::test]
async fn sockets_that_never_log_in_neither_lock_out_clients_nor_stay() {
    let p = proxy("[server]\nmax_connections = 3\nconnect_timeout_ms = 800\n");
    // Ten sockets read the greeting and never answer.
    let mut silent: Vec<TcpStream> = (0..10)
        .map(|_| {
            let s = TcpStream::connect(p.addr()).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s
        })
        .collect();
    // Logged-in clients still get their three places.
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut c = p.conn(None).await;
        c.query_drop("SELECT 1").await.unwrap();
        clients.push(c);
    }
    // The fourth logged-in client is one too many: 1040, as MySQL answers.
    let e = mysql_async::Conn::new(p.opts(USER, PASSWORD, None))
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), Some(1040), "{e}");
    // Past connect_timeout shardgate closes the silent sockets: after the greeting,
    // they read the end of the stream.
    for s in &mut silent {
        let mut buf = vec![0u8; 4096];
        let mut total = 0;
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => total += n,
                Err(e) => panic!("socket still open after connect_timeout: {e} ({total} bytes)"),
            }
        }
        assert!(total > 0, "no greeting");
    }
}
