//! Tasks whose stored configuration holds more than DM's OpenAPI model can carry (tasks created with dmctl, or
//! changed with it), and what a PUT or a replace through the OpenAPI would drop or invert (docs/dm-behaviour.md
//! §11, R11.5; R6.7 for what an update compares).
//!
//! DM's OpenAPI reads such a task through a lossy projection: validators, expression filters, column mappings,
//! block-allow ignore lists, route extractions and most unit settings are invisible, and binlog filter rules with
//! action `Do` read back as ignore rules (tiflow #8972). A configuration written from that read and applied would
//! silently drop or invert them. So before dm-apply PUTs or replaces an existing task, it reads the task's full
//! configuration through DM's legacy endpoint (`DmClient::subtask_configs`, one request per task it would change,
//! never for unchanged tasks) and the planner refuses the change unless the loss is accepted
//! (`--accept-loss task.NAME`). `import` uses the same reading to warn.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::config::Desired;
use crate::convert::pattern::Case;
use crate::convert::scope::{self, Action, AllowList, FilterIn, RouteIn};
use crate::dm::legacy::{LegacySubtask, Scalar};
use crate::dm::types::Task;
use crate::dm::{DmClient, DmError};
use crate::live::Live;
use crate::plan::{ConfigAction, Kind, Plan, PlanError, PlanOptions};

/// Legacy reads in flight at once.
const CONCURRENCY: usize = 8;

/// What the legacy endpoint said about one task.
#[derive(Debug, Clone, PartialEq)]
pub enum LegacyRead {
    /// The configuration of each subtask (nothing secret is kept).
    Read(Vec<LegacySubtask>),
    /// It could not be read; why (never any of the answer's content).
    Failed(String),
}

/// The legacy reads of one plan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LegacyReads {
    /// Whether the tasks this plan changes were read. `false` (library callers that plan from a [`Live`] they built
    /// themselves, `drift`): the planner does not check legacy configurations at all.
    pub consulted: bool,
    /// The legacy endpoint is not served (a very old DM-master): said once, and every change it would have checked
    /// is refused.
    pub unserved: Option<String>,
    pub tasks: BTreeMap<String, LegacyRead>,
}

impl LegacyReads {
    /// Read, and nothing needed reading.
    pub fn nothing_to_read() -> Self {
        LegacyReads { consulted: true, ..Default::default() }
    }
}

/// What the stored configuration of a task means for a change through DM's OpenAPI.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assessment {
    /// Settings a PUT or replace would drop, invert or reset, one line each, prefixed with the source.
    pub losses: Vec<String>,
    /// Why DM would refuse an OpenAPI update of the task (46035: the worker compares the parts of the configuration
    /// an update may not change, R6.7). Empty: an update is possible.
    pub refuses_update: Vec<String>,
}

impl Assessment {
    /// Created (or changed) outside the OpenAPI.
    pub fn is_dmctl_shaped(&self) -> bool {
        !self.refuses_update.is_empty() || !self.losses.is_empty()
    }
}

/// Whether `e` says the legacy endpoint itself is not served (as opposed to a failure reading it).
fn is_unserved(e: &DmError) -> bool {
    match e {
        DmError::NotDm { status, .. } => *status == 404 || *status == 405 || *status == 501,
        DmError::Api { status, .. } => *status == 404 || *status == 405 || *status == 501,
        _ => false,
    }
}

/// Read the legacy configuration of `names`, a few at a time.
pub async fn read(client: &DmClient, names: &[String]) -> LegacyReads {
    let mut out = LegacyReads::nothing_to_read();
    if names.is_empty() {
        return out;
    }
    let sem = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let mut set = tokio::task::JoinSet::new();
    for name in names {
        let (client, sem, name) = (client.clone(), sem.clone(), name.clone());
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let r = client.subtask_configs(&name).await;
            (name, r)
        });
    }
    while let Some(joined) = set.join_next().await {
        let Ok((name, r)) = joined else { continue };
        let read = match r {
            Ok(Some(subtasks)) => LegacyRead::Read(subtasks),
            Ok(None) => LegacyRead::Failed("DM's legacy endpoint does not know the task (\"task not found\")".into()),
            Err(e) if is_unserved(&e) => {
                out.unserved.get_or_insert_with(|| {
                    format!(
                        "DM-master does not serve its legacy endpoint /apis/v1alpha1 ({e}); dm-apply cannot see the \
                         settings DM's OpenAPI does not show, so it refuses to update or replace existing tasks"
                    )
                });
                LegacyRead::Failed("DM-master does not serve /apis/v1alpha1".into())
            }
            Err(e) => LegacyRead::Failed(e.to_string()),
        };
        out.tasks.insert(name, read);
    }
    out
}

