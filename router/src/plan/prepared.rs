//! A statement prepared once and routed at each execution by its parameters, with
//! no SQL looked at again.

use rules::ShardSet;

use super::{keys, KeyExpr, KeyOperand, Merge, Plan, RouteError, Target};

/// How a prepared statement picks its targets at each execution.
#[derive(Debug, Clone, PartialEq)]
pub enum Routing {
    /// The plan's targets, whatever the parameters.
    Fixed,
    /// The shards the WHERE clause allows for the bound parameters; the plan has one
    /// target per shard, in shard order.
    Where(KeyExpr),
    /// INSERT rows whose shard values are parameters (or literals).
    Rows(Vec<KeyOperand>),
}

/// A statement prepared once, routed per execution without parsing.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub plan: Plan,
    pub routing: Routing,
    pub(super) algorithm: Option<std::sync::Arc<rules::Algorithm>>,
    /// Number of `?` parameters.
    pub params: usize,
}

impl Prepared {
    /// A statement on no configured table: one target, whatever the parameters.
    pub fn fixed(target: Target, write: bool) -> Prepared {
        Prepared {
            plan: Plan {
                targets: vec![target],
                write,
                scatter: false,
                merge: Merge::Single,
                fill_global_id: None,
                gather: None,
                load: None,
            },
            routing: Routing::Fixed,
            algorithm: None,
            params: 0,
        }
    }

    /// The targets for one execution's parameters.
    pub fn targets(&self, params: &[rules::Value]) -> Result<Vec<&Target>, RouteError> {
        let by_shard = |set: ShardSet| -> Vec<&Target> {
            set.iter()
                .filter_map(|s| self.plan.targets.get(s as usize))
                .collect()
        };
        match (&self.routing, &self.algorithm) {
            (Routing::Fixed, _) | (_, None) => Ok(self.plan.targets.iter().collect()),
            (Routing::Where(k), Some(alg)) => Ok(match keys::eval(k, alg, params) {
                Some(set) => by_shard(set),
                None => self.plan.targets.iter().collect(),
            }),
            (Routing::Rows(rows), Some(alg)) => {
                let mut set = ShardSet::empty();
                for r in rows {
                    let v = match r {
                        KeyOperand::Lit(v) => v,
                        KeyOperand::Param(i) => params.get(*i).ok_or_else(|| {
                            RouteError::Invalid(format!("parameter {} was not bound", i + 1))
                        })?,
                    };
                    set = set.union(&ShardSet::one(alg.shard_of(v)?));
                }
                // Each target holds every row: only one shard may run it.
                if set.len() > 1 {
                    return Err(RouteError::Unsupported(
                        "a prepared INSERT whose rows belong to different shards in one execution; \
                         insert them one execution per shard, or as text"
                            .into(),
                    ));
                }
                Ok(by_shard(set))
            }
        }
    }
}
