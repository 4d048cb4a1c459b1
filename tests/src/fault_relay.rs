//! A TCP relay between shardgate and a backend that breaks the path on demand: the
//! faults a real network makes (a reset in the middle of a result, a path that
//! swallows packets without closing, slow delivery), made at a moment a test
//! chooses, and a count of the connections open through it to find leaks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the relay does to the bytes it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Bytes pass as they come.
    None,
    /// Each chunk waits this long before it is passed on.
    Delay(Duration),
    /// Bytes vanish in both directions and nothing is closed: a half-open path
    /// (the peer's host gone, a firewall dropping packets).
    Swallow,
}

#[derive(Debug)]
pub struct FaultRelay {
    port: u16,
    fault: watch::Sender<Fault>,
    /// Bumped to reset every connection open now (RST, as a crashed middlebox or a
    /// dying host's kernel sends).
    resets: watch::Sender<u64>,
    live: Arc<AtomicUsize>,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultRelay {
    /// Relays 127.0.0.1:<port> to `upstream` (host:port) on the current runtime.
    pub async fn start(upstream: &str) -> FaultRelay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let port = listener.local_addr().expect("relay address").port();
        let (fault, _) = watch::channel(Fault::None);
        let (resets, _) = watch::channel(0u64);
        let live = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::new(AtomicUsize::new(0));
        let upstream = upstream.to_string();
        let (f, r, l, a) = (
            fault.clone(),
            resets.clone(),
            live.clone(),
            accepted.clone(),
        );
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                a.fetch_add(1, Ordering::SeqCst);
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                tokio::spawn(relay(
                    client,
                    server,
                    f.subscribe(),
                    r.subscribe(),
                    Guard::new(l.clone()),
                ));
            }
        });
        FaultRelay {
            port,
            fault,
            resets,
            live,
            accepted,
            task,
        }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }

    /// Resets (RST) every connection open through the relay now; later ones pass.
    pub fn reset_all(&self) {
        self.resets.send_modify(|n| *n += 1);
    }

    /// Connections open through the relay now.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// Connections accepted since the start.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Waits up to `within` for the open connections to be at most `n`; returns the
    /// last count seen.
    pub async fn settle_at_most(&self, n: usize, within: Duration) -> usize {
        let until = tokio::time::Instant::now() + within;
        loop {
            let live = self.live();
            if live <= n || tokio::time::Instant::now() >= until {
                return live;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for FaultRelay {
    fn drop(&mut self) {
        self.task.abort();
        self.reset_all();
    }
}

/// Counts a relayed connection while it is open.
struct Guard(Arc<AtomicUsize>);

impl Guard {
    fn new(live: Arc<AtomicUsize>) -> Guard {
        live.fetch_add(1, Ordering::SeqCst);
        Guard(live)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn relay(
    client: TcpStream,
    server: TcpStream,
    fault: watch::Receiver<Fault>,
    mut resets: watch::Receiver<u64>,
    _guard: Guard,
) {
    resets.mark_unchanged();
    // Handles on the same sockets, to make them close with RST on a reset.
    let dups = [&client, &server].map(|s| socket2::SockRef::from(s).try_clone());
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let up = pump(cr, sw, fault.clone());
    let down = pump(sr, cw, fault);
    // Either side closing ends both (FIN); a reset ends both with RST.
    tokio::select! {
        _ = up => {}
        _ = down => {}
        _ = resets.changed() => {
            for dup in dups.iter().flatten() {
                let _ = dup.set_linger(Some(Duration::ZERO));
            }
        }
    }
}

/// Copies `from` to `to` under the current fault, until either breaks.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, fault: watch::Receiver<Fault>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let current = *fault.borrow();
        match current {
            Fault::None => {}
            Fault::Delay(d) => tokio::time::sleep(d).await,
            Fault::Swallow => continue,
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