/// The existing, declared tasks a plan would PUT or replace: the only ones whose legacy configuration is read.
pub fn tasks_to_read(plan: &Plan, live: &Live) -> Vec<String> {
    plan.changes
        .iter()
        .filter(|c| {
            c.address.kind == Kind::Task
                && matches!(c.action, ConfigAction::Update | ConfigAction::Replace)
                && c.hold.is_none()
                && live.tasks.contains_key(&c.address.name)
        })
        .map(|c| c.address.name.clone())
        .collect()
}

/// Plan with the legacy check: build the plan, read the legacy configuration of the tasks it would PUT or replace
/// (none when nothing changes, so `plan` keeps its constant request count), then finish it (legacy check and
/// lifecycle guards). `live.legacy` holds the reads afterwards.
pub async fn plan(
    client: &DmClient,
    desired: &Desired,
    live: &mut Live,
    opts: &PlanOptions,
) -> Result<Plan, PlanError> {
    let built = crate::plan::build_plan(desired, live, opts)?;
    let names = tasks_to_read(&built, live);
    live.legacy = read(client, &names).await;
    crate::plan::finish_plan(built, desired, live, opts)
}

/// Longest loss line shown, in characters.
const MAX_LINE: usize = 400;

fn shown(text: &str) -> String {
    let line = crate::ui::sanitize::inline(text);
    if line.chars().count() <= MAX_LINE {
        return line.into_owned();
    }
    format!("{}…", line.chars().take(MAX_LINE).collect::<String>())
}

fn scalar(v: &Option<Scalar>) -> Option<&str> {
    v.as_ref().map(Scalar::as_str)
}

/// A unit setting that differs from what DM's OpenAPI writes (`None`: absent from the document, taken as the
/// default).
fn differs(v: &Option<Scalar>, default: &str) -> Option<String> {
    scalar(v).filter(|x| *x != default).map(str::to_string)
}

fn has_dump(mode: &str) -> bool {
    matches!(mode, "all" | "full" | "dump")
}

fn has_load(mode: &str) -> bool {
    matches!(mode, "all" | "full" | "load")
}

fn has_sync(mode: &str) -> bool {
    matches!(mode, "all" | "incremental")
}

fn pair(schema: &str, table: &str) -> String {
    if table.is_empty() { format!("`{schema}`") } else { format!("`{schema}`.`{table}`") }
}

fn events(f: &crate::dm::legacy::LegacyFilter) -> String {
    let mut parts = vec![];
    if !f.events.is_empty() {
        parts.push(format!("events {}", f.events.join(", ")));
    }
    if !f.sql.is_empty() {
        parts.push(format!("{} SQL pattern(s)", f.sql.len()));
    }
    if parts.is_empty() { "no events".to_string() } else { parts.join(", ") }
}

