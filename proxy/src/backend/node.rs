//! The pools of one data node (replication group) and the choice among them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rules::DataNode;

use super::link::BackendTls;
use super::{BackendServer, Pool, PoolSettings};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Primary,
    Replica(usize),
}

pub struct NodePools {
    pub name: String,
    pub primary: Arc<Pool>,
    pub replicas: Vec<Arc<Pool>>,
    /// Replica indexes, each repeated by its weight, interleaved: the round-robin order.
    schedule: Vec<usize>,
    next: AtomicUsize,
}

impl NodePools {
    /// A connection for a statement (a read may take a replica's) can be had
    /// without waiting.
    pub fn lends_now(&self, read_only: bool) -> bool {
        let healthy: Vec<&Arc<Pool>> = self.replicas.iter().filter(|r| r.serves_reads()).collect();
        if read_only && !healthy.is_empty() {
            // A read may be given any healthy replica: each must lend at once.
            return healthy.iter().all(|r| r.lends_now());
        }
        self.primary.lends_now()
    }

    /// The pools of `node`, taking over those of `before` (the same node in the layout
    /// being replaced) whose backend is unchanged, with their open connections.
    /// `causal`: some session may need to read its writes; the primary then reports
    /// the GTID of each, when the node has replicas to read from.
    pub fn build(
        node: &DataNode,
        settings: &PoolSettings,
        before: Option<&NodePools>,
        causal: bool,
    ) -> NodePools {
        let track_gtid = causal && !node.replicas.is_empty();
        let tls = BackendTls::of(node);
        let pool = |label: String, endpoint: &rules::Endpoint, track_gtid: bool| {
            let target = BackendServer {
                label,
                address: endpoint.to_string(),
                user: node.user.clone(),
                password: node.password.clone(),
                track_gtid,
                read_timeout: settings.read_timeout,
                tls: tls.clone(),
            };
            let kept = before.and_then(|b| b.all_pools().find(|p| p.target == target));
            match kept {
                Some(p) => p.clone(),
                None => Pool::new(target, settings.clone()),
            }
        };
        let primary = pool(format!("{}/primary", node.name), &node.primary, track_gtid);
        let replicas = node
            .replicas
            .iter()
            .enumerate()
            .map(|(i, r)| pool(format!("{}/replica[{i}]", node.name), &r.endpoint, false))
            .collect();
        let weights: Vec<u32> = node.replicas.iter().map(|r| r.weight).collect();
        NodePools {
            name: node.name.clone(),
            primary,
            replicas,
            schedule: smooth_schedule(&weights),
            next: AtomicUsize::new(0),
        }
    }

    /// The next healthy replica in weighted round-robin order, or `None` when there is
    /// none (reads then go to the primary).
    pub fn pick_replica(&self) -> Option<usize> {
        if self.schedule.is_empty() {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..self.schedule.len())
            .map(|k| self.schedule[(start + k) % self.schedule.len()])
            .find(|&i| self.replicas[i].serves_reads())
    }

    pub fn pool(&self, role: Role) -> &Arc<Pool> {
        match role {
            Role::Primary => &self.primary,
            Role::Replica(i) => &self.replicas[i],
        }
    }

    pub fn all_pools(&self) -> impl Iterator<Item = &Arc<Pool>> {
        std::iter::once(&self.primary).chain(self.replicas.iter())
    }
}

/// Smooth weighted round robin (as nginx does it): weights 5,1,1 give
/// a a b a c a a rather than a a a a a b c, so no replica gets a burst.
fn smooth_schedule(weights: &[u32]) -> Vec<usize> {
    let total: i64 = weights.iter().map(|&w| w as i64).sum();
    let mut current = vec![0i64; weights.len()];
    let mut out = Vec::with_capacity(total as usize);
    for _ in 0..total {
        for (c, &w) in current.iter_mut().zip(weights) {
            *c += w as i64;
        }
        let Some((best, _)) = current
            .iter()
            .enumerate()
            .max_by_key(|(i, c)| (**c, -(*i as i64)))
        else {
            break;
        };
        current[best] -= total;
        out.push(best);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::smooth_schedule;

    #[test]
    fn schedule_respects_weights_and_spreads() {
        assert_eq!(smooth_schedule(&[5, 1, 1]), vec![0, 0, 1, 0, 2, 0, 0]);
        assert_eq!(smooth_schedule(&[1, 1]), vec![0, 1]);
        let s = smooth_schedule(&[1, 3]);
        assert_eq!(s.iter().filter(|&&i| i == 1).count(), 3);
        assert!(smooth_schedule(&[]).is_empty());
    }
}
