//! `shardgate playground`: a sandbox of two replication groups with sample data and
//! shardgate in front of it, to try things from a `mysql` client.

use std::fmt::Write as _;

use anyhow::Context;

use crate::config::Config;
use crate::sandbox::{Sandbox, PASSWORD, USER};

pub const APP_USER: &str = "app";
/// The admin port's account in the playground.
pub const ADMIN_USER: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin";
pub const APP_PASSWORD: &str = "app";

/// Run on both primaries: `shop` exists on both nodes, `products` is a broadcast table.
const SHOP_EVERYWHERE: &str = "CREATE DATABASE shop;
CREATE TABLE shop.products (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, price DECIMAL(10,2) NOT NULL);
INSERT INTO shop.products VALUES (1,'teapot',24.50),(2,'mug',7.90),(3,'kettle',39.00);";

/// `orders` is sharded by user_id over 4 physical tables (mod 4, round robin: shards 0
/// and 2 on dn1, 1 and 3 on dn2); created through shardgate's own routing below.
const ORDERS: &[&str] = &[
    "CREATE TABLE orders (id BIGINT PRIMARY KEY, user_id INT NOT NULL, product_id INT NOT NULL, qty INT NOT NULL)",
    "INSERT INTO orders (id, user_id, product_id, qty) VALUES (1, 1, 1, 2), (2, 2, 2, 6), (3, 3, 3, 1), (4, 4, 1, 1), (5, 5, 2, 3), (6, 6, 3, 2)",
];

const CRM: &str = "CREATE DATABASE crm;
CREATE TABLE crm.customers (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, city VARCHAR(64));
INSERT INTO crm.customers VALUES (1,'Ada','London'),(2,'Grace','Arlington'),(3,'Linus','Helsinki');";

/// The config for a sandbox with groups dn1 (schema `shop`) and dn2 (schema `crm`).
pub fn config_for(sandbox: &Sandbox, listen: &str) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# Written by `shardgate playground`.\n[server]\nlisten = \"{listen}\"\n"
    );
    let _ = writeln!(
        t,
        "[[users]]\nname = \"{APP_USER}\"\npassword = \"{APP_PASSWORD}\"\n"
    );
    for (i, g) in sandbox.groups.iter().enumerate() {
        let reps: Vec<String> = g
            .replicas
            .iter()
            .map(|r| format!("\"{}\"", r.address()))
            .collect();
        let _ = writeln!(
            t,
            "[nodes.dn{}]\nprimary = \"{}\"\nreplicas = [{}]\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n",
            i + 1,
            g.primary.address(),
            reps.join(", ")
        );
    }
    let _ = writeln!(
        t,
        "[rules.by_user]\nalgorithm = \"mod\"\nshards = 4\n\n\
         [schemas.shop]\nnode = \"dn1\"\n\n\
         [schemas.shop.tables.orders]\nkind = \"sharded\"\ncolumn = \"user_id\"\nrule = \"by_user\"\n\
         nodes = [\"dn1\", \"dn2\"]\ntables_per_node = 2\n\n\
         [schemas.shop.tables.products]\nkind = \"broadcast\"\n\n\
         [schemas.crm]\nnode = \"dn2\"\n\n\
         [admin]\nusers = [{{ name = \"{ADMIN_USER}\", password = \"{ADMIN_PASSWORD}\" }}]"
    );
    t
}