/// Compare what DM stores for a task with what DM's OpenAPI model can carry. `wire` is the task dm-apply would send
/// (for the settings the model can set but DM never returns); `None` (import) compares with DM's defaults.
pub fn assess(subtasks: &[LegacySubtask], wire: Option<&Task>) -> Assessment {
    let mut a = Assessment::default();
    let mut sorted: Vec<&LegacySubtask> = subtasks.iter().collect();
    sorted.sort_by(|x, y| x.source.cmp(&y.source));
    let mut marker_seen = false;
    for s in sorted {
        let src = &s.source;
        let mut loss = |text: String, blocks: bool| {
            // Patterns and values come from DM: one line, control characters escaped, bounded.
            let text = shown(&text);
            if blocks {
                a.refuses_update.push(format!("source `{src}`: {text}"));
            }
            a.losses.push(format!("source `{src}`: {text}"));
        };
        // Validators, expression filters, column mappings: absent from DM's OpenAPI model (R11.5).
        if !matches!(s.validator.mode.as_str(), "" | "none") {
            loss(format!("the continuous validator (mode `{}`) would be turned off", s.validator.mode), true);
        }
        for e in &s.expr_filters {
            loss(format!("the expression filter on {} would be dropped", pair(&e.schema, &e.table)), true);
        }
        if s.column_mappings > 0 {
            loss(format!("{} column mapping rule(s) would be dropped", s.column_mappings), true);
        }
        // Binlog filters with action Do or Error: the OpenAPI shows them as ignore rules (tiflow #8972).
        for f in &s.filters {
            match f.action.to_ascii_lowercase().as_str() {
                "do" => loss(
                    format!(
                        "the binlog filter on {} with action Do ({}) would be inverted: DM's OpenAPI shows it as an \
                         ignore rule, so the task would skip exactly the events it now keeps",
                        pair(&f.schema, &f.table),
                        events(f)
                    ),
                    false,
                ),
                "error" => loss(
                    format!(
                        "the binlog filter on {} with action Error ({}) would become an ignore rule: the events that \
                         now stop the task would be skipped",
                        pair(&f.schema, &f.table),
                        events(f)
                    ),
                    false,
                ),
                _ => {}
            }
        }
        // Routes, ignore lists and ignore filters: what DM's OpenAPI table rules cannot express exactly.
        for r in s.routes.iter().filter(|r| r.extracts()) {
            loss(
                format!(
                    "the route of {} extracts table, schema or source names into a column; DM's OpenAPI routes \
                     cannot, so the extraction would be dropped",
                    pair(&r.schema, &r.table)
                ),
                false,
            );
        }
        for refusal in scope_refusals(s) {
            loss(refusal, false);
        }
        // Unit settings DM's OpenAPI cannot set (it writes its defaults): R6.7 compares the dump and load ones.
        if has_dump(&s.mode) {
            for (key, v, default) in [
                ("chunk-filesize", &s.chunk_filesize, "64"),
                ("statement-size", &s.statement_size, "0"),
                ("rows", &s.rows, "0"),
                ("skip-tz-utc", &s.skip_tz_utc, "true"),
            ] {
                if let Some(x) = differs(v, default) {
                    loss(format!("mydumper `{key}: {x}` would be reset to `{default}`"), true);
                }
            }
            // Free text (a WHERE clause, command-line arguments): named, never shown.
            if differs(&s.where_, "").is_some() {
                loss("the mydumper `where` condition would be dropped".to_string(), true);
            }
            if scalar(&s.extra_args).is_some_and(|x| {
                let rest = x.trim().strip_prefix("--consistency ").map(str::trim);
                !x.trim().is_empty() && !rest.is_some_and(|c| !c.is_empty() && !c.contains(' '))
            }) {
                loss("mydumper `extra-args` would be dropped (dm-apply sets only `--consistency`)".to_string(), true);
            }
        }
        if has_load(&s.mode) {
            let full = wire.and_then(|w| w.source_config.full_migrate_conf.as_ref());
            let want = |f: fn(&crate::dm::types::FullMigrateConf) -> Option<String>, default: &str| {
                full.and_then(f).unwrap_or_else(|| default.to_string())
            };
            for (key, v, wanted) in [
                ("on-duplicate-physical", &s.on_duplicate_physical, want(|f| f.on_duplicate_physical.clone(), "none")),
                ("checksum-physical", &s.checksum, want(|f| f.checksum.clone(), "required")),
                ("analyze", &s.analyze, want(|f| f.analyze.clone(), "optional")),
                ("range-concurrency", &s.range_concurrency, want(|f| f.range_concurrency.map(|n| n.to_string()), "0")),
                ("compress-kv-pairs", &s.compress_kv_pairs, want(|f| f.compress_kv_pairs.clone(), "")),
            ] {
                if let Some(x) = scalar(v).filter(|x| !x.eq_ignore_ascii_case(&wanted)) {
                    loss(format!("loader `{key}: {x}` would become `{wanted}`"), true);
                }
            }
            if let Some(x) = differs(&s.disk_quota, "0")
                && full.and_then(|f| f.disk_quota.as_ref()).is_none()
            {
                loss(format!("loader `disk-quota-physical: {x}` would be reset (no disk_quota is configured)"), true);
            }
        }
        if has_sync(&s.mode) {
            // The whole syncer section is replaced by an update too (R6.7 copies it over), so these are lost by
            // an update as well as by a replace.
            let safe_mode = wire.and_then(|w| w.source_config.incr_migrate_conf.as_ref()).and_then(|i| i.safe_mode);
            for (key, v, default) in [
                ("queue-size", &s.queue_size, "1024"),
                ("checkpoint-flush-interval", &s.checkpoint_flush_interval, "30"),
                ("compact", &s.compact, "false"),
                ("multiple-rows", &s.multiple_rows, "false"),
                ("safe-mode-duration", &s.safe_mode_duration, "60s"),
            ] {
                if let Some(x) = differs(v, default) {
                    loss(format!("syncer `{key}: {x}` would be reset to `{default}`"), false);
                }
            }
            if scalar(&s.safe_mode) == Some("true") && safe_mode != Some(true) {
                loss("syncer `safe-mode: true` would be turned off".to_string(), false);
            }
        }
        // Task-level settings the OpenAPI never writes.
        if s.collation == "strict" {
            loss("`collation_compatible: strict` would become `loose`".to_string(), true);
        }
        let tz_wanted = wire.and_then(|w| w.timezone.as_deref()).unwrap_or("");
        if !s.timezone.is_empty() && s.timezone != tz_wanted {
            loss(format!("`timezone: {}` would be dropped", s.timezone), true);
        }
        let default_rules = |v: &[String], d: &str| v.is_empty() || (v.len() == 1 && v[0] == d);
        if !default_rules(&s.shadow_rules, "^_(.+)_(?:new|gho)$")
            || !default_rules(&s.trash_rules, "^_(.+)_(?:ghc|del|old)$")
        {
            loss("custom online-DDL shadow/trash table rules would be reset to DM's defaults".to_string(), true);
        }
        if s.experimental.async_checkpoint_flush {
            loss("`experimental.async-checkpoint-flush: true` would be turned off".to_string(), true);
        }
        // Settings only dmctl writes, which make DM refuse an OpenAPI update but lose nothing that matters.
        let dmctl = !s.collation.is_empty() || s.heartbeat_update != 0 || s.heartbeat_report != 0 || s.clean_dump_file;
        if dmctl && !marker_seen {
            marker_seen = true;
            a.refuses_update.push(
                "it was created with dmctl: DM compares the whole stored configuration on update, and the OpenAPI \
                 never writes dmctl's `clean-dump-file`, `collation_compatible` and heartbeat settings"
                    .to_string(),
            );
        }
    }
    a
}

