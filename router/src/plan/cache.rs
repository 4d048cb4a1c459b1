//! Plans by statement text, so an application repeating a statement pays for parsing
//! once. Tied to one runtime snapshot: a new snapshot (a rule change) empties it.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use lru::LruCache;
use rules::runtime::LogicalSchema;
use rules::Runtime;

use super::template::{self, Lifted};
use super::{plan, prepare, Plan, Prepared, RouteError};
use crate::reading::Reading;

/// Longer statements (bulk INSERTs and the like) are planned but not kept: the cache's
/// memory stays bounded by entries × this size, whatever clients send.
pub const MAX_CACHED_STATEMENT: usize = 4096;

/// A statement shape's plan; `None` when the shape cannot be planned as a template.
type Template = Option<Arc<Prepared>>;

/// `None` inside means "no configured table named": run unchanged.
pub type Cached = Arc<Option<Plan>>;

/// Each logical schema's statements (by their bytes) → what was planned for them.
type PerSchema<T> = HashMap<String, LruCache<Box<[u8]>, T>>;

pub struct PlanCache {
    per_schema: usize,
    inner: Mutex<Inner>,
}

struct Inner {
    /// The snapshot the entries were planned against. Held, so that no later
    /// snapshot can be allocated at its address and pass for it.
    runtime: Option<Arc<Runtime>>,
    /// One table per reading of the text (sql_mode): the same bytes may be another
    /// statement under ANSI_QUOTES or NO_BACKSLASH_ESCAPES.
    schemas: [PerSchema<Cached>; 8],
    /// Statements with their literals lifted out → their template's plan (`None`:
    /// the template cannot be planned; such statements are planned in full).
    templates: [PerSchema<Template>; 8],
}

impl PlanCache {
    /// Holds up to `per_schema` statements for each logical schema.
    pub fn new(per_schema: usize) -> PlanCache {
        PlanCache {
            per_schema: per_schema.max(1),
            inner: Mutex::new(Inner {
                runtime: None,
                schemas: Default::default(),
                templates: Default::default(),
            }),
        }
    }

    /// The plan for `sql`, from the cache when this snapshot planned it before.
    /// Errors are not cached: they are cheap to find again and rare.
    pub fn plan(
        &self,
        sql: &[u8],
        schema: &LogicalSchema,
        rt: &Arc<Runtime>,
        reading: Reading,
    ) -> Result<Cached, RouteError> {
        let r = reading.index();
        if sql.len() > MAX_CACHED_STATEMENT {
            return Ok(Arc::new(plan(sql, schema, rt, reading)?));
        }
        {
            let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            if !inner.runtime.as_ref().is_some_and(|r| Arc::ptr_eq(r, rt)) {
                inner.schemas.iter_mut().for_each(HashMap::clear);
                inner.templates.iter_mut().for_each(HashMap::clear);
                inner.runtime = Some(rt.clone());
            }
            if let Some(hit) = inner.schemas[r]
                .get_mut(&schema.name)
                .and_then(|c| c.get(sql))
            {
                return Ok(hit.clone());
            }
        }
        if let Some(lifted) = template::lift(sql, reading) {
            if let Some(p) = self.templated(&lifted, schema, rt, reading) {
                return Ok(Arc::new(Some(p)));
            }
        }
        let planned: Cached = Arc::new(plan(sql, schema, rt, reading)?);
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.runtime.as_ref().is_some_and(|r| Arc::ptr_eq(r, rt)) {
            let cap = NonZeroUsize::new(self.per_schema).unwrap_or(NonZeroUsize::MIN);
            inner.schemas[r]
                .entry(schema.name.clone())
                .or_insert_with(|| LruCache::new(cap))
                .put(sql.into(), planned.clone());
        }
        Ok(planned)
    }

    /// The plan of a statement from its template, planned on first sight. `None`: the
    /// statement must be planned in full.
    fn templated(
        &self,
        lifted: &Lifted<'_>,
        schema: &LogicalSchema,
        rt: &Arc<Runtime>,
        reading: Reading,
    ) -> Option<Plan> {
        let r = reading.index();
        let cap = NonZeroUsize::new(self.per_schema).unwrap_or(NonZeroUsize::MIN);
        let known = {
            let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            inner.templates[r]
                .get_mut(&schema.name)
                .and_then(|c| c.get(lifted.key.as_slice()).cloned())
        };
        let template = match known {
            Some(t) => t,
            None => {
                let t = prepare(&lifted.key, schema, rt, reading)
                    .ok()
                    .flatten()
                    .map(Arc::new);
                let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
                if inner.runtime.as_ref().is_some_and(|r| Arc::ptr_eq(r, rt)) {
                    inner.templates[r]
                        .entry(schema.name.clone())
                        .or_insert_with(|| LruCache::new(cap))
                        .put(lifted.key.as_slice().into(), t.clone());
                }
                t
            }
        };
        template::instantiate(template.as_deref()?, lifted, reading)
    }

