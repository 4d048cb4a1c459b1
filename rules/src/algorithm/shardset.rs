//! A set of shard indexes, kept sorted so plans and tests read the same every time.

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardSet(Vec<u32>);

impl ShardSet {
    pub fn empty() -> Self {
        ShardSet(Vec::new())
    }

    pub fn all(n: u32) -> Self {
        ShardSet((0..n).collect())
    }

    pub fn one(i: u32) -> Self {
        ShardSet(vec![i])
    }

    pub fn contains(&self, i: u32) -> bool {
        self.0.binary_search(&i).is_ok()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().copied()
    }

    pub fn as_slice(&self) -> &[u32] {
        &self.0
    }

    pub fn union(&self, other: &ShardSet) -> ShardSet {
        let mut v: Vec<u32> = self.0.iter().chain(&other.0).copied().collect();
        v.sort_unstable();
        v.dedup();
        ShardSet(v)
    }

    pub fn intersection(&self, other: &ShardSet) -> ShardSet {
        ShardSet(
            self.0
                .iter()
                .copied()
                .filter(|i| other.contains(*i))
                .collect(),
        )
    }
}

impl FromIterator<u32> for ShardSet {
    fn from_iter<I: IntoIterator<Item = u32>>(iter: I) -> Self {
        let mut v: Vec<u32> = iter.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        ShardSet(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations() {
        let a: ShardSet = [3, 1, 3].into_iter().collect();
        assert_eq!(a.as_slice(), &[1, 3]);
        let b = ShardSet::all(3);
        assert_eq!(a.union(&b).as_slice(), &[0, 1, 2, 3]);
        assert_eq!(a.intersection(&b).as_slice(), &[1]);
        assert!(ShardSet::empty().is_empty());
    }
}
