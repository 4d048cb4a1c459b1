//! A temporary table shaped like a physical one, from its `SHOW CREATE TABLE`.

/// Engines a temporary table may keep; others (Spider, CONNECT, …) hold no rows of
/// their own, so the copy is InnoDB.
const ENGINES: [&str; 4] = ["InnoDB", "Aria", "MyISAM", "MEMORY"];

/// `CREATE TEMPORARY TABLE db.name` with the columns and indexes of `create` (a
/// `SHOW CREATE TABLE` answer). What a temporary table cannot have, or a copy does
/// not need, goes: foreign keys (they name other tables), FULLTEXT and SPATIAL
/// indexes (InnoDB refuses them on temporary tables), partitioning and table
/// options other than the engine and character set. Indexes stay, for the
/// statement's joins, but none is unique: keys are unique within a shard only.
pub fn temporary_twin(create: &str, db: &str, name: &str) -> Result<String, String> {
    let mut lines = create.lines();
    let head = lines.next().unwrap_or_default();
    if !(head.starts_with("CREATE TABLE ") && head.trim_end().ends_with('(')) {
        return Err(format!(
            "`{name}` is not a plain table (SHOW CREATE TABLE begins `{}`)",
            head.chars().take(40).collect::<String>()
        ));
    }
    let mut body: Vec<String> = Vec::new();
    let mut options = None;
    for line in lines.by_ref() {
        if line.starts_with(')') {
            options = Some(line);
            break;
        }
        let t = line.trim_start();
        let dropped = t.starts_with("FOREIGN KEY")
            || (t.starts_with("CONSTRAINT ") && t.contains(" FOREIGN KEY "))
            || t.starts_with("FULLTEXT ")
            || t.starts_with("SPATIAL ")
            || t.starts_with("PERIOD FOR SYSTEM_TIME");
        if dropped {
            continue;
        }
        // A long unique key (MariaDB's hash of a BLOB or TEXT) cannot be a plain
        // index: it only ever enforced uniqueness, so the copy goes without it.
        if t.starts_with("UNIQUE KEY ") && t.contains(" USING HASH") {
            continue;
        }
        let indent = &line[..line.len() - t.len()];
        let line = line.trim_end().trim_end_matches(',');
        // Keys are unique per shard only: shards may hold equal ones.
        body.push(
            match t
                .strip_prefix("PRIMARY KEY ")
                .or_else(|| t.strip_prefix("UNIQUE KEY "))
            {
                Some(rest) => format!("{indent}KEY {}", rest.trim_end().trim_end_matches(',')),
                None => line.to_string(),
            },
        );
    }
    let options = options.ok_or_else(|| format!("`{name}`'s definition has no end"))?;
    let option = |key: &str| {
        options
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .map(str::to_string)
    };
    let engine = option("ENGINE=")
        .filter(|e| ENGINES.iter().any(|k| k.eq_ignore_ascii_case(e)))
        .unwrap_or_else(|| "InnoDB".into());
    let mut out = format!(
        "CREATE TEMPORARY TABLE {}.{} (\n{}\n) ENGINE={engine}",
        super::quote_ident(db),
        super::quote_ident(name),
        body.join(",\n")
    );
    if let Some(cs) = option("CHARSET=") {
        out.push_str(&format!(" DEFAULT CHARSET={cs}"));
    }
    if let Some(co) = option("COLLATE=") {
        out.push_str(&format!(" COLLATE={co}"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_columns_and_indexes_and_drops_what_a_copy_cannot_have() {
        let create = "CREATE TABLE `orders_1` (\n  `id` bigint(20) NOT NULL,\n  \
            `note` varchar(20) DEFAULT 'a,b' COMMENT 'x, y',\n  `u` int(11) DEFAULT NULL,\n  \
            PRIMARY KEY (`id`),\n  UNIQUE KEY `by_u` (`u`),\n  FULLTEXT KEY `ft` (`note`),\n  \
            CONSTRAINT `fk` FOREIGN KEY (`u`) REFERENCES `users` (`id`),\n  \
            UNIQUE KEY `long` (`note`) USING HASH,\n  \
            CONSTRAINT `pos` CHECK (`id` > 0)\n) ENGINE=InnoDB AUTO_INCREMENT=9 DEFAULT \
            CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci\n PARTITION BY HASH (`id`)\nPARTITIONS 2";
        let twin = temporary_twin(create, "shop", "orders").unwrap();
        assert_eq!(
            twin,
            "CREATE TEMPORARY TABLE `shop`.`orders` (\n  `id` bigint(20) NOT NULL,\n  \
             `note` varchar(20) DEFAULT 'a,b' COMMENT 'x, y',\n  `u` int(11) DEFAULT NULL,\n  \
             KEY (`id`),\n  KEY `by_u` (`u`),\n  CONSTRAINT `pos` CHECK (`id` > 0)\n) \
             ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"
        );
    }

    #[test]
    fn other_engines_become_innodb_and_views_are_refused() {
        let create = "CREATE TABLE `t` (\n  `a` int(11) DEFAULT NULL\n) ENGINE=SPIDER";
        assert!(temporary_twin(create, "d", "t")
            .unwrap()
            .ends_with(") ENGINE=InnoDB"));
        let aria = "CREATE TABLE `t` (\n  `a` int(11) DEFAULT NULL\n) ENGINE=Aria PAGE_CHECKSUM=1";
        assert!(temporary_twin(aria, "d", "t")
            .unwrap()
            .ends_with(") ENGINE=Aria"));
        let view = "CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`%` VIEW `v` AS select 1";
        assert!(temporary_twin(view, "d", "v").is_err());
    }
}