/// What the block-allow list, routes and ignore filters of a subtask do that DM's OpenAPI table rules cannot express
/// exactly (the same analysis as `dm-apply convert`).
fn scope_refusals(s: &LegacySubtask) -> Vec<String> {
    let case = if s.case_sensitive { Case::Sensitive } else { Case::Insensitive };
    let ba = s.effective_allow_list().map(|l| AllowList {
        name: "of the task".to_string(),
        ptr: "/block-allow-list".to_string(),
        do_dbs: l.do_dbs.iter().enumerate().map(|(i, d)| (d.clone(), format!("/do-dbs/{i}"))).collect(),
        do_tables: l
            .do_tables
            .iter()
            .enumerate()
            .map(|(i, t)| (t.schema.clone(), t.table.clone(), format!("/do-tables/{i}")))
            .collect(),
        ignore_dbs: l.ignore_dbs.iter().enumerate().map(|(i, d)| (d.clone(), format!("/ignore-dbs/{i}"))).collect(),
        ignore_tables: l
            .ignore_tables
            .iter()
            .enumerate()
            .map(|(i, t)| (t.schema.clone(), t.table.clone(), format!("/ignore-tables/{i}")))
            .collect(),
    });
    let routes: Vec<RouteIn> = s
        .routes
        .iter()
        .enumerate()
        .map(|(i, r)| RouteIn {
            name: format!("#{} ({})", i + 1, pair(&r.schema, &r.table)),
            ptr: format!("/route-rules/{i}"),
            schema: r.schema.clone(),
            table: r.table.clone(),
            target_schema: Some(r.target_schema.clone()).filter(|x| !x.is_empty()),
            target_table: Some(r.target_table.clone()).filter(|x| !x.is_empty()),
        })
        .collect();
    // Do and Error filters are reported on their own (they are inverted whatever the rules).
    let filters: Vec<FilterIn> = s
        .filters
        .iter()
        .enumerate()
        .filter(|(_, f)| f.action.eq_ignore_ascii_case("ignore"))
        .map(|(i, f)| FilterIn {
            name: format!("#{} ({})", i + 1, pair(&f.schema, &f.table)),
            ptr: format!("/filter-rules/{i}"),
            schema: f.schema.clone(),
            table: f.table.clone(),
            action: Action::Ignore,
            events: f.events.clone(),
            sql: f.sql.clone(),
        })
        .collect();
    let outcome = scope::carry(case, "", ba.as_ref(), &routes, &filters);
    let mut out: Vec<String> = outcome.refusals.into_iter().map(|r| format!("{}: {}", r.what, r.why)).collect();
    if let Some((_, why)) = outcome.invalid {
        out.push(format!("its table patterns could not be analysed ({why}); what they select may change"));
    }
    out
}

