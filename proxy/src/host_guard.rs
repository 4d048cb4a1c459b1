//! Failed logins, counted per client address, as MySQL's `max_connect_errors` and its
//! connection_control plugin count them. Each failure past a threshold makes that
//! address's next login attempts wait longer (a password guesser gets a few tries a
//! minute, not thousands a second); enough of them block the address until `FLUSH
//! HOSTS` on the admin port. A good login clears its address's count.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Addresses remembered at most: spraying from many addresses cannot grow memory
/// without bound (the oldest records give way).
const MAX_HOSTS: usize = 65_536;

#[derive(Debug, Clone, Copy)]
pub struct LoginPolicy {
    /// Failures in a row that block an address; 0: never block.
    pub max_connect_errors: u32,
    /// Failures in a row before attempts are delayed; 0: never delay.
    pub delay_after: u32,
    /// The first delay; each further failure doubles it, up to `delay_max` (which
    /// also caps the first).
    pub delay: Duration,
    pub delay_max: Duration,
}

#[derive(Debug)]
pub struct HostGuard {
    policy: LoginPolicy,
    hosts: Mutex<HashMap<IpAddr, Record>>,
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last: Instant,
}

/// A blocked address, for `SHOW HOSTS`.
#[derive(Debug, Clone)]
pub struct HostFailures {
    pub address: IpAddr,
    pub failures: u32,
    pub blocked: bool,
    pub since_last: Duration,
}

impl HostGuard {
    pub fn new(policy: LoginPolicy) -> HostGuard {
        HostGuard {
            policy,
            hosts: Mutex::new(HashMap::new()),
        }
    }

    fn hosts(&self) -> MutexGuard<'_, HashMap<IpAddr, Record>> {
        self.hosts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn failures(&self, ip: IpAddr) -> u32 {
        self.hosts().get(&ip).map_or(0, |r| r.failures)
    }

    /// The address may not even be greeted.
    pub fn is_blocked(&self, ip: IpAddr) -> bool {
        let max = self.policy.max_connect_errors;
        max > 0 && self.failures(ip) >= max
    }

    /// How long this address's login attempt waits before its answer is checked.
    pub fn delay(&self, ip: IpAddr) -> Duration {
        let p = &self.policy;
        let failures = self.failures(ip);
        if p.delay_after == 0 || failures < p.delay_after {
            return Duration::ZERO;
        }
        let doublings = (failures - p.delay_after).min(20);
        p.delay.saturating_mul(1 << doublings).min(p.delay_max)
    }

    pub fn failed(&self, ip: IpAddr) {
        let mut hosts = self.hosts();
        if hosts.len() >= MAX_HOSTS && !hosts.contains_key(&ip) {
            if let Some(oldest) = hosts.iter().min_by_key(|(_, r)| r.last).map(|(k, _)| *k) {
                hosts.remove(&oldest);
            }
        }
        let r = hosts.entry(ip).or_insert(Record {
            failures: 0,
            last: Instant::now(),
        });
        r.failures = r.failures.saturating_add(1);
        r.last = Instant::now();
        let (failures, max) = (r.failures, self.policy.max_connect_errors);
        drop(hosts);
        if max > 0 && failures == max {
            tracing::warn!(address = %ip, failures, "client address blocked after failed logins; FLUSH HOSTS on the admin port unblocks it");
            metrics::counter!("shardgate_hosts_blocked_total").increment(1);
        }
    }

    pub fn succeeded(&self, ip: IpAddr) {
        self.hosts().remove(&ip);
    }

    /// `FLUSH HOSTS`: every address starts afresh.
    pub fn flush(&self) {
        self.hosts().clear();
    }

    pub fn list(&self) -> Vec<HostFailures> {
        let now = Instant::now();
        let max = self.policy.max_connect_errors;
        let mut out: Vec<HostFailures> = self
            .hosts()
            .iter()
            .map(|(ip, r)| HostFailures {
                address: *ip,
                failures: r.failures,
                blocked: max > 0 && r.failures >= max,
                since_last: now.duration_since(r.last),
            })
            .collect();
        out.sort_by_key(|h| h.address);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> HostGuard {
        HostGuard::new(LoginPolicy {
            max_connect_errors: 5,
            delay_after: 2,
            delay: Duration::from_millis(100),
            delay_max: Duration::from_millis(350),
        })
    }

    #[test]
    fn failures_delay_then_block_and_a_good_login_clears_them() {
        let g = guard();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let delays: Vec<u128> = (0..5)
            .map(|_| {
                let d = g.delay(a).as_millis();
                g.failed(a);
                d
            })
            .collect();
        assert_eq!(delays, [0, 0, 100, 200, 350]);
        assert!(g.is_blocked(a));
        assert!(!g.is_blocked(b), "per address");
        assert_eq!(g.delay(b), Duration::ZERO);
        g.flush();
        assert!(!g.is_blocked(a));
        g.failed(b);
        g.failed(b);
        g.succeeded(b);
        assert_eq!(g.delay(b), Duration::ZERO);
    }

    #[test]
    fn the_record_stays_bounded() {
        let g = guard();
        for i in 0..(MAX_HOSTS as u32 + 10) {
            g.failed(IpAddr::from(i.to_be_bytes()));
        }
        assert_eq!(g.list().len(), MAX_HOSTS);
    }
}