    pub fn len(&self) -> usize {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .schemas
            .iter()
            .flat_map(HashMap::values)
            .map(LruCache::len)
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rules::ClusterConfig;

    fn runtime(shards: u32) -> Arc<Runtime> {
        let text = format!(
            "[nodes.dn1]\nprimary = \"h:1\"\nuser = \"u\"\n[nodes.dn2]\nprimary = \"h:2\"\nuser = \"u\"\n\
             [rules.r]\nalgorithm = \"mod\"\nshards = {shards}\n[schemas.s]\nnode = \"dn1\"\n\
             [schemas.s.tables.t]\nkind = \"sharded\"\ncolumn = \"id\"\nrule = \"r\"\nnodes = [\"dn1\", \"dn2\"]\n\
             tables_per_node = {}\n",
            shards / 2
        );
        let cfg: ClusterConfig = toml::from_str(&text).unwrap();
        Arc::new(Runtime::build(&cfg).unwrap())
    }

    #[test]
    fn hits_evicts_and_follows_the_runtime() {
        let cache = PlanCache::new(2);
        let rt = runtime(2);
        let s = &rt.schemas["s"];
        // No liftable literal (a negative number stays in the text): exact-text cache.
        let a = cache
            .plan(
                b"SELECT * FROM t WHERE id = -1",
                s,
                &rt,
                crate::reading::Reading::DEFAULT,
            )
            .unwrap();
        let again = cache
            .plan(
                b"SELECT * FROM t WHERE id = -1",
                s,
                &rt,
                crate::reading::Reading::DEFAULT,
            )
            .unwrap();
        assert!(Arc::ptr_eq(&a, &again), "second lookup is a hit");
        cache
            .plan(
                b"SELECT * FROM t WHERE id = -2",
                s,
                &rt,
                crate::reading::Reading::DEFAULT,
            )
            .unwrap();
        cache
            .plan(
                b"SELECT * FROM t WHERE id = -3",
                s,
                &rt,
                crate::reading::Reading::DEFAULT,
            )
            .unwrap();
        assert_eq!(cache.len(), 2, "least recently used entry evicted");
        assert!(cache
            .plan(
                b"SELEC nonsense FROM t",
                s,
                &rt,
                crate::reading::Reading::DEFAULT
            )
            .is_err());
        assert_eq!(cache.len(), 2, "errors are not cached");
        let long = format!(
            "SELECT * FROM t WHERE id = -1 /* {} */",
            "x".repeat(MAX_CACHED_STATEMENT)
        );
        assert!(cache
            .plan(long.as_bytes(), s, &rt, crate::reading::Reading::DEFAULT)
            .unwrap()
            .is_some());
        assert_eq!(cache.len(), 2, "long statements are not kept");

        // Literals lifted: one template serves every value, and each statement gets
        // its own literal back in its physical text.
        for id in [1, 2, 3, 4, 5] {
            let p = cache
                .plan(
                    format!("SELECT * FROM t WHERE id = {id}").as_bytes(),
                    s,
                    &rt,
                    crate::reading::Reading::DEFAULT,
                )
                .unwrap();
            let t = &p.as_ref().as_ref().unwrap().targets;
            assert_eq!(t.len(), 1);
            assert_eq!(t[0].sql, format!("SELECT * FROM `t` WHERE id = {id}"));
            assert_eq!(t[0].shard, Some(id % 2));
        }
        assert_eq!(
            cache.len(),
            2,
            "templated statements are not kept one by one"
        );

        // A new snapshot with 4 shards: the old plans must not be reused.
        let rt4 = runtime(4);
        let p = cache
            .plan(
                b"SELECT * FROM t WHERE id = 1",
                &rt4.schemas["s"],
                &rt4,
                crate::reading::Reading::DEFAULT,
            )
            .unwrap();
        assert_eq!(cache.len(), 0);
        let target = &p.as_ref().as_ref().unwrap().targets[0];
        assert!(target.sql.contains("t_0001"), "{}", target.sql);
        let p = cache
            .plan(
                b"SELECT * FROM t WHERE id = 3",
                &rt4.schemas["s"],
                &rt4,
                crate::reading::Reading::DEFAULT,
            )
            .unwrap();
        let target = &p.as_ref().as_ref().unwrap().targets[0];
        assert!(target.sql.contains("t_0003"), "{}", target.sql);
    }
}
