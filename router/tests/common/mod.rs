//! The cluster the router tests plan against: two nodes (dn2 with its own database
//! name), tables sharded by mod, month and range, a binding group, a broadcast and a
//! single table.

use rules::{ClusterConfig, Runtime};

pub const CONFIG: &str = r#"
[nodes.dn1]
primary = "10.0.0.1:3306"
user = "u"
[nodes.dn2]
primary = "10.0.0.2:3306"
user = "u"
database = "shop_b"

[rules.by_user]
algorithm = "mod"
shards = 4

[rules.by_month]
algorithm = "date"
unit = "month"
start = "2024-01-01"
time_zone = "UTC"
shards = 4
suffix_pattern = "yyyyMM"

[rules.by_range]
algorithm = "range"
boundaries = [0, 1000, 2000]

[schemas.shop]
node = "dn1"
binding = [["orders", "order_items"]]

[schemas.shop.tables.orders]
kind = "sharded"
column = "user_id"
rule = "by_user"
nodes = ["dn1", "dn2"]
tables_per_node = 2
global_id = { column = "id" }

[schemas.shop.tables.order_items]
kind = "sharded"
column = "user_id"
rule = "by_user"
nodes = ["dn1", "dn2"]
tables_per_node = 2

[schemas.shop.tables.events]
kind = "sharded"
column = "created_at"
rule = "by_month"
nodes = ["dn1", "dn2"]
tables_per_node = 2

[schemas.shop.tables.accounts]
kind = "sharded"
column = "id"
rule = "by_range"
nodes = ["dn1", "dn2"]

[schemas.shop.tables.countries]
kind = "broadcast"

[schemas.shop.tables.audit]
kind = "single"
node = "dn2"
"#;

pub fn runtime() -> Runtime {
    let cfg: ClusterConfig = toml::from_str(CONFIG).unwrap();
    Runtime::build(&cfg).unwrap()
}
