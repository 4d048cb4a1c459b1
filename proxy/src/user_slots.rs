//! Sessions per front-end user, held to MySQL's max_user_connections: one
//! application's runaway connection pool cannot take every place `max_connections`
//! has, and the others keep theirs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug, Default)]
pub struct UserSlots {
    counts: Mutex<HashMap<String, usize>>,
}

/// One session's place among its user's; given back when dropped.
#[derive(Debug)]
pub struct UserSlot {
    slots: Arc<UserSlots>,
    user: String,
}

impl UserSlots {
    fn counts(&self) -> MutexGuard<'_, HashMap<String, usize>> {
        // A panic elsewhere while counting leaves the counts as they were.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for one more session of `user`, unless it has `limit` already (0: no
    /// limit).
    pub fn take(self: &Arc<Self>, user: &str, limit: usize) -> Option<UserSlot> {
        let mut counts = self.counts();
        let n = counts.entry(user.to_string()).or_insert(0);
        if limit > 0 && *n >= limit {
            return None;
        }
        *n += 1;
        Some(UserSlot {
            slots: self.clone(),
            user: user.to_string(),
        })
    }

    /// Sessions `user` has now.
    pub fn count(&self, user: &str) -> usize {
        self.counts().get(user).copied().unwrap_or(0)
    }
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut counts = self.slots.counts();
        if let Some(n) = counts.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_counted_per_user_and_given_back() {
        let slots = Arc::new(UserSlots::default());
        let a1 = slots.take("a", 2).unwrap();
        let _a2 = slots.take("a", 2).unwrap();
        assert!(slots.take("a", 2).is_none());
        let _b = slots.take("b", 2).unwrap();
        assert!(slots.take("c", 0).is_some(), "0 is no limit");
        drop(a1);
        assert_eq!(slots.count("a"), 1);
        assert!(slots.take("a", 2).is_some());
        assert_eq!(slots.count("c"), 0, "a dropped place is given back");
    }
}
