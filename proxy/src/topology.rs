//! The running layout as one immutable snapshot: the config as parsed, the rules
//! runtime built from it, the users, and the backend pools of its nodes.
//!
//! A statement runs against one snapshot from start to end, so it can never see the
//! rules of one version and the pools of another. Node ids index the snapshot they come
//! from; pools are shared between snapshots by node name and backend, so a swap keeps
//! the connections of every node it does not change. A session holding a connection
//! (a transaction, a pin) keeps its snapshot until it lets the connection go; a node
//! the new layout removes drains that way: its pools close when the last snapshot
//! naming them is dropped.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use rules::{ClusterConfig, ConfigErrors, NodeId, Runtime};

use crate::backend::{NodePools, Pool, PoolSettings};
use crate::config::{Layout, UserConfig};

/// Statements whose plans are kept, per logical schema.
const PLAN_CACHE_PER_SCHEMA: usize = 10_000;

/// One version of the layout. Node ids index both `runtime.nodes` and the pools.
pub struct Topology {
    /// 1 for the layout shardgate started with, one more for each replacement.
    pub generation: u64,
    pub cluster: ClusterConfig,
    /// The layout as a config file holds it: what the admin port shows and saves.
    pub document: toml::Table,
    /// Shared with the plans made against it: a plan cache or a prepared statement
    /// holding another runtime knows to plan again.
    pub runtime: Arc<Runtime>,
    pub users: Vec<UserConfig>,
    nodes: Vec<Arc<NodePools>>,
    /// Plans made against this runtime: sessions still on an older snapshot (in a
    /// transaction) keep using theirs, so the two never evict each other.
    pub plans: router::PlanCache,
}

impl Topology {
    /// The pools of node `id` of this snapshot.
    pub fn node(&self, id: NodeId) -> &Arc<NodePools> {
        &self.nodes[id]
    }

    pub fn nodes(&self) -> &[Arc<NodePools>] {
        &self.nodes
    }

    pub fn user(&self, name: &str) -> Option<&UserConfig> {
        self.users.iter().find(|u| u.name == name)
    }

    /// Some transaction may commit with XA: the default mode, a user's or a schema's.
    pub fn uses_xa(&self) -> bool {
        use rules::TransactionMode::Xa;
        self.runtime.transactions.mode == Xa
            || self.users.iter().any(|u| u.transactions == Some(Xa))
            || self
                .runtime
                .schemas
                .values()
                .any(|s| s.transactions == Some(Xa))
    }

    /// Every pool of every node: what the health task looks after.
    pub fn pools(&self) -> impl Iterator<Item = &Arc<Pool>> {
        self.nodes.iter().flat_map(|n| n.all_pools())
    }

    fn build(
        layout: Layout,
        generation: u64,
        pool: &PoolSettings,
        previous: Option<&Topology>,
    ) -> Topology {
        let causal = layout.causal_reads_anywhere();
        let nodes = layout
            .runtime
            .nodes
            .iter()
            .map(|node| {
                let before = previous.and_then(|p| p.nodes.iter().find(|n| n.name == node.name));
                Arc::new(NodePools::build(node, pool, before.map(|b| &**b), causal))
            })
            .collect();
        Topology {
            generation,
            document: layout.document(),
            cluster: layout.cluster,
            runtime: Arc::new(layout.runtime),
            users: layout.users,
            nodes,
            plans: router::PlanCache::new(PLAN_CACHE_PER_SCHEMA),
        }
    }
}

/// The snapshot in effect, and the one way to replace it.
pub struct Current {
    snapshot: ArcSwap<Topology>,
    pool: PoolSettings,
    /// Clients can be offered TLS (a user with `require_tls` needs it).
    tls: bool,
    /// Replacements one at a time, so that each builds on the one before (and its
    /// generation is the one before's plus one).
    replacing: Mutex<()>,
    /// The generation in effect, for idle sessions to move on (and let an old
    /// snapshot, with the pools of removed nodes, go) without waiting for a command.
    changed: tokio::sync::watch::Sender<u64>,
}

impl Current {
    pub fn new(layout: Layout, pool: PoolSettings, tls: bool) -> Current {
        let first = Topology::build(layout, 1, &pool, None);
        Current {
            snapshot: ArcSwap::from_pointee(first),
            pool,
            tls,
            replacing: Mutex::new(()),
            changed: tokio::sync::watch::channel(1).0,
        }
    }

    /// The generation of the snapshot in effect.
    pub fn generation(&self) -> u64 {
        self.snapshot.load().generation
    }

