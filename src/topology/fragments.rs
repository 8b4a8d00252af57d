//! `postgres.fragments`, `reference_tables` and `indexes`: how the schema's tables are spread
//! over the nodes, checked against the nodes and against the manifest's tables.
//!
//! Horizontal parts must not overlap and must cover the key's domain (or leave the rest to a
//! `default` part); vertical parts carry the key and together cover every column; a unique key
//! of a horizontally fragmented table must include the fragment key, since each node can only
//! check uniqueness among its own rows.

use std::collections::{BTreeMap, BTreeSet};

use serde_saphyr::{Location, Spanned};

use super::raw::{
    Entries, RawFragment, RawHorizontal, RawHorizontalPart, RawIndex, RawReferences, RawVertical,
    Scalar,
};
use super::validate::Validator;
use super::{
    Bound, DistributedIndex, Fragmentation, Fragments, HorizontalPart, Node, Replica, SchemaTarget,
    VerticalPart,
};
use crate::diagnostics::did_you_mean;
use crate::schema::Schema;
use crate::schema::model::Table;

/// Everything the fragment checks look things up in.
pub(super) struct Context<'a> {
    pub nodes: &'a BTreeMap<String, Node>,
    pub replicas: &'a BTreeMap<String, Replica>,
    pub schema: Option<&'a SchemaTarget>,
    /// The manifest's tables; `None` when it could not be read or parsed (that error is
    /// reported where the manifest is loaded).
    pub manifest: Option<&'a Schema>,
    /// Settings for every server, for `wal_level`.
    pub settings: &'a BTreeMap<String, String>,
}