/// The import warning of a task whose stored configuration holds more than the OpenAPI shows.
pub fn import_warning(task: &str, a: &Assessment) -> Option<String> {
    if a.losses.is_empty() {
        if a.refuses_update.is_empty() {
            return None;
        }
        return Some(format!(
            "task `{task}` was created with dmctl: DM refuses to update it through the OpenAPI, so dm-apply replaces \
             it on its first change (nothing DM's OpenAPI cannot show is lost)"
        ));
    }
    Some(format!(
        "task `{task}` holds settings DM's OpenAPI does not show; managing it with dm-apply would drop them (dm-apply \
         refuses such a change unless run with --accept-loss task.{task}; or keep managing this task with dmctl): {}",
        a.losses.join("; ")
    ))
}

/// Tasks named in `--accept-loss` that are not declared.
pub fn unknown_accepts(desired: &Desired, accepts: &[crate::plan::Address]) -> BTreeSet<String> {
    accepts
        .iter()
        .filter(|a| a.kind != Kind::Task || !desired.tasks.contains_key(&a.name))
        .map(|a| a.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dm::legacy::{LegacyAllowList, LegacyExprFilter, LegacyFilter, LegacyTable, LegacyValidator};

    fn openapi_shaped() -> LegacySubtask {
        LegacySubtask {
            name: "t".into(),
            source: "a".into(),
            mode: "incremental".into(),
            allow_list: Some(LegacyAllowList { do_dbs: vec!["shop".into()], ..Default::default() }),
            safe_mode_duration: Some(Scalar("60s".into())),
            queue_size: Some(Scalar("1024".into())),
            ..Default::default()
        }
    }

    #[test]
    fn an_openapi_task_loses_nothing_and_can_be_updated() {
        let a = assess(&[openapi_shaped()], None);
        assert_eq!(a, Assessment::default());
        assert!(!a.is_dmctl_shaped());
    }

    #[test]
    fn a_dmctl_task_without_extras_only_refuses_updates() {
        let s = LegacySubtask {
            collation: "loose".into(),
            heartbeat_update: 1,
            heartbeat_report: 10,
            clean_dump_file: true,
            ..openapi_shaped()
        };
        let a = assess(&[s.clone(), LegacySubtask { source: "b".into(), ..s }], None);
        assert!(a.losses.is_empty(), "{a:?}");
        assert_eq!(a.refuses_update.len(), 1, "said once: {a:?}");
    }

    #[test]
    fn extras_are_listed_per_source() {
        let s = LegacySubtask {
            validator: LegacyValidator { mode: "full".into() },
            expr_filters: vec![LegacyExprFilter { schema: "shop".into(), table: "orders".into() }],
            filters: vec![LegacyFilter {
                schema: "shop".into(),
                events: vec!["insert".into()],
                action: "Do".into(),
                ..Default::default()
            }],
            allow_list: Some(LegacyAllowList {
                ignore_dbs: vec!["tmp".into()],
                ignore_tables: vec![LegacyTable { schema: "shop".into(), table: "log".into() }],
                ..Default::default()
            }),
            compact: Some(Scalar("true".into())),
            ..openapi_shaped()
        };
        let a = assess(&[s], None);
        let all = a.losses.join("\n");
        for needle in ["validator (mode `full`)", "expression filter on `shop`.`orders`", "action Do", "ignore-dbs"] {
            assert!(all.contains(needle), "{needle}: {all}");
        }
        assert!(all.contains("syncer `compact: true`"), "{all}");
        assert!(a.losses.iter().all(|l| l.starts_with("source `a`: ")), "{all}");
        // Validators and expression filters make an update fail; filters and syncer settings do not.
        assert_eq!(a.refuses_update.len(), 2, "{a:?}");
    }

    #[test]
    fn text_from_dm_is_one_line_and_free_text_is_not_shown() {
        let s = LegacySubtask {
            mode: "all".into(),
            expr_filters: vec![LegacyExprFilter { schema: "a\u{1b}[2J\nfake line".into(), table: "t".into() }],
            where_: Some(Scalar("id > 0 -- secret-ish".into())),
            ..openapi_shaped()
        };
        let all = assess(&[s], None).losses.join("\n");
        assert!(!all.contains('\u{1b}') && all.lines().count() == 2, "{all}");
        assert!(all.contains("`where` condition") && !all.contains("secret-ish"), "{all}");
    }

    #[test]
    fn load_settings_compare_with_what_would_be_sent() {
        let s = LegacySubtask { mode: "full".into(), checksum: Some(Scalar("off".into())), ..openapi_shaped() };
        assert_eq!(assess(std::slice::from_ref(&s), None).losses.len(), 1);
        let mut wire = Task::default();
        wire.source_config.full_migrate_conf =
            Some(crate::dm::types::FullMigrateConf { checksum: Some("off".into()), ..Default::default() });
        assert!(assess(&[s], Some(&wire)).losses.is_empty());
    }

    use crate::plan::testing::{ONE_SOURCE_ONE_TASK, desired_from_yaml, live_after_apply, test_key};
    use crate::plan::{Address, PlanProblem, build_plan, finish_plan};

    /// `ONE_SOURCE_ONE_TASK` applied, then its `repl_batch` changed: an update of `t1`.
    fn updated() -> (Desired, Live, Plan, PlanOptions) {
        let version = crate::dm::ServerVersion::parse("v8.5.4");
        let before = desired_from_yaml("a.yaml", ONE_SOURCE_ONE_TASK).unwrap();
        let live = live_after_apply(&before, &version, 0);
        let changed = ONE_SOURCE_ONE_TASK
            .replace("    source_config:\n", "    source_config:\n      incr_migrate_conf: {repl_batch: 7}\n");
        let desired = desired_from_yaml("a.yaml", &changed).unwrap();
        let opts = PlanOptions { state_key: Some(test_key()), ..Default::default() };
        let plan = build_plan(&desired, &live, &opts).unwrap();
        assert_eq!(plan.change(&Address::task("t1")).unwrap().action, ConfigAction::Update);
        (desired, live, plan, opts)
    }

    fn reads_of(subtask: LegacySubtask) -> LegacyReads {
        let mut r = LegacyReads::nothing_to_read();
        r.tasks.insert("t1".into(), LegacyRead::Read(vec![subtask]));
        r
    }

    #[test]
    fn not_consulted_changes_nothing() {
        let (desired, live, plan, opts) = updated();
        assert_eq!(finish_plan(plan.clone(), &desired, &live, &opts).unwrap(), plan);
    }

    #[test]
    fn an_openapi_task_is_updated_in_place() {
        let (desired, mut live, plan, opts) = updated();
        live.legacy = reads_of(LegacySubtask { source: "s1".into(), ..openapi_shaped() });
        let p = finish_plan(plan, &desired, &live, &opts).unwrap();
        assert_eq!(p.change(&Address::task("t1")).unwrap().action, ConfigAction::Update);
    }

    #[test]
    fn a_dmctl_task_is_replaced_and_its_losses_refused_unless_accepted() {
        let (desired, mut live, plan, mut opts) = updated();
        let dmctl = LegacySubtask {
            source: "s1".into(),
            collation: "loose".into(),
            heartbeat_update: 1,
            heartbeat_report: 10,
            clean_dump_file: true,
            ..openapi_shaped()
        };
        live.legacy = reads_of(dmctl.clone());
        let p = finish_plan(plan.clone(), &desired, &live, &opts).unwrap();
        let c = p.change(&Address::task("t1")).unwrap();
        assert_eq!(c.action, ConfigAction::Replace);
        // Positioned incremental task: the replace resumes from the configured position.
        assert!(matches!(c.impact, crate::plan::Impact::Replace { restarts_migration: false, .. }), "{:?}", c.impact);
        assert!(c.reasons.iter().any(|r| r.contains("46035") && r.contains("created with dmctl")), "{:?}", c.reasons);

        live.legacy = reads_of(LegacySubtask { validator: LegacyValidator { mode: "fast".into() }, ..dmctl });
        let e = finish_plan(plan.clone(), &desired, &live, &opts).unwrap_err();
        match &e.problems[..] {
            [PlanProblem::ConfigLoss { address, summary, help, .. }] => {
                assert_eq!(address, &Address::task("t1"));
                assert!(summary.contains("validator (mode `fast`)"), "{summary}");
                assert!(help.contains("--accept-loss task.t1"), "{help}");
            }
            other => panic!("{other:?}"),
        }
        opts.accept_loss = vec![Address::task("t1")];
        let p = finish_plan(plan, &desired, &live, &opts).unwrap();
        let c = p.change(&Address::task("t1")).unwrap();
        assert_eq!(c.action, ConfigAction::Replace);
        assert!(c.reasons.iter().any(|r| r.contains("as accepted") && r.contains("validator")), "{:?}", c.reasons);
    }

    #[test]
    fn an_unread_task_is_refused_never_assumed_plain() {
        let (desired, mut live, plan, opts) = updated();
        live.legacy = LegacyReads::nothing_to_read();
        live.legacy.unserved = Some("DM-master does not serve its legacy endpoint".into());
        live.legacy.tasks.insert("t1".into(), LegacyRead::Failed("not served".into()));
        let e = finish_plan(plan, &desired, &live, &opts).unwrap_err();
        assert!(matches!(&e.problems[..], [PlanProblem::ConfigLoss { .. }]), "{:?}", e.problems);
        let shown = e.plan.unwrap().warnings;
        assert_eq!(shown.iter().filter(|w| w.contains("legacy endpoint")).count(), 1, "said once: {shown:?}");
    }

    /// A DM-master without `/apis/v1alpha1` (Go's plain 404 page for every path): said once, every read failed.
    #[tokio::test]
    async fn an_old_dm_master_without_the_legacy_endpoint() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let page = "HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\ncontent-length: 18\r\nconnection: close\r\n\r\n404 page not found";
                let _ = sock.write_all(page.as_bytes()).await;
                let _ = sock.shutdown().await;
            }
        });
        let client = DmClient::new(&crate::dm::ClientOptions::new(addr)).unwrap();
        let reads = read(&client, &["a".to_string(), "b".to_string()]).await;
        assert!(reads.consulted);
        assert!(reads.unserved.as_deref().is_some_and(|w| w.contains("/apis/v1alpha1")), "{reads:?}");
        assert!(reads.tasks.values().all(|r| matches!(r, LegacyRead::Failed(_))), "{reads:?}");
        assert_eq!(reads.tasks.len(), 2);
    }
}
