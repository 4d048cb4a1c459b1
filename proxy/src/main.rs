#![forbid(unsafe_code)]

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use proxy::config::{Config, DEFAULT_LISTEN};

/// shardgate: a MySQL sharding proxy. Applications connect to it as to one MySQL
/// server; it routes reads to replicas, writes to primaries, and splits sharded
/// tables across data nodes.
#[derive(Parser)]
#[command(name = "shardgate", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Start a local sandbox (two MariaDB replication groups) with sample data, and
    /// shardgate in front of it. Ctrl-C stops and removes everything.
    #[cfg(feature = "playground")]
    Playground {
        /// Where shardgate listens.
        #[arg(long, default_value = DEFAULT_LISTEN)]
        listen: String,
    },
    /// Compare the copies of every broadcast table on every node (CHECKSUM TABLE);
    /// exit 1 when any differ or cannot be read.
    CheckBroadcast {
        /// The config file (TOML) naming the nodes and tables.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Print the config lines for a front-end password given as hashes
    /// (`password_native_hash`, `password_sha2_hash`); the password is read from
    /// standard input, one line.
    HashPassword,
    /// Validate a config file and exit.
    CheckConfig {
        /// The config file (TOML) to check.
        #[arg(long, short)]
        config: PathBuf,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// Config file (TOML). Without it, give --primary for pass-through mode.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Address to listen on (pass-through mode).
    #[arg(long)]
    listen: Option<String>,
    /// Backend primary, host:port (pass-through mode).
    #[arg(long)]
    primary: Option<String>,
    /// Backend replica, host:port; repeat for more (pass-through mode).
    #[arg(long)]
    replica: Vec<String>,
    /// User name, for clients and for the backend (pass-through mode).
    #[arg(long)]
    user: Option<String>,
    /// Password, for clients and for the backend (pass-through mode).
    #[arg(long, default_value = "")]
    password: String,
    /// Worker threads (pass-through mode; `server.worker_threads` in a config file).
    #[arg(long)]
    threads: Option<usize>,
    /// Where /metrics, /health and /ready are served, "" for nowhere (pass-through
    /// mode; `admin.http_listen` in a config file). Default 127.0.0.1:9067.
    #[arg(long)]
    http_listen: Option<String>,
    /// Where the admin SQL port listens, "" for nowhere (pass-through mode, where its
    /// account is --user/--password; `admin.listen` in a config file). Default
    /// 127.0.0.1:9066.
    #[arg(long)]
    admin_listen: Option<String>,
    /// Where the admin port keeps its staged config, history and audit (pass-through
    /// mode; a config file's `server.data_dir`). Without it they live in memory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

fn init_logging() {
    let wanted = std::env::var("SHARDGATE_LOG").unwrap_or_else(|_| "info".to_string());
    // sqlparser's own debug output quotes whole statements, passwords included: it
    // stays quiet unless asked for by name.
    let wanted = if wanted.contains("sqlparser") {
        wanted
    } else {
        format!("{wanted},sqlparser=warn")
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&wanted)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlparser=warn"));
    // Colours only for a terminal: a log file gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
}

fn config_from(args: &ServeArgs) -> anyhow::Result<Config> {
    match (&args.config, &args.primary) {
        (Some(_), Some(_)) => bail!("give either --config or --primary, not both"),
        (Some(path), None) => Ok(Config::from_file(path)?),
        (None, Some(primary)) => {
            let user = args
                .user
                .as_deref()
                .context("--user is required with --primary")?;
            let listen = args.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
            let mut config =
                Config::passthrough(listen, primary, &args.replica, user, &args.password)?;
            if let Some(http) = &args.http_listen {
                config.settings.http_listen = (!http.is_empty()).then(|| http.clone());
                config.settings.http_listen_asked = true;
            }
            if let Some(admin) = &args.admin_listen {
                config.settings.admin_listen = (!admin.is_empty()).then(|| admin.clone());
                config.settings.admin_listen_asked = true;
            }
            if let Some(dir) = &args.data_dir {
                config.settings.data_dir = Some(dir.clone());
            }
            Ok(config)
        }
        (None, None) => bail!(
            "nothing to serve: give --config FILE, or --primary HOST:PORT --user U --password P \
             (or run scripts/playground); see --help"
        ),
    }
}

fn runtime(threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    Ok(rt)
}

/// Each client holds a socket, and so may a backend connection for it: the soft
/// limit on open files (often 1024) is raised to the hard one, as servers do, and a
/// limit still too small for `max_connections` is said at start, not found at the
/// first refused accept.
fn raise_fd_limit(max_connections: usize) {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let now = getrlimit(Resource::Nofile);
    let wanted = Rlimit {
        current: now.maximum,
        maximum: now.maximum,
    };
    if now.current != now.maximum {
        if let Err(e) = setrlimit(Resource::Nofile, wanted) {
            tracing::warn!(error = %e, "could not raise the open-file limit");
        }
    }
    let limit = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    // A client, a backend connection for it, and room for pools, logs, listeners.
    let needed = 2 * max_connections as u64 + 100;
    if limit < needed {
        tracing::warn!(open_files = limit, max_connections, "the open-file limit is too low for server.max_connections clients; raise it (ulimit -n, LimitNOFILE=) to at least {needed}");
    } else {
        tracing::debug!(open_files = limit, "open-file limit");
    }
}

/// Errors are printed as their message chain only: a config mistake is not a crash,
/// and gets no backtrace even under RUST_BACKTRACE=1.
fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Some(Command::CheckConfig { config }) => {
            let c = Config::from_file(&config)?;
            let count =
                |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
            println!(
                "{}: ok ({}, {}, {})",
                config.display(),
                count(c.layout.runtime.nodes.len(), "node"),
                count(c.layout.runtime.schemas.len(), "schema"),
                count(c.layout.users.len(), "user")
            );
            Ok(())
        }
        Some(Command::HashPassword) => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the password from standard input")?;
            let password = line.strip_suffix('\n').unwrap_or(&line);
            let password = password.strip_suffix('\r').unwrap_or(password);
            if password.is_empty() {
                bail!("no password on standard input");
            }
            print!("{}", proxy::credential::config_lines(password));
            Ok(())
        }
        #[cfg(feature = "playground")]
        Some(Command::Playground { listen }) => proxy::playground::run(&listen),
        Some(Command::CheckBroadcast { config }) => {
            let c = Config::from_file(&config)?;
            let report = runtime(1)?.block_on(proxy::check_broadcast::check(
                &c.layout.runtime,
                c.settings.pool.connect_timeout,
            ));
            let (text, consistent) = proxy::check_broadcast::render(&report);
            print!("{text}");
            if !consistent {
                bail!("broadcast copies differ or could not be read");
            }
            Ok(())
        }
        None => {
            let config = config_from(&cli.serve)?;
            raise_fd_limit(config.settings.max_connections);
            let reload = cli.serve.config.clone();
            let rt = runtime(config.settings.worker_threads)?;
            rt.block_on(async move {
                let listen = config.settings.listen.clone();
                let (listener, shared) = proxy::server::bind(config)
                    .await
                    .with_context(|| format!("cannot listen on {listen}"))?;
                let addr = listener.local_addr()?;
                if let Some(path) = reload {
                    let hup =
                        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
                    tokio::spawn(proxy::server::reload_on_hangup(path, shared.clone(), hup));
                }
                tracing::info!(listen = %addr, version = %shared.server_version, "shardgate ready");
                let mut http_at = None;
                if let Some(wanted) = shared.settings.http_listen.clone() {
                    match proxy::http::start(&wanted, shared.clone()).await {
                        Ok(at) => http_at = Some(at),
                        Err(e) if shared.settings.http_listen_asked => {
                            return Err(anyhow::anyhow!(e))
                                .with_context(|| format!("cannot serve HTTP on {wanted}"));
                        }
                        Err(e) => tracing::warn!(listen = %wanted, error = %e,
                            "no /metrics, /health or /ready: cannot listen there (set admin.http_listen)"),
                    }
                }
                let admin_at = match proxy::server::start_admin(&shared).await {
                    Ok(at) => at,
                    Err(e) if shared.settings.admin_listen_asked => {
                        return Err(anyhow::anyhow!(e)).with_context(|| {
                            format!(
                                "cannot open the admin port on {}",
                                shared.settings.admin_listen.as_deref().unwrap_or("")
                            )
                        });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "no admin port: cannot listen there (set admin.listen)");
                        None
                    }
                };
                // On stdout so scripts that asked for port 0 learn the real one; once
                // every listener is up, so that whoever reads it may use them all.
                println!("shardgate listening on {addr}");
                // Whoever read the first line may have stopped reading.
                if let Some(at) = http_at {
                    tracing::info!(listen = %at, "metrics and health on HTTP");
                    let _ = writeln!(std::io::stdout(), "shardgate http on {at}");
                }
                if let Some(at) = admin_at {
                    tracing::info!(listen = %at, "admin port");
                    let _ = writeln!(std::io::stdout(), "shardgate admin on {at}");
                }
                let server = tokio::spawn(proxy::server::serve(
                    listener,
                    shared.clone(),
                    proxy::session::Port::Data,
                ));
                proxy::server::shutdown_signal().await;
                tracing::info!(
                    "shutting down: refusing new connections, finishing statements in flight"
                );
                shared.drain(std::time::Duration::from_secs(30)).await;
                let _ = server.await;
                Ok(())
            })
        }
    }
}
