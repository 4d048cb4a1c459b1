//! Failed logins, counted per client address and per account, as MySQL's
//! `max_connect_errors` and its connection_control plugin count them. Each failure
//! past a threshold makes that address's next attempts at that account wait longer
//! (a password guesser gets a few tries a minute, not thousands a second); enough
//! failures from one address block it until `FLUSH HOSTS` on the admin port, or an
//! hour without attempts. A good login clears its account's count and its address's,
//! as in MySQL: the delays, kept per account, still hold for the accounts it did not
//! log in to.
//!
//! An attempt counts as failed before its answer is checked, and is taken back when
//! it succeeds: attempts running at once count each other, so opening many
//! connections together buys no extra guesses. IPv6 addresses count per /64, the
//! block one host is given.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Records kept at most, per kind: spraying from many addresses cannot grow memory
/// without bound (records of blocked addresses and recent failures are kept first).
const MAX_RECORDS: usize = 65_536;
/// A record this old is forgotten, a block with it.
const EXPIRE: Duration = Duration::from_secs(3600);
/// When full, records older than this (and not blocking) make room.
const RECENT: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy)]
pub struct LoginPolicy {
    /// Failures in a row that block an address; 0: never block.
    pub max_connect_errors: u32,
    /// Failures in a row at one account before attempts are delayed; 0: never delay.
    pub delay_after: u32,
    /// The first delay; each further failure doubles it, up to `delay_max` (which
    /// also caps the first).
    pub delay: Duration,
    pub delay_max: Duration,
}

#[derive(Debug)]
pub struct HostGuard {
    policy: LoginPolicy,
    /// False on the admin port: blocking it would lock out the only place FLUSH HOSTS
    /// can be run. Its attempts are delayed only.
    blocks: bool,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    hosts: HashMap<IpAddr, Record>,
    accounts: HashMap<(IpAddr, String), Record>,
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last: Instant,
}

/// What `begin` decided for one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// Wait this long before the answer is checked.
    pub delay: Duration,
    /// The address was blocked by attempts running at the same time: refuse.
    pub blocked: bool,
}

/// A row of `SHOW HOSTS`.
#[derive(Debug, Clone)]
pub struct Failures {
    pub address: IpAddr,
    /// `None`: the address as a whole.
    pub user: Option<String>,
    pub failures: u32,
    pub blocked: bool,
    pub since_last: Duration,
}

/// The address a count is kept for: IPv6 by its /64, IPv4 as itself.
fn host_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
        v4 => v4,
    }
}

fn live(r: Option<&Record>, now: Instant) -> u32 {
    r.filter(|r| now.duration_since(r.last) < EXPIRE)
        .map_or(0, |r| r.failures)
}