    /// Wakes when a new layout is in effect.
    pub fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The snapshot a statement starting now runs against.
    pub fn load(&self) -> Arc<Topology> {
        self.snapshot.load_full()
    }

    /// Validates `cluster` and `users` together and, when they hold, makes them the
    /// layout every statement from now on runs against. Pools of nodes whose backends
    /// are unchanged (address, account) carry over with their connections; statements
    /// in flight finish on the snapshot they started with.
    pub fn replace(
        &self,
        cluster: ClusterConfig,
        users: Vec<UserConfig>,
    ) -> Result<Arc<Topology>, ConfigErrors> {
        let layout = Layout::validate(cluster, users, self.tls).map_err(ConfigErrors)?;
        Ok(self.install(layout))
    }

    /// [`Current::replace`], only if generation `over` is still in effect; `Ok(None)`
    /// when it is not.
    pub fn replace_over(
        &self,
        cluster: ClusterConfig,
        users: Vec<UserConfig>,
        over: u64,
    ) -> Result<Option<Arc<Topology>>, ConfigErrors> {
        let layout = Layout::validate(cluster, users, self.tls).map_err(ConfigErrors)?;
        Ok(self.install_over(layout, over))
    }

    /// Reads and validates a layout from its config-file form, against this process's
    /// fixed settings (TLS for `require_tls` users); nothing changes.
    pub fn validate(&self, doc: &toml::Table) -> Result<Layout, Vec<rules::ConfigError>> {
        Layout::from_document(doc, self.tls)
    }

    /// Makes a validated layout the one every statement from now on runs against.
    pub fn install(&self, layout: Layout) -> Arc<Topology> {
        let one_at_a_time = self.replacing.lock().unwrap_or_else(|p| p.into_inner());
        self.install_locked(layout, one_at_a_time)
    }

    /// [`Current::install`], only if generation `over` is still in effect (the
    /// layout was derived from it, and must not undo a change made since).
    pub fn install_over(&self, layout: Layout, over: u64) -> Option<Arc<Topology>> {
        let one_at_a_time = self.replacing.lock().unwrap_or_else(|p| p.into_inner());
        (self.snapshot.load().generation == over)
            .then(|| self.install_locked(layout, one_at_a_time))
    }

