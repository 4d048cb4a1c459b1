//! The data listener: accepts client connections and runs a session for each.

use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::config::Config;
use crate::session::{Port, Session};
use crate::shared::Shared;
use crate::wire::generic::err_payload;
use crate::wire::packet::write_packet;
use crate::wire::SqlError;

/// Binds the listener, then serves until the future is dropped.
pub async fn bind(config: Config) -> std::io::Result<(TcpListener, Arc<Shared>)> {
    let Config { settings, layout } = config;
    let listener = listen(&settings.listen, settings.listen_backlog).await?;
    let shared = Shared::start(settings, layout).await?;
    Ok((listener, shared))
}

/// A listener whose accept queue holds a burst of `backlog` new clients (up to the
/// kernel's somaxconn). With a short queue, connections past it are dropped by the
/// kernel after the client already thinks it is connected: it then waits for a
/// greeting that never comes.
async fn listen(address: &str, backlog: u32) -> std::io::Result<TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host(address).await? {
        let socket = match addr {
            std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        socket.set_reuseaddr(true)?;
        match socket.bind(addr).and_then(|()| socket.listen(backlog)) {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address to listen on")
    }))
}

/// Accepts until shutdown begins; then the listener closes and new clients are refused.
/// `port`: what the sessions serve (applications, or DBAs on the admin port).
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, port: Port) {
    let mut stop = shared.shutdown_signalled();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let handshake = match shared.handshakes.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                tokio::spawn(refuse(stream));
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            metrics::gauge!("shardgate_client_connections").increment(1.0);
            let session = Session::new(shared, stream, peer, port);
            session.run(handshake).await;
            metrics::gauge!("shardgate_client_connections").decrement(1.0);
        });
    }
}

/// Opens the admin port when the settings ask for it, and serves it until shutdown.
/// Returns where it listens.
pub async fn start_admin(shared: &Arc<Shared>) -> std::io::Result<Option<std::net::SocketAddr>> {
    let Some(wanted) = shared.settings.admin_listen.clone() else {
        return Ok(None);
    };
    let listener = listen(&wanted, shared.settings.listen_backlog).await?;
    let at = listener.local_addr()?;
    for u in &shared.settings.admin_users {
        if u.credential.is_empty() {
            tracing::warn!(user = %u.name, "an admin account without a password: the admin port shows every node's password");
        }
    }
    tokio::spawn(serve(listener, shared.clone(), Port::Admin));
    Ok(Some(at))
}

/// Past `max_connections`: answer ER_CON_COUNT_ERROR in place of a greeting, as MySQL does.
async fn refuse(mut stream: TcpStream) {
    let mut out = BytesMut::new();
    write_packet(
        &mut out,
        &mut 0,
        &err_payload(&SqlError::too_many_connections()),
    );
    let _ = stream.write_all(&out).await;
}

/// On each SIGHUP, reads the config file again and puts its layout (nodes, schemas,
/// rules, users) in effect. A file that does not validate changes nothing; the
/// `[server]`, `[pool]` and `[tls]` sections take effect at the next start.
/// `hup` is made before the listener is announced, so a SIGHUP never finds the
/// process with the default action (exit).
pub async fn reload_on_hangup(
    path: std::path::PathBuf,
    shared: Arc<Shared>,
    mut hup: tokio::signal::unix::Signal,
) {
    while hup.recv().await.is_some() {
        let outcome = crate::config::Config::from_file(&path)
            .map_err(|e| e.to_string())
            .and_then(|c| {
                shared
                    .topology
                    .replace(c.layout.cluster, c.layout.users)
                    .map_err(|e| e.to_string())
            });
        match outcome {
            Ok(t) => tracing::info!(
                config = %path.display(),
                generation = t.generation,
                "config reloaded; [server], [pool] and [tls] changes wait for a restart"
            ),
            Err(e) => tracing::error!("config reload refused, the running layout stays: {e}"),
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