pub fn run(listen: &str) -> anyhow::Result<()> {
    eprintln!("starting MariaDB: 2 replication groups, each a primary and a replica ...");
    let sandbox = Sandbox::start(&[1, 1])?;
    sandbox.exec(&sandbox.groups[0].primary, SHOP_EVERYWHERE)?;
    sandbox.exec(&sandbox.groups[1].primary, SHOP_EVERYWHERE)?;
    sandbox.exec(&sandbox.groups[1].primary, CRM)?;
    sandbox.sync()?;
    let text = config_for(&sandbox, listen);
    let path = sandbox.root().join("shardgate.toml");
    std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
    let mut config = Config::from_toml(&text, &path.display().to_string())?;
    // As if started with --config: the admin port saves to the file, and keeps its
    // history beside it.
    config.settings.config_file = Some(path.clone());
    config.settings.data_dir = Some(sandbox.root().join("shardgate-data"));

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result: anyhow::Result<()> = rt.block_on(async {
        let (listener, shared) = crate::server::bind(config)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        // SIGHUP reloads the playground's config file, as with `--config`.
        let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        tokio::spawn(crate::server::reload_on_hangup(
            path.clone(),
            shared.clone(),
            hup,
        ));
        let http = match shared.settings.http_listen.clone() {
            Some(at) => crate::http::start(&at, shared.clone()).await.ok(),
            None => None,
        };
        let admin = crate::server::start_admin(&shared).await.ok().flatten();
        let server = tokio::spawn(crate::server::serve(
            listener,
            shared,
            crate::session::Port::Data,
        ));
        load_orders(addr).await?;
        // Replicas answer reads: let them catch up before anyone reads.
        sandbox.sync()?;
        println!("\nshardgate playground is running.\n");
        for (i, g) in sandbox.groups.iter().enumerate() {
            println!(
                "  data node dn{}: primary {} (server_id {}), replica {} (server_id {})",
                i + 1,
                g.primary.address(),
                g.primary.server_id,
                g.replicas[0].address(),
                g.replicas[0].server_id
            );
        }
        println!("  logical schemas: shop (default node dn1), crm (on dn2)");
        println!("  shop.orders is sharded by user_id (mod 4) over dn1 and dn2; shop.products is on both");
        println!("  config: {}", path.display());
        if let Some(at) = http {
            println!("  metrics: curl http://{at}/metrics   (also /health, /ready)");
        }
        if let Some(at) = admin {
            println!(
                "  admin port: mysql -h {} -P {} -u {ADMIN_USER} -p{ADMIN_PASSWORD}   (SELECT * FROM tables; SHOW CONFIG HISTORY)",
                at.ip(),
                at.port()
            );
        }
        println!(
            "  the MariaDB servers themselves: user {}, password {} (mysql -h 127.0.0.1 -P <port> -u {} -p{})\n",
            USER, PASSWORD, USER, PASSWORD
        );
        println!(
            "Connect with (-c keeps the /* shardgate:... */ hint comments, which the client\n\
             drops otherwise):\n\n  mysql -c -h {} -P {} -u {APP_USER} -p{APP_PASSWORD} shop\n",
            addr.ip(),
            addr.port()
        );
        println!("Try:  SELECT @@server_id;   -- a replica answers reads");
        println!("      /* shardgate:primary */ SELECT @@server_id;");
        println!("      SELECT * FROM orders WHERE user_id = 5;   -- one shard");
        println!("      SELECT * FROM orders;                     -- every shard, one result");
        println!("      EXPLAIN SHARDING SELECT * FROM orders WHERE user_id IN (1, 2);");
        println!("      USE crm;  SELECT * FROM customers;\n");
        println!("Press Ctrl-C to stop; the sandbox is removed.");
        tokio::select! {
            _ = server => {}
            _ = crate::server::shutdown_signal() => {}
        }
        Ok(())
    });
    eprintln!("stopping; removing the sandbox ...");
    drop(sandbox);
    result
}

/// Creates and fills the sharded `orders` table through shardgate itself, as a client
/// would: the DDL fans out to every shard and the rows land on theirs.
async fn load_orders(addr: std::net::SocketAddr) -> anyhow::Result<()> {
    use crate::backend::{BackendConn, BackendServer, Flavor};
    let target = BackendServer {
        label: "playground".into(),
        address: addr.to_string(),
        user: APP_USER.into(),
        password: APP_PASSWORD.into(),
        track_gtid: false,
        read_timeout: None,
        tls: None,
    };
    let mut conn = BackendConn::connect(
        &target,
        Flavor::default(),
        Some("shop"),
        std::time::Duration::from_secs(10),
    )
    .await
    .context("connecting to the playground's shardgate")?;
    for sql in ORDERS {
        conn.execute_ok(sql.as_bytes())
            .await
            .with_context(|| format!("running {sql}"))?;
    }
    Ok(())
}
