//! `shardgate playground`: a sandbox of two replication groups with sample data and
//! shardgate in front of it, to try things from a `mysql` client.

use std::fmt::Write as _;

use anyhow::Context;

use crate::config::Settings;
use crate::sandbox::{Sandbox, PASSWORD, USER};

pub const APP_USER: &str = "app";
pub const APP_PASSWORD: &str = "app";

const SHOP: &str = "CREATE DATABASE shop;
CREATE TABLE shop.products (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, price DECIMAL(10,2) NOT NULL);
INSERT INTO shop.products VALUES (1,'teapot',24.50),(2,'mug',7.90),(3,'kettle',39.00);
CREATE TABLE shop.orders (id BIGINT AUTO_INCREMENT PRIMARY KEY, product_id INT NOT NULL, qty INT NOT NULL, created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP);
INSERT INTO shop.orders (product_id, qty) VALUES (1,2),(2,6),(3,1);";

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
        "[schemas.shop]\nnode = \"dn1\"\n\n[schemas.crm]\nnode = \"dn2\""
    );
    t
}

pub fn run(listen: &str) -> anyhow::Result<()> {
    eprintln!("starting MariaDB: 2 replication groups, each a primary and a replica ...");
    let sandbox = Sandbox::start(&[1, 1])?;
    sandbox.exec(&sandbox.groups[0].primary, SHOP)?;
    sandbox.exec(&sandbox.groups[1].primary, CRM)?;
    sandbox.sync()?;
    let text = config_for(&sandbox, listen);
    let path = sandbox.root().join("shardgate.toml");
    std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
    let settings = Settings::from_toml(&text, &path.display().to_string())?;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result: anyhow::Result<()> = rt.block_on(async {
        let (listener, shared) = crate::server::bind(settings)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
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
        println!("  logical schemas: shop (on dn1), crm (on dn2)");
        println!("  config: {}\n", path.display());
        println!(
            "Connect with:\n\n  mysql -h {} -P {} -u {APP_USER} -p{APP_PASSWORD} shop\n",
            addr.ip(),
            addr.port()
        );
        println!("Try:  SELECT @@server_id;   -- a replica answers reads");
        println!("      /* shardgate:primary */ SELECT @@server_id;");
        println!("      SELECT * FROM products;  USE crm;  SELECT * FROM customers;\n");
        println!("Press Ctrl-C to stop; the sandbox is removed.");
        tokio::select! {
            _ = crate::server::serve(listener, shared) => {}
            _ = crate::server::shutdown_signal() => {}
        }
        Ok(())
    });
    eprintln!("stopping; removing the sandbox ...");
    drop(sandbox);
    result
}