impl Validator<'_> {
    pub(super) fn fragments(
        &mut self,
        raw: Option<Spanned<Entries<Spanned<RawFragment>>>>,
        references: Option<RawReferences>,
        indexes: Option<Vec<Spanned<RawIndex>>>,
        cx: &Context<'_>,
    ) -> Option<Fragments> {
        let anchor = raw
            .as_ref()
            .map(|r| r.referenced)
            .or(references.as_ref().map(|r| r.referenced))
            .or(indexes
                .as_ref()
                .and_then(|i| i.first())
                .map(|i| i.referenced))?;
        let coordinator = self.coordinator(cx, &anchor);
        let mut tables = BTreeMap::new();
        for (name, fragment) in raw.map(|r| r.value.0).unwrap_or_default() {
            let Some(table) = self.fragmented_table(&name, cx) else {
                continue;
            };
            if let Some(done) = self.fragment(&name, fragment, table, cx) {
                tables.insert(name.value, done);
            }
        }
        let reference_tables = self.reference_tables(references, &tables, cx, &coordinator);
        let indexes = indexes
            .unwrap_or_default()
            .into_iter()
            .filter_map(|index| self.distributed_index(index, &tables, cx))
            .collect();
        Some(Fragments {
            coordinator: coordinator.unwrap_or_default(),
            tables,
            reference_tables,
            indexes,
        })
    }

    /// The schema's single node answers for whole tables.
    fn coordinator(&mut self, cx: &Context<'_>, anchor: &Location) -> Option<String> {
        match cx.schema.map(|s| s.nodes.as_slice()) {
            Some([node]) => Some(node.clone()),
            None => {
                self.push(
                    self.problem("fragments need a schema")
                        .at(anchor, "these tables come from `postgres.schema`")
                        .help("add `schema: { file: <manifest.sql>, nodes: [<coordinator>] }`"),
                );
                None
            }
            Some(_) => {
                self.push(
                    self.problem("fragments need exactly one schema node")
                        .at(anchor, "which node answers for the whole tables?")
                        .help(
                            "list the coordinator alone in `schema.nodes`; the fragments name \
                             the other nodes",
                        ),
                );
                None
            }
        }
    }

    /// The manifest's table of this name, or a problem at the name.
    fn fragmented_table<'t>(
        &mut self,
        name: &Spanned<String>,
        cx: &Context<'t>,
    ) -> Option<&'t Table> {
        let manifest = cx.manifest?;
        let found = manifest.tables.get(&name.value);
        if found.is_none() {
            let near = did_you_mean(&name.value, manifest.tables.keys().map(String::as_str));
            self.push(
                self.problem(format!("unknown table `{}`", name.value))
                    .at(&name.referenced, "not in the schema manifest")
                    .help(format!(
                        "{near}tables: {}",
                        manifest
                            .tables
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
            );
        }
        found
    }

    fn fragment(
        &mut self,
        name: &Spanned<String>,
        raw: Spanned<RawFragment>,
        table: &Table,
        cx: &Context<'_>,
    ) -> Option<Fragmentation> {
        match (raw.value.horizontal, raw.value.vertical) {
            (Some(h), None) => self.horizontal(h, table, cx),
            (None, Some(v)) => self.vertical(v, table, cx),
            (h, v) => {
                let both = h.is_some() && v.is_some();
                self.push(
                    self.problem(format!(
                        "table `{}` needs exactly one of `horizontal` and `vertical`",
                        name.value
                    ))
                    .at(
                        &raw.referenced,
                        if both {
                            "both are given"
                        } else {
                            "neither is given"
                        },
                    ),
                );
                None
            }
        }
    }

    /// A key column of `table`, or a problem at the key.
    fn key_column(
        &mut self,
        key: Option<Spanned<String>>,
        table: &Table,
        at: &Location,
    ) -> Option<Spanned<String>> {
        let Some(key) = key else {
            self.push(
                self.problem(format!("fragments of `{}` have no `key`", table.name))
                    .at(at, "add `key: <column>`"),
            );
            return None;
        };
        if table.column(&key.value).is_none() {
            self.unknown_column(table, &key);
            return None;
        }
        Some(key)
    }

    fn unknown_column(&mut self, table: &Table, column: &Spanned<String>) {
        let near = did_you_mean(&column.value, table.columns.iter().map(|c| c.name.as_str()));
        let columns: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
        self.push(
            self.problem(format!(
                "table `{}` has no column `{}`",
                table.name, column.value
            ))
            .at(&column.referenced, "no such column")
            .help(format!("{near}columns: {}", columns.join(", "))),
        );
    }

    /// A node that can hold writable data: not a replica, not unknown.
    fn fragment_node(
        &mut self,
        node: Option<Spanned<String>>,
        part: &Location,
        cx: &Context<'_>,
    ) -> Option<String> {
        let Some(node) = node else {
            self.push(
                self.problem("this part has no `node`")
                    .at(part, "add `node: <name>`"),
            );
            return None;
        };
        if cx.nodes.contains_key(&node.value) {
            return Some(node.value);
        }
        let problem = if cx.replicas.contains_key(&node.value) {
            self.problem(format!("`{}` is a replica", node.value))
                .at(&node.referenced, "replicas are read-only")
                .help("a fragment lives on a node; its replica copies it")
        } else {
            let near = did_you_mean(&node.value, cx.nodes.keys().map(String::as_str));
            let known: Vec<&str> = cx.nodes.keys().map(String::as_str).collect();
            self.problem(format!("unknown node `{}`", node.value))
                .at(&node.referenced, "no node of this name")
                .help(format!("{near}known nodes: {}", known.join(", ")))
        };
        self.push(problem);
        None
    }

    fn horizontal(
        &mut self,
        raw: Spanned<RawHorizontal>,
        table: &Table,
        cx: &Context<'_>,
    ) -> Option<Fragmentation> {
        let at = raw.referenced;
        let raw = raw.value;
        let key = self.key_column(raw.key, table, &at);
        let method = match raw.by.as_ref().map(|b| b.value.as_str()) {
            Some(m @ ("list" | "range" | "hash")) => Some(m),
            Some(other) => {
                let by = raw.by.as_ref().expect("matched Some");
                self.push(
                    self.problem(format!("unknown fragmentation `by: {other}`"))
                        .at(&by.referenced, "not list, range or hash"),
                );
                None
            }
            None => {
                self.push(
                    self.problem(format!(
                        "horizontal fragments of `{}` have no `by`",
                        table.name
                    ))
                    .at(&at, "add `by: list`, `by: range` or `by: hash`"),
                );
                None
            }
        };
        let Some(parts) = raw.parts.filter(|p| !p.value.is_empty()) else {
            self.push(
                self.problem(format!(
                    "horizontal fragments of `{}` have no parts",
                    table.name
                ))
                .at(&at, "add `parts:` with at least one `{ node: ... }`"),
            );
            return None;
        };
        if let Some(key) = &key {
            self.unique_keys_include(table, key, cx);
        }
        let key = key?;
        let numeric = crate::schema::model::is_numeric_type(&table.column(&key.value)?.data_type);
        let count = parts.value.len();
        let mut out = Vec::new();
        let mut seen_values: BTreeMap<String, Location> = BTreeMap::new();
        let mut ranges = Vec::new();
        let mut default_part = None;
        for (index, part) in parts.value.into_iter().enumerate() {
            let part_at = part.referenced;
            let part = part.value;
            let node = self.fragment_node(part.node.clone(), &part_at, cx);
            let bound = match method? {
                "list" => self.list_bound(&part, &part_at, &mut seen_values, &mut default_part),
                "range" => {
                    let bound = self.range_bound(&part, &part_at, &mut default_part);
                    if let Some(Bound::Range { from, to }) = &bound {
                        ranges.push((from.clone(), to.clone(), part_at));
                    }
                    bound
                }
                _ => self.hash_bound(&part, &part_at, index, count),
            };
            if let (Some(node), Some(bound)) = (node, bound) {
                out.push(HorizontalPart { node, bound });
            }
        }
        match method? {
            "list" if default_part.is_none() => {
                self.list_covers(table, &key, &seen_values, &parts.referenced)
            }
            "range" => {
                self.ranges_cover(ranges, numeric, default_part.is_some(), &parts.referenced)
            }
            _ => {}
        }
        Some(Fragmentation::Horizontal {
            key: key.value,
            parts: out,
        })
    }

    /// Each unique key of `table` must include the fragment key.
    fn unique_keys_include(&mut self, table: &Table, key: &Spanned<String>, cx: &Context<'_>) {
        let indexes = cx
            .manifest
            .into_iter()
            .flat_map(|m| m.indexes.values())
            .filter(|i| i.table == table.name && i.unique)
            .map(|i| (i.name.as_str(), i.columns.as_slice()));
        let keys = table
            .primary_key
            .iter()
            .chain(&table.uniques)
            .map(|k| (k.name.as_str(), k.columns.as_slice()))
            .chain(indexes);
        let missing: Vec<String> = keys
            .filter(|(_, columns)| !columns.contains(&key.value))
            .map(|(name, columns)| format!("{name} ({})", columns.join(", ")))
            .collect();
        if !missing.is_empty() {
            self.push(
                self.problem(format!(
                    "unique keys of `{}` do not include the fragment key `{}`",
                    table.name, key.value
                ))
                .at(
                    &key.referenced,
                    format!("{} would be unique per node only", missing.join(", ")),
                )
                .help(format!(
                    "each node checks uniqueness among its own rows: add `{}` to these keys in \
                     the manifest, or fragment by a column they include",
                    key.value
                )),
            );
        }
    }

    fn list_bound(
        &mut self,
        part: &RawHorizontalPart,
        at: &Location,
        seen: &mut BTreeMap<String, Location>,
        default_part: &mut Option<Location>,
    ) -> Option<Bound> {
        self.no_range_keys(part, "list");
        if let Some(default) = part.default.as_ref().filter(|d| d.value) {
            if part.values.is_some() {
                self.push(self.problem("a default part takes no `values`").at(
                    &default.referenced,
                    "it takes every value no other part takes",
                ));
            }
            return self.one_default(default_part, &default.referenced);
        }
        let Some(values) = part.values.as_ref().filter(|v| !v.value.is_empty()) else {
            self.push(
                self.problem("this list part has no `values`")
                    .at(at, "add `values: [...]` or `default: true`"),
            );
            return None;
        };
        let mut out = Vec::new();
        for value in &values.value {
            let text = scalar_text(&value.value);
            if let Some(first) = seen.get(&text) {
                self.push(
                    self.problem(format!("value `{text}` is in two parts"))
                        .at(&value.referenced, "again here")
                        .also(first, "first here")
                        .help("each row must belong to exactly one part"),
                );
            } else {
                seen.insert(text.clone(), value.referenced);
            }
            out.push(text);
        }
        Some(Bound::List { values: out })
    }

    fn one_default(&mut self, default_part: &mut Option<Location>, at: &Location) -> Option<Bound> {
        if let Some(first) = default_part {
            self.push(
                self.problem("two default parts")
                    .at(at, "second default")
                    .also(first, "first default"),
            );
            return None;
        }
        *default_part = Some(*at);
        Some(Bound::Default)
    }

    fn no_range_keys(&mut self, part: &RawHorizontalPart, method: &str) {
        for bound in [&part.from, &part.to].into_iter().flatten() {
            self.push(
                self.problem(format!(
                    "`from` and `to` belong to `by: range`, not `by: {method}`"
                ))
                .at(&bound.referenced, "remove this"),
            );
        }
    }

    /// Values the manifest's CHECK constraints allow for the key (`key IN (...)`, `key = v`),
    /// when one says; the list parts must then take exactly those.
    fn list_covers(
        &mut self,
        table: &Table,
        key: &Spanned<String>,
        seen: &BTreeMap<String, Location>,
        parts_at: &Location,
    ) {
        let Some(allowed) = table.allowed_values(&key.value) else {
            self.push(
                self.problem(format!(
                    "the list parts of `{}` may not cover every `{}`",
                    table.name, key.value
                ))
                .at(
                    parts_at,
                    "a row with another value would have nowhere to go",
                )
                .help(format!(
                    "add a part with `default: true`, or a CHECK constraint on `{}` in the \
                     manifest that limits it to the listed values",
                    key.value
                )),
            );
            return;
        };
        let taken: BTreeSet<&String> = seen.keys().collect();
        let missing: Vec<&str> = allowed
            .iter()
            .filter(|v| !taken.contains(v))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            self.push(
                self.problem(format!(
                    "no part takes {} of `{}.{}`",
                    missing.join(", "),
                    table.name,
                    key.value
                ))
                .at(parts_at, "these parts leave values out")
                .help(
                    "the manifest's CHECK allows them: add them to a part, or add a default part",
                ),
            );
        }
        for (value, at) in seen {
            if !allowed.contains(value) {
                self.push(
                    self.problem(format!("value `{value}` can never occur"))
                        .at(at, format!("the CHECK on `{}` refuses it", key.value))
                        .help(format!(
                            "allowed values: {}",
                            allowed.iter().cloned().collect::<Vec<_>>().join(", ")
                        )),
                );
            }
        }
    }

    fn range_bound(
        &mut self,
        part: &RawHorizontalPart,
        at: &Location,
        default_part: &mut Option<Location>,
    ) -> Option<Bound> {
        if let Some(values) = &part.values {
            self.push(
                self.problem("`values` belongs to `by: list`, not `by: range`")
                    .at(&values.referenced, "use `from` and `to`"),
            );
        }
        if let Some(default) = part.default.as_ref().filter(|d| d.value) {
            return self.one_default(default_part, &default.referenced);
        }
        let from = part.from.as_ref().map(|f| scalar_text(&f.value));
        let to = part.to.as_ref().map(|t| scalar_text(&t.value));
        if from.is_none() && to.is_none() {
            self.push(
                self.problem("this range part has neither `from` nor `to`")
                    .at(at, "it would take every row")
                    .help("`from` is included, `to` excluded; leave one out for an open end"),
            );
            return None;
        }
        Some(Bound::Range { from, to })
    }

    /// Ranges, sorted by their start, must neither overlap nor (without a default part) leave
    /// gaps or open ends.
    fn ranges_cover(
        &mut self,
        mut ranges: Vec<(Option<String>, Option<String>, Location)>,
        numeric: bool,
        has_default: bool,
        parts_at: &Location,
    ) {
        let cmp = |a: &str, b: &str| compare(a, b, numeric);
        for (from, to, at) in &ranges {
            if let (Some(from), Some(to)) = (from, to)
                && cmp(from, to) != std::cmp::Ordering::Less
            {
                self.push(
                    self.problem(format!("empty range: `from` {from} is not below `to` {to}"))
                        .at(at, "this part"),
                );
            }
        }
        ranges.sort_by(|a, b| match (&a.0, &b.0) {
            (None, None) => std::cmp::Ordering::Equal,
            (None, _) => std::cmp::Ordering::Less,
            (_, None) => std::cmp::Ordering::Greater,
            (Some(x), Some(y)) => cmp(x, y),
        });
        let mut gaps = Vec::new();
        if ranges.first().is_some_and(|r| r.0.is_some()) {
            gaps.push(format!(
                "below {}",
                ranges[0].0.as_deref().unwrap_or_default()
            ));
        }
        for pair in ranges.windows(2) {
            let (end, next_start) = (&pair[0].1, &pair[1].0);
            match (end, next_start) {
                (None, _) | (_, None) => self.overlap(&pair[1].2, &pair[0].2),
                (Some(end), Some(start)) => match cmp(end, start) {
                    std::cmp::Ordering::Greater => self.overlap(&pair[1].2, &pair[0].2),
                    std::cmp::Ordering::Less => gaps.push(format!("from {end} to {start}")),
                    std::cmp::Ordering::Equal => {}
                },
            }
        }
        if let Some(last) = ranges.last().and_then(|r| r.1.clone()) {
            gaps.push(format!("from {last} up"));
        }
        if !gaps.is_empty() && !has_default {
            self.push(
                self.problem(format!("the ranges leave out {}", gaps.join(", ")))
                    .at(parts_at, "rows there would have nowhere to go")
                    .help("close the gaps (each `to` is the next `from`), leave the ends open, or add a part with `default: true`"),
            );
        }
    }

    fn overlap(&mut self, second: &Location, first: &Location) {
        self.push(
            self.problem("two ranges overlap")
                .at(second, "this part")
                .also(first, "overlaps this one")
                .help("each row must belong to exactly one part: a `to` is excluded, the next `from` included"),
        );
    }

    fn hash_bound(
        &mut self,
        part: &RawHorizontalPart,
        at: &Location,
        index: usize,
        count: usize,
    ) -> Option<Bound> {
        self.no_range_keys(part, "hash");
        if part.values.is_some() || part.default.is_some() {
            self.push(
                self.problem("hash parts take only a `node`")
                    .at(at, "remove `values` / `default`")
                    .help("rows are spread by a hash of the key: part i of n takes remainder i"),
            );
            return None;
        }
        Some(Bound::Hash {
            modulus: count as u32,
            remainder: index as u32,
        })
    }

    fn vertical(
        &mut self,
        raw: Spanned<RawVertical>,
        table: &Table,
        cx: &Context<'_>,
    ) -> Option<Fragmentation> {
        let at = raw.referenced;
        let raw = raw.value;
        let key = self.key_column(raw.key, table, &at);
        if let Some(key) = &key {
            let is_primary_key = table
                .primary_key
                .as_ref()
                .is_some_and(|pk| pk.columns == [key.value.clone()]);
            if !is_primary_key {
                self.push(
                    self.problem(format!("`{}` is not the primary key of `{}`", key.value, table.name))
                        .at(&key.referenced, "the parts are joined back on this column")
                        .help("the key of vertical fragments must be the table's single-column primary key"),
                );
            }
        }
        let Some(parts) = raw.parts.filter(|p| !p.value.is_empty()) else {
            self.push(
                self.problem(format!(
                    "vertical fragments of `{}` have no parts",
                    table.name
                ))
                .at(&at, "add `parts:` with `{ node: ..., columns: [...] }`"),
            );
            return None;
        };
        let key = key?;
        let mut placed: BTreeMap<String, Location> = BTreeMap::new();
        let mut out = Vec::new();
        for part in parts.value {
            let part_at = part.referenced;
            let node = self.fragment_node(part.value.node, &part_at, cx);
            let mut columns = Vec::new();
            let listed = part.value.columns.map(|c| c.value).unwrap_or_default();
            let own = listed.iter().filter(|c| c.value != key.value).count();
            for column in listed {
                if table.column(&column.value).is_none() {
                    self.unknown_column(table, &column);
                } else if column.value == key.value {
                    // Every part carries the key anyway.
                } else if let Some(first) = placed.get(&column.value) {
                    self.push(
                        self.problem(format!("column `{}` is in two parts", column.value))
                            .at(&column.referenced, "again here")
                            .also(first, "first here")
                            .help("only the key is repeated in every part"),
                    );
                } else {
                    placed.insert(column.value.clone(), column.referenced);
                    columns.push(column.value);
                }
            }
            if own == 0 {
                self.push(
                    self.problem("this vertical part has no columns of its own")
                        .at(&part_at, "add `columns: [...]` (the key is implied)"),
                );
            }
            if let Some(node) = node {
                out.push(VerticalPart { node, columns });
            }
        }
        let missing: Vec<&str> = table
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .filter(|c| *c != key.value && !placed.contains_key(*c))
            .collect();
        if !missing.is_empty() {
            self.push(
                self.problem(format!(
                    "no part holds {} of `{}`",
                    missing.join(", "),
                    table.name
                ))
                .at(&parts.referenced, "these parts leave columns out")
                .help("together the parts must hold every column"),
            );
        }
        Some(Fragmentation::Vertical {
            key: key.value,
            parts: out,
        })
    }

    fn reference_tables(
        &mut self,
        raw: Option<RawReferences>,
        fragmented: &BTreeMap<String, Fragmentation>,
        cx: &Context<'_>,
        coordinator: &Option<String>,
    ) -> BTreeMap<String, Vec<String>> {
        let mut out = BTreeMap::new();
        let Some(raw) = raw else {
            return out;
        };
        // Copies are kept current by logical replication from the coordinator.
        if let Some(coordinator) = coordinator {
            let wal_level = cx
                .nodes
                .get(coordinator)
                .and_then(|n| n.settings.get("wal_level"))
                .or(cx.settings.get("wal_level"))
                .map_or("replica", String::as_str);
            if wal_level != "logical" {
                self.push(
                    self.problem("reference tables need `wal_level: logical` on the coordinator")
                        .at(&raw.referenced, "kept current by logical replication")
                        .help(format!(
                            "set `wal_level: logical` in `postgres.settings` or in the settings \
                             of `{coordinator}` (it is `{wal_level}`)"
                        )),
                );
            }
        }
        for (name, nodes) in raw.value.0 {
            if self.fragmented_table(&name, cx).is_none() {
                continue;
            }
            if fragmented.contains_key(&name.value) {
                self.push(
                    self.problem(format!("`{}` is fragmented", name.value))
                        .at(&name.referenced, "a reference table is copied whole")
                        .help("a table is either fragmented or copied, not both"),
                );
                continue;
            }
            let mut targets = Vec::new();
            for node in nodes.value {
                let at = node.referenced;
                if coordinator.as_ref() == Some(&node.value) {
                    self.push(
                        self.problem(format!("`{}` is the coordinator", node.value))
                            .at(&at, "it holds the table already"),
                    );
                } else if let Some(node) = self.fragment_node(Some(node), &at, cx) {
                    targets.push(node);
                }
            }
            out.insert(name.value, targets);
        }
        out
    }

    fn distributed_index(
        &mut self,
        raw: Spanned<RawIndex>,
        fragmented: &BTreeMap<String, Fragmentation>,
        cx: &Context<'_>,
    ) -> Option<DistributedIndex> {
        let at = raw.referenced;
        let raw = raw.value;
        let Some(name) = raw.table else {
            self.push(
                self.problem("this index has no `table`")
                    .at(&at, "add `table: <name>`"),
            );
            return None;
        };
        let table = self.fragmented_table(&name, cx)?;
        if !fragmented.contains_key(&name.value) {
            self.push(
                self.problem(format!("`{}` is not fragmented", name.value))
                    .at(
                        &name.referenced,
                        "this table lives whole on the coordinator",
                    )
                    .help("declare its indexes in the manifest with CREATE INDEX"),
            );
            return None;
        }
        let columns = raw.columns.map(|c| c.value).unwrap_or_default();
        if columns.is_empty() {
            self.push(
                self.problem("this index has no `columns`")
                    .at(&at, "add `columns: [...]`"),
            );
            return None;
        }
        let mut out = Vec::new();
        for column in columns {
            if table.column(&column.value).is_none() {
                self.unknown_column(table, &column);
            } else {
                out.push(column.value);
            }
        }
        let unique = raw.unique.unwrap_or(false);
        if let (true, Some(Fragmentation::Horizontal { key, .. })) =
            (unique, fragmented.get(&name.value))
            && !out.contains(key)
        {
            self.push(
                self.problem(format!(
                    "a unique index on `{}` must include its fragment key `{key}`",
                    name.value
                ))
                .at(&at, "unique per node only")
                .help("each node checks uniqueness among its own rows"),
            );
        }
        if let Some(Fragmentation::Vertical { key, parts }) = fragmented.get(&name.value)
            && !parts.iter().any(|part| {
                out.iter()
                    .all(|column| column == key || part.columns.contains(column))
            })
        {
            self.push(
                self.problem(format!(
                    "no column group of `{}` holds all of these columns",
                    name.value
                ))
                .at(&at, "an index lives on one node, with the columns it reads")
                .help("index columns of one vertical part, or split the index"),
            );
            return None;
        }
        Some(DistributedIndex {
            table: name.value,
            columns: out,
            unique,
        })
    }
}

fn scalar_text(value: &Scalar) -> String {
    match value {
        Scalar::Null => "NULL".into(),
        Scalar::Bool(b) => b.to_string(),
        Scalar::Int(i) => i.to_string(),
        Scalar::Float(x) => x.to_string(),
        Scalar::Str(s) => s.clone(),
    }
}

fn compare(a: &str, b: &str, numeric: bool) -> std::cmp::Ordering {
    match (numeric, a.parse::<f64>(), b.parse::<f64>()) {
        (true, Ok(x), Ok(y)) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
        _ => a.cmp(b),
    }
}
