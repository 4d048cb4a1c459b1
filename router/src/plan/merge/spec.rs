//! What the merge step does, as the executor reads it: the columns, keys, aggregates
//! and conditions of a merge.

/// A column of the shards' results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Col {
    /// The n-th column the client asked for.
    Visible(usize),
    /// The n-th column shardgate appended for the merge, dropped before the client.
    Hidden(usize),
}

impl Col {
    /// Position in a shard row that has `visible` client columns.
    pub fn index(self, visible: usize) -> usize {
        match self {
            Col::Visible(i) => i,
            Col::Hidden(j) => visible + j,
        }
    }
}

/// A value to compare: the column, and for strings the collation weight column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub value: Col,
    pub weight: Option<Col>,
    pub desc: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agg {
    Count(Col),
    Sum(Col),
    Min(Key),
    Max(Key),
    /// COUNT(DISTINCT x): shards group by x too and send their rows ordered by it, so
    /// the merge counts each x once however many shards have it.
    CountDistinct {
        count: Col,
        value: Key,
    },
    /// The AVG column keeps the server's type and scale; shards also send SUM and COUNT.
    Avg {
        avg: Col,
        sum: Col,
        count: Col,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    Col(Col),
    /// A numeric literal as written.
    Number(String),
}

/// A HAVING condition over merged groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
    IsNull(Operand, bool),
    Cmp(CmpOp, Operand, Operand),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grouping {
    /// Rows with equal keys are one group (no keys: all rows are one group).
    pub keys: Vec<Key>,
    pub aggregates: Vec<Agg>,
    pub having: Option<Cond>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeSpec {
    /// How many columns shardgate appended.
    pub hidden: usize,
    /// The order of every shard's rows, which the merge keeps.
    pub order: Vec<Key>,
    pub group: Option<Grouping>,
    /// A sort after grouping (ORDER BY aggregated values), done in memory.
    pub sort_after: Vec<Key>,
    pub offset: u64,
    pub limit: Option<u64>,
}

impl MergeSpec {
    /// The merge steps in words, for EXPLAIN SHARDING.
    pub fn describe(&self) -> String {
        let mut steps = Vec::new();
        if !self.order.is_empty() {
            steps.push(format!("merge sorted on {} key(s)", self.order.len()));
        } else {
            steps.push("concatenate rows".to_string());
        }
        if let Some(g) = &self.group {
            if g.keys.is_empty() {
                steps.push("combine into one row".to_string());
            } else {
                steps.push(format!("combine groups of {} key(s)", g.keys.len()));
            }
            if !g.aggregates.is_empty() {
                let names: Vec<&str> = g
                    .aggregates
                    .iter()
                    .map(|a| match a {
                        Agg::Count(_) => "COUNT",
                        Agg::Sum(_) => "SUM",
                        Agg::Min(_) => "MIN",
                        Agg::Max(_) => "MAX",
                        Agg::CountDistinct { .. } => "COUNT(DISTINCT)",
                        Agg::Avg { .. } => "AVG",
                    })
                    .collect();
                steps.push(format!("aggregate {}", names.join(", ")));
            }
            if g.having.is_some() {
                steps.push("filter HAVING".to_string());
            }
        }
        if !self.sort_after.is_empty() {
            steps.push(format!("sort on {} key(s)", self.sort_after.len()));
        }
        if self.offset > 0 {
            steps.push(format!("skip {}", self.offset));
        }
        if let Some(l) = self.limit {
            steps.push(format!("limit {l}"));
        }
        if self.hidden > 0 {
            steps.push(format!("drop {} helper column(s)", self.hidden));
        }
        steps.join("; ")
    }
}