impl HostGuard {
    pub fn new(policy: LoginPolicy, blocks: bool) -> HostGuard {
        HostGuard {
            policy,
            blocks,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while counting leaves the counts as they were.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn blocking(&self, failures: u32) -> bool {
        let max = self.policy.max_connect_errors;
        self.blocks && max > 0 && failures >= max
    }

    /// The address may not even be greeted.
    pub fn is_blocked(&self, ip: IpAddr) -> bool {
        let now = Instant::now();
        let failures = live(self.state().hosts.get(&host_of(ip)), now);
        self.blocking(failures)
    }

    /// Counts an attempt at `user` as failed until [`succeeded`](Self::succeeded)
    /// takes it back, and says what the attempt must do first.
    pub fn begin(&self, ip: IpAddr, user: &str) -> Attempt {
        let now = Instant::now();
        let host = host_of(ip);
        let mut state = self.state();
        let before_host = live(state.hosts.get(&host), now);
        let key = (host, user.to_string());
        let before_account = live(state.accounts.get(&key), now);
        bump(&mut state.hosts, host, before_host, now, |r| {
            self.blocking(r.failures)
        });
        bump(&mut state.accounts, key, before_account, now, |_| false);
        drop(state);
        if self.blocking(before_host + 1) && !self.blocking(before_host) {
            tracing::warn!(address = %host, "client address blocked after failed logins; FLUSH HOSTS on the admin port unblocks it");
            metrics::counter!("shardgate_hosts_blocked_total").increment(1);
        }
        Attempt {
            delay: self.delay_for(before_account),
            blocked: self.blocking(before_host),
        }
    }

    /// A handshake that could not be read: the address's count only.
    pub fn failed_handshake(&self, ip: IpAddr) {
        let now = Instant::now();
        let host = host_of(ip);
        let mut state = self.state();
        let before = live(state.hosts.get(&host), now);
        bump(&mut state.hosts, host, before, now, |r| {
            self.blocking(r.failures)
        });
    }

    /// The attempt begun for `user` logged in.
    pub fn succeeded(&self, ip: IpAddr, user: &str) {
        let host = host_of(ip);
        let mut state = self.state();
        state.hosts.remove(&host);
        state.accounts.remove(&(host, user.to_string()));
    }

    fn delay_for(&self, failures: u32) -> Duration {
        let p = &self.policy;
        if p.delay_after == 0 || failures < p.delay_after {
            return Duration::ZERO;
        }
        let doublings = (failures - p.delay_after).min(20);
        p.delay.saturating_mul(1 << doublings).min(p.delay_max)
    }

    /// `FLUSH HOSTS`: every address and account starts afresh.
    pub fn flush(&self) {
        let mut state = self.state();
        state.hosts.clear();
        state.accounts.clear();
    }

    pub fn list(&self) -> Vec<Failures> {
        let now = Instant::now();
        let state = self.state();
        let fresh = |r: &Record| now.duration_since(r.last) < EXPIRE;
        let mut out: Vec<Failures> = state
            .hosts
            .iter()
            .filter(|(_, r)| fresh(r))
            .map(|(ip, r)| Failures {
                address: *ip,
                user: None,
                failures: r.failures,
                blocked: self.blocking(r.failures),
                since_last: now.duration_since(r.last),
            })
            .chain(
                state
                    .accounts
                    .iter()
                    .filter(|(_, r)| fresh(r))
                    .map(|((ip, user), r)| Failures {
                        address: *ip,
                        user: Some(user.clone()),
                        failures: r.failures,
                        blocked: false,
                        since_last: now.duration_since(r.last),
                    }),
            )
            .collect();
        out.sort_by(|a, b| (a.address, &a.user).cmp(&(b.address, &b.user)));
        out
    }
}

/// One more failure for `key` (which had `before`). A full map first lets go of
/// old records that block nothing; if it is still full, a new key goes uncounted
/// (the records that matter stay).
fn bump<K: std::hash::Hash + Eq>(
    map: &mut HashMap<K, Record>,
    key: K,
    before: u32,
    now: Instant,
    keeps: impl Fn(&Record) -> bool,
) {
    if map.len() >= MAX_RECORDS && !map.contains_key(&key) {
        map.retain(|_, r| keeps(r) || now.duration_since(r.last) < RECENT);
        if map.len() >= MAX_RECORDS {
            return;
        }
    }
    map.insert(
        key,
        Record {
            failures: before.saturating_add(1),
            last: now,
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(blocks: bool) -> HostGuard {
        HostGuard::new(
            LoginPolicy {
                max_connect_errors: 5,
                delay_after: 2,
                delay: Duration::from_millis(100),
                delay_max: Duration::from_millis(350),
            },
            blocks,
        )
    }

    #[test]
    fn failures_delay_then_block_and_a_good_login_clears_them() {
        let g = guard(true);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let attempts: Vec<(u128, bool)> = (0..6)
            .map(|_| {
                let t = g.begin(a, "app");
                (t.delay.as_millis(), t.blocked)
            })
            .collect();
        assert_eq!(
            attempts,
            [
                (0, false),
                (0, false),
                (100, false),
                (200, false),
                (350, false),
                (350, true)
            ]
        );
        assert!(g.is_blocked(a));
        assert!(!g.is_blocked(b), "per address");
        // Another account from the same address is not delayed.
        assert_eq!(g.begin(a, "other").delay, Duration::ZERO);
        g.flush();
        assert!(!g.is_blocked(a));
        g.begin(b, "app");
        g.begin(b, "app");
        g.succeeded(b, "app");
        assert_eq!(g.begin(b, "app").delay, Duration::ZERO);
    }

    #[test]
    fn a_good_login_does_not_clear_other_accounts_delays() {
        let g = guard(true);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..3 {
            g.begin(a, "victim");
        }
        g.begin(a, "mine");
        g.succeeded(a, "mine");
        assert_eq!(g.begin(a, "victim").delay, Duration::from_millis(200));
    }

    #[test]
    fn the_admin_port_delays_but_never_blocks() {
        let g = guard(false);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..20 {
            assert!(!g.begin(a, "dba").blocked);
        }
        assert!(!g.is_blocked(a));
        assert_eq!(g.begin(a, "dba").delay, Duration::from_millis(350));
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let g = guard(true);
        for i in 0..5u16 {
            let ip: IpAddr = format!("2001:db8::{i:x}").parse().unwrap();
            g.begin(ip, "app");
        }
        assert!(g.is_blocked("2001:db8::ffff:1".parse().unwrap()));
        assert!(!g.is_blocked("2001:db8:0:1::1".parse().unwrap()));
        for _ in 0..5 {
            g.begin("::ffff:10.1.1.1".parse().unwrap(), "app");
        }
        assert!(g.is_blocked("10.1.1.1".parse().unwrap()));
    }

    #[test]
    fn the_records_stay_bounded_and_blocked_ones_stay() {
        let g = guard(true);
        let blocked: IpAddr = "10.9.9.9".parse().unwrap();
        for _ in 0..5 {
            g.begin(blocked, "app");
        }
        for i in 0..(MAX_RECORDS as u32 + 10) {
            g.failed_handshake(IpAddr::from((i + (1 << 30)).to_be_bytes()));
        }
        assert!(g.list().len() <= 2 * MAX_RECORDS);
        assert!(g.is_blocked(blocked), "spraying does not unblock");
    }
}