    fn install_locked(
        &self,
        layout: Layout,
        _one_at_a_time: std::sync::MutexGuard<'_, ()>,
    ) -> Arc<Topology> {
        let previous = self.snapshot.load_full();
        let generation = previous.generation + 1;
        let next = Arc::new(Topology::build(
            layout,
            generation,
            &self.pool,
            Some(&previous),
        ));
        self.snapshot.store(next.clone());
        self.changed.send_replace(generation);
        metrics::counter!("shardgate_topology_swaps_total").increment(1);
        tracing::info!(generation, nodes = next.nodes.len(), "new layout in effect");
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    fn cluster(nodes: &[(&str, &str)]) -> ClusterConfig {
        let mut text = String::new();
        for (name, addr) in nodes {
            text.push_str(&format!(
                "[nodes.{name}]\nprimary = \"{addr}\"\nuser = \"u\"\npassword = \"p\"\nreplicas = [\"{addr}9\"]\n"
            ));
        }
        let names: Vec<String> = nodes.iter().map(|(n, _)| format!("\"{n}\"")).collect();
        text.push_str(&format!(
            "[rules.r]\nalgorithm = \"mod\"\nshards = {}\n\n[schemas.shop]\nnode = \"{}\"\n\n\
             [schemas.shop.tables.orders]\nkind = \"sharded\"\ncolumn = \"user_id\"\nrule = \"r\"\nnodes = [{}]\n",
            nodes.len(),
            nodes[0].0,
            names.join(", ")
        ));
        toml::from_str(&text).expect("test cluster")
    }

    fn user(schema: &str) -> UserConfig {
        toml::from_str(&format!(
            "name = \"app\"\npassword = \"pw\"\nschemas = [\"{schema}\"]"
        ))
        .expect("test user")
    }

    fn current(c: ClusterConfig) -> Current {
        let layout = Layout::validate(c, vec![user("shop")], false).expect("valid");
        Current::new(layout, PoolSettings::default(), false)
    }

    /// Node ids of a snapshot name the same node in its runtime and its pools, and the
    /// plan made from one snapshot routes to that snapshot's pools.
    fn consistent(t: &Topology) {
        assert_eq!(t.runtime.nodes.len(), t.nodes().len());
        for (id, node) in t.runtime.nodes.iter().enumerate() {
            assert_eq!(t.node(id).name, node.name);
            assert_eq!(t.node(id).primary.target.address, node.primary.to_string());
        }
    }

    #[test]
    fn unchanged_nodes_keep_their_pools_and_removed_ones_drain() {
        let cur = current(cluster(&[
            ("dn1", "127.0.0.1:1001"),
            ("dn2", "127.0.0.1:1002"),
        ]));
        let first = cur.load();
        let dn2 = first.node(1).clone();
        // dn0 sorts first: every positional id shifts, the pools must not.
        let second = cur
            .replace(
                cluster(&[
                    ("dn0", "127.0.0.1:1000"),
                    ("dn1", "127.0.0.1:1001"),
                    ("dn2", "127.0.0.1:1003"),
                ]),
                vec![user("shop")],
            )
            .expect("valid");
        consistent(&second);
        assert_eq!(second.generation, 2);
        assert!(
            Arc::ptr_eq(&first.node(0).primary, &second.node(1).primary),
            "dn1 kept"
        );
        assert!(Arc::ptr_eq(
            &first.node(0).replicas[0],
            &second.node(1).replicas[0]
        ));
        assert!(
            !Arc::ptr_eq(&dn2.primary, &second.node(2).primary),
            "dn2 moved: new pool"
        );
        // The old dn2 pool lives while a snapshot (a session's transaction) names it.
        let old_pool = Arc::downgrade(&dn2.primary);
        drop(dn2);
        assert!(old_pool.upgrade().is_some());
        drop(first);
        assert!(
            old_pool.upgrade().is_none(),
            "drained with the last snapshot"
        );
    }

    #[test]
    fn an_invalid_layout_leaves_the_current_one() {
        let cur = current(cluster(&[("dn1", "127.0.0.1:1001")]));
        let err = cur
            .replace(cluster(&[("dn1", "127.0.0.1:1001")]), vec![user("nope")])
            .err()
            .expect("unknown schema refused");
        assert!(err.to_string().contains("unknown schema `nope`"), "{err}");
        assert_eq!(cur.load().generation, 1);
    }

    /// Statements load a snapshot, plan against its runtime and pick pools from it
    /// while another task swaps layouts whose node ids all differ.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn swaps_under_concurrent_statements() {
        let a = cluster(&[("dn1", "127.0.0.1:1001"), ("dn2", "127.0.0.1:1002")]);
        let b = cluster(&[
            ("dn0", "127.0.0.1:1000"),
            ("dn1", "127.0.0.1:1001"),
            ("dn2", "127.0.0.1:1002"),
        ]);
        let cur = Arc::new(current(a.clone()));
        const SWAPS: u64 = 200;
        const WORKERS: usize = 4;
        // Swapping starts once every statement task runs, and each task runs until it
        // has seen the last layout: every task runs across the swaps.
        let started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut statements = Vec::new();
        for worker in 0..WORKERS as u64 {
            let (cur, started) = (cur.clone(), started.clone());
            statements.push(tokio::spawn(async move {
                let mut seen = std::collections::BTreeSet::new();
                let mut n = 0u64;
                while !seen.contains(&(SWAPS + 1)) {
                    let t = cur.load();
                    let schema = &t.runtime.schemas["shop"];
                    let sql = format!("SELECT * FROM orders WHERE user_id = {}", worker + n);
                    let plan = router::plan::plan(
                        sql.as_bytes(),
                        schema,
                        &t.runtime,
                        router::reading::Reading::DEFAULT,
                    )
                    .expect("plans")
                    .expect("a routed plan");
                    for target in &plan.targets {
                        // The id routes to the node the rule placed the key on, by
                        // the name both the plan's runtime and the pools agree on.
                        assert_eq!(t.node(target.node).name, t.runtime.nodes[target.node].name);
                    }
                    consistent(&t);
                    if seen.insert(t.generation) && seen.len() == 1 {
                        started.fetch_add(1, Ordering::Relaxed);
                    }
                    n += 1;
                    tokio::task::yield_now().await;
                }
                seen
            }));
        }
        while started.load(Ordering::Relaxed) < WORKERS {
            tokio::task::yield_now().await;
        }
        for i in 0..SWAPS {
            let next = if i % 2 == 0 { b.clone() } else { a.clone() };
            cur.replace(next, vec![user("shop")]).expect("valid");
            tokio::task::yield_now().await;
        }
        assert_eq!(cur.load().generation, SWAPS + 1);
        for s in statements {
            let seen = s.await.expect("no statement panicked");
            assert!(seen.contains(&1) && seen.contains(&(SWAPS + 1)), "{seen:?}");
        }
    }
}
