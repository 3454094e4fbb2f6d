//! `dm-apply import`: dm-apply YAML for what already runs in a DM cluster, ready to commit.
//!
//! Read-only: import never writes to DM (not even dm-apply's state record), so it is safe on production.
//! The live objects are mapped back to the desired-state model with server defaults left out (the values the
//! normalizer treats as "not set"), so that planning the output against the same cluster shows no changes:
//!
//! - Secrets are never written. Source passwords (masked by DM) and task target passwords (returned in plain text
//!   by DM) become `${env:NAME}` placeholders, listed with what to put in them. Target passwords that differ get
//!   different variables, so setting each variable to the password in use keeps the plan empty.
//! - What DM never returns and dm-apply cannot verify without sending it is marked in `lifecycle.ignore_changes`,
//!   with a warning, instead of producing a disruptive first apply: a source password (or TLS material) that
//!   dm-apply's record does not track yet (the source was created by dmctl), and the write-only
//!   `full_migrate_conf` fields of a task whose record holds their fingerprint (changing them replaces the task).
//! - Relay started by worker name becomes `relay` (without `workers` when it runs on the bound worker alone), and
//!   the worker each source is bound to becomes `worker_name`.
//! - Binlog filter rules come back renamed per source and detached from their table patterns (docs/dm-behaviour.md §9);
//!   identical rules are merged under one readable name and attached once per source, to its first table rule.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::config::model::*;
use crate::convert::{EnvNames, EnvVar, comment_safe, to_yaml};
use crate::dm::facts;
use crate::dm::types::{Security, Source, Stage, Task};
use crate::live::{Live, LiveTask};
use crate::normalize::{
    SOURCE_PASSWORD_KEY as FP_PASSWORD, SOURCE_SECURITY_KEY as FP_SECURITY, TASK_WRITE_ONLY_KEY as FP_WRITE_ONLY,
};
use crate::plan::Address;
use crate::secret::Secret;
use crate::state::STATE_TEMPLATE;

/// Which resources to import. Both empty: everything.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub sources: Vec<String>,
    pub tasks: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Imported {
    pub config: ConfigFile,
    /// Sorted; about what the output does not carry exactly.
    pub warnings: Vec<String>,
    /// Sorted by name.
    pub env: Vec<EnvVar>,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ImportError {
    #[error("DM has no {kind} named `{name}`")]
    #[diagnostic(code(import::unknown), help("list what exists with `dm-apply import` (no selection)"))]
    Unknown { kind: &'static str, name: String },
}

/// Map the live state to a configuration file.
pub fn import(live: &Live, opts: &ImportOptions) -> Result<Imported, ImportError> {
    for n in &opts.sources {
        if !live.sources.contains_key(n) {
            return Err(ImportError::Unknown { kind: "source", name: n.clone() });
        }
    }
    for n in &opts.tasks {
        if !live.tasks.contains_key(n) || n == STATE_TEMPLATE {
            return Err(ImportError::Unknown { kind: "task", name: n.clone() });
        }
    }
    let everything = opts.sources.is_empty() && opts.tasks.is_empty();
    let mut cx = Cx { live, env: EnvNames::default(), warnings: Vec::new(), target_passwords: BTreeMap::new() };

    let mut out = ConfigFile::default();
    for (name, s) in &live.sources {
        if everything || opts.sources.contains(name) {
            out.sources.push(cx.source(s));
        }
    }
    let mut external = BTreeSet::new();
    for (name, lt) in &live.tasks {
        if name == STATE_TEMPLATE || !(everything || opts.tasks.contains(name)) {
            continue;
        }
        if let Some(t) = cx.task(lt) {
            for sc in &t.source_config.source_conf {
                if !out.sources.iter().any(|s| s.source_name == sc.source_name) {
                    external.insert(sc.source_name.clone());
                }
            }
            out.tasks.push(t);
        }
    }
    out.external_sources = external.into_iter().collect();
    let mut warnings = cx.warnings;
    if let Some(w) = &live.legacy.unserved {
        warnings.push(format!(
            "{w}; the imported tasks may hold settings (set with dmctl) that DM's OpenAPI does not show and this file \
             does not carry"
        ));
    }
    warnings.sort();
    warnings.dedup();
    Ok(Imported { config: out, warnings, env: cx.env.into_vars() })
}

/// The file import writes: schema line, header (cluster, variables, warnings), YAML.
pub fn render(imp: &Imported, addr: &str, schema_ref: &str) -> String {
    let mut s = format!("# yaml-language-server: $schema={schema_ref}\n#\n");
    s.push_str(&format!("# Imported by `dm-apply import` from {}\n", comment_safe(addr)));
    if !imp.env.is_empty() {
        s.push_str("#\n# Set these environment variables before running validate/plan/apply:\n");
        for v in &imp.env {
            s.push_str(&format!("#   {}: {}\n", v.name, comment_safe(&v.purpose)));
        }
    }
    if !imp.warnings.is_empty() {
        s.push_str("#\n# Review before committing:\n");
        for w in &imp.warnings {
            s.push_str(&format!("#   {}\n", comment_safe(w)));
        }
    }
    s.push('\n');
    s.push_str(&yaml_by_item(&imp.config));
    s
}

/// The same text as `to_yaml(config)`, rendered one top-level list item at a time: `to_yaml` builds one JSON tree of
/// the whole file, which for a large (or hostile) cluster takes many times the size of DM's answer
/// (docs/safety.md, "Hostile input").
fn yaml_by_item(config: &ConfigFile) -> String {
    if config.sources.is_empty() && config.tasks.is_empty() {
        return to_yaml(config);
    }
    let mut out = String::new();
    // `key:\n- item...`: the key line from the first item's text, then only the items.
    let mut push = |first: bool, text: String| match first {
        true => out.push_str(&text),
        false => out.push_str(text.split_once('\n').map(|(_, items)| items).unwrap_or_default()),
    };
    for (i, s) in config.sources.iter().enumerate() {
        push(i == 0, to_yaml(&ConfigFile { sources: vec![s.clone()], ..ConfigFile::default() }));
    }
    for (i, t) in config.tasks.iter().enumerate() {
        push(i == 0, to_yaml(&ConfigFile { tasks: vec![t.clone()], ..ConfigFile::default() }));
    }
    if !config.external_sources.is_empty() {
        let external = ConfigFile { external_sources: config.external_sources.clone(), ..ConfigFile::default() };
        push(true, to_yaml(&external));
    }
    out
}

struct Cx<'a> {
    live: &'a Live,
    env: EnvNames,
    warnings: Vec<String>,
    /// user@host:port → (password, variable) already claimed, to share variables only between equal passwords.
    target_passwords: BTreeMap<String, Vec<(Secret, String)>>,
}

fn placeholder(name: &str) -> Secret {
    Secret::new(format!("${{env:{name}}}"))
}

fn parse_enum<T: serde::de::DeserializeOwned>(s: &str) -> Option<T> {
    serde_json::from_value(Value::String(s.to_lowercase())).ok()
}

impl Cx<'_> {
    fn tracked(&self, address: &Address, key: &str) -> bool {
        self.live.state.record().and_then(|r| r.entry(address)).is_some_and(|e| e.fingerprints.contains_key(key))
    }

    fn source(&mut self, s: &Source) -> SourceSpec {
        let name = &s.source_name;
        let address = Address::source(name);
        let mut lifecycle = Lifecycle::default();
        let var = self.env.claim_keyed(
            &format!("source:{name}"),
            &format!("DM_SOURCE_{name}_PASSWORD"),
            format!("password of source `{name}` (user `{}` on {}:{})", s.user, s.host, s.port),
        );
        if !self.tracked(&address, FP_PASSWORD) {
            lifecycle.ignore_changes.push("password".into());
            let why = if self.live.state.usable() {
                "dm-apply has never sent this password"
            } else {
                "dm-apply's state record could not be read"
            };
            self.warnings.push(format!(
                "source `{name}`: {why} (DM masks passwords), so it cannot tell whether ${{env:{var}}} matches; \
                 `password` is in lifecycle.ignore_changes. Remove it to have dm-apply trust the configured password \
                 on its next apply (recorded, not sent) and detect later changes; `-replace source.NAME` sends it"
            ));
        }
        let security = s.security.as_ref().map(|sec| {
            let ca =
                self.env.claim(&format!("DM_SOURCE_{name}_SSL_CA"), format!("CA certificate (PEM) of source `{name}`"));
            let cert = self
                .env
                .claim(&format!("DM_SOURCE_{name}_SSL_CERT"), format!("client certificate (PEM) of source `{name}`"));
            let key = self
                .env
                .claim(&format!("DM_SOURCE_{name}_SSL_KEY"), format!("client private key (PEM) of source `{name}`"));
            if !self.tracked(&address, FP_SECURITY) {
                lifecycle.ignore_changes.push("security".into());
                self.warnings.push(format!(
                    "source `{name}`: DM hides TLS contents and dm-apply does not track them yet; `security` is in \
                     lifecycle.ignore_changes (remove it to have dm-apply record them on its next apply and detect later changes)"
                ));
            }
            SecuritySpec {
                ssl_ca_content: format!("${{env:{ca}}}"),
                ssl_cert_content: format!("${{env:{cert}}}"),
                ssl_key_content: placeholder(&key),
                cert_allowed_cn: sec.cert_allowed_cn.clone().filter(|v| !v.is_empty()),
            }
        });
        let purge = s.purge.as_ref().and_then(|p| {
            let spec = PurgeSpec {
                interval: p.interval.filter(|v| *v != facts::PURGE_INTERVAL),
                expires: p.expires.filter(|v| *v != facts::PURGE_EXPIRES),
                remain_space: p.remain_space.filter(|v| *v != facts::PURGE_REMAIN_SPACE),
            };
            (spec != PurgeSpec::default()).then_some(spec)
        });
        let relay_config = s.relay_config.as_ref().and_then(|r| {
            let spec = RelayConfigSpec {
                enable_relay: r.enable_relay.filter(|e| *e),
                relay_binlog_name: r.relay_binlog_name.clone().filter(|v| !v.is_empty()),
                relay_binlog_gtid: r.relay_binlog_gtid.clone().filter(|v| !v.is_empty()),
                // The server's default directory (and the spec's) is left out.
                relay_dir: r.relay_dir.clone().filter(|v| !facts::is_default_relay_dir(v)),
            };
            (spec != RelayConfigSpec::default()).then_some(spec)
        });
        SourceSpec {
            source_name: name.clone(),
            host: s.host.clone(),
            port: s.port,
            user: s.user.clone(),
            password: Some(placeholder(&var)),
            enable_gtid: s.enable_gtid,
            enable: s.enable,
            // Detected by DM; only MariaDB is worth stating.
            flavor: s.flavor.as_deref().and_then(parse_enum::<Flavor>).filter(|f| *f == Flavor::Mariadb),
            security,
            purge,
            relay_config,
            relay: self.relay(s),
            worker_name: self.live.bound_worker(name).flatten().map(str::to_string),
            lifecycle,
            write_only_version: None,
        }
    }

    /// Relay started by worker name: on the bound worker alone, `relay: {enabled: true}`; otherwise the workers,
    /// named. Sources without relay get no `relay` (not managed); relay through the config flag stays in
    /// `relay_config` (docs/dm-behaviour.md R4.4).
    fn relay(&mut self, s: &Source) -> Option<RelaySpec> {
        let name = &s.source_name;
        if s.relay_config.as_ref().and_then(|r| r.enable_relay) == Some(true) {
            self.warnings.push(format!(
                "source `{name}`: relay runs through `relay_config.enable_relay`, which DM cannot purge; to manage it,                  remove that flag and declare `relay: {{enabled: true}}` (the next apply restarts relay by worker name)"
            ));
        }
        let Some(lr) = self.live.relay_of(name) else {
            self.warnings.push(format!(
                "source `{name}`: DM did not say on which workers relay runs, so `relay` is not written for it"
            ));
            return None;
        };
        if !lr.unattributed.is_empty() {
            self.warnings
                .push(format!("source `{name}`: a relay worker could not be asked, so `relay.workers` may miss it"));
        }
        if lr.workers.is_empty() {
            return None;
        }
        let workers: Vec<String> = lr.workers.keys().cloned().collect();
        let bound = self.live.bound_worker(name).flatten();
        let on_bound_only = bound.is_some_and(|b| workers.len() == 1 && workers[0] == b);
        Some(RelaySpec { enabled: true, workers: (!on_bound_only).then_some(workers) })
    }

    fn target_password(&mut self, t: &Task) -> Secret {
        let tc = &t.target_config;
        if tc.password.is_empty() {
            return Secret::default();
        }
        let who = format!("{}@{}:{}", tc.user, tc.host, tc.port);
        let claimed = self.target_passwords.entry(who.clone()).or_default();
        if let Some((_, var)) = claimed.iter().find(|(p, _)| *p == tc.password) {
            return placeholder(var);
        }
        let n = claimed.len();
        let var = self.env.claim_keyed(
            &format!("target:{who}#{n}"),
            &format!("DM_TARGET_{}_PASSWORD", tc.user),
            format!("password of target user `{}` on {}:{} (task `{}`)", tc.user, tc.host, tc.port, t.name),
        );
        if let Some(v) = self.target_passwords.get_mut(&who) {
            v.push((tc.password.clone(), var.clone()));
        }
        placeholder(&var)
    }

    fn security(&mut self, sec: &Security, var: &str, what: &str) -> SecuritySpec {
        let key = if sec.ssl_key_content.is_empty() {
            Secret::default()
        } else {
            // Equal keys share a variable (compared by fingerprint, never written).
            let identity = format!("{var}#{}", sec.ssl_key_content.fingerprint("import"));
            placeholder(&self.env.claim_keyed(&identity, var, format!("private key (PEM) of {what}")))
        };
        SecuritySpec {
            ssl_ca_content: sec.ssl_ca_content.clone(),
            ssl_cert_content: sec.ssl_cert_content.clone(),
            ssl_key_content: key,
            cert_allowed_cn: sec.cert_allowed_cn.clone().filter(|v| !v.is_empty()),
        }
    }

    fn task(&mut self, lt: &LiveTask) -> Option<TaskSpec> {
        let t = &lt.task;
        let name = &t.name;
        let Some(task_mode) = parse_enum::<TaskMode>(&t.task_mode) else {
            self.warnings.push(format!("task `{name}`: unknown task_mode `{}`; not imported", t.task_mode));
            return None;
        };
        let address = Address::task(name);
        self.legacy_warning(name);
        let mut lifecycle = Lifecycle::default();
        let sources: BTreeSet<&str> = t.source_config.source_conf.iter().map(|s| s.source_name.as_str()).collect();

        // Table rules: a set keyed by (source, schema, table), in a stable order; rules of sources the task does not
        // have are dropped by DM anyway.
        let mut rules: BTreeMap<(String, String, String), TableMigrateRuleSpec> = BTreeMap::new();
        for r in &t.table_migrate_rule {
            if !sources.contains(r.source.source_name.as_str()) {
                continue;
            }
            let key = (r.source.source_name.clone(), r.source.schema.clone(), r.source.table.clone());
            let target = r.target.as_ref().and_then(|tg| {
                let schema = tg.schema.clone().filter(|s| !s.is_empty())?;
                Some(TableRuleTargetSpec { schema: Some(schema), table: tg.table.clone().filter(|s| !s.is_empty()) })
            });
            let entry = rules.entry(key).or_insert_with(|| TableMigrateRuleSpec {
                source: TableRuleSourceSpec {
                    source_name: r.source.source_name.clone(),
                    schema: r.source.schema.clone(),
                    table: r.source.table.clone(),
                },
                target: None,
                binlog_filter_rule: None,
            });
            if entry.target.is_none() {
                entry.target = target;
            }
        }
        let mut rules: Vec<TableMigrateRuleSpec> = rules.into_values().collect();

        // Binlog filters: per source, the server's `{source}-filter-rule-{i}` in index order; equal contents share
        // one name; all of a source's filters go on its first rule (DM does not return which patterns they had).
        let mut defs: BTreeMap<String, BinlogFilterRuleSpec> = BTreeMap::new();
        if let Some(live_defs) = &t.binlog_filter_rule {
            // Indexes built once: a task can hold many sources, rules and filters (up to the client's limits), and
            // searching them per source or per filter would take quadratic time (docs/safety.md, "Hostile input").
            let mut live_rules_of: BTreeMap<&str, Vec<&crate::dm::types::TableMigrateRule>> = BTreeMap::new();
            for r in &t.table_migrate_rule {
                live_rules_of.entry(r.source.source_name.as_str()).or_default().push(r);
            }
            // Source → (index of its first rule in `rules`, number of its rules).
            let mut first_rule_of: BTreeMap<String, (usize, usize)> = BTreeMap::new();
            for (i, r) in rules.iter().enumerate() {
                first_rule_of.entry(r.source.source_name.clone()).or_insert((i, 0)).1 += 1;
            }
            // Filter contents (as JSON) → the name given to them; names attached to a rule; next free suffixes.
            let mut name_of: BTreeMap<String, String> = BTreeMap::new();
            let mut used: BTreeSet<String> = BTreeSet::new();
            let mut suffixes: BTreeMap<String, u64> = BTreeMap::new();
            for src in &sources {
                let mut seen: BTreeSet<&String> = BTreeSet::new();
                let mut names: Vec<&String> = Vec::new();
                for r in live_rules_of.get(src).into_iter().flatten() {
                    for n in r.binlog_filter_rule.iter().flatten() {
                        if live_defs.contains_key(n) && seen.insert(n) {
                            names.push(n);
                        }
                    }
                }
                names.sort_by_key(|n| facts::filter_rule_index(src, n).unwrap_or(u64::MAX));
                if names.is_empty() {
                    continue;
                }
                let mut attached = Vec::new();
                let mut keys = Vec::new();
                for n in names {
                    let d = &live_defs[n];
                    let spec = BinlogFilterRuleSpec {
                        ignore_event: d.ignore_event.clone().filter(|v| !v.is_empty()),
                        ignore_sql: d.ignore_sql.clone().filter(|v| !v.is_empty()),
                    };
                    let key = serde_json::to_string(&spec).unwrap_or_default();
                    let fname = match name_of.get(&key) {
                        Some(k) => k.clone(),
                        None => {
                            let k = filter_name(&spec, &defs, &mut suffixes);
                            defs.insert(k.clone(), spec);
                            name_of.insert(key.clone(), k.clone());
                            k
                        }
                    };
                    attached.push(fname);
                    keys.push(key);
                }
                match first_rule_of.get(*src).copied() {
                    Some((first, count)) => {
                        let first = &mut rules[first];
                        used.extend(attached.iter().cloned());
                        if count > 1 {
                            self.warnings.push(format!(
                                "task `{name}`: DM does not return which table patterns the binlog filters of source \
                                 `{src}` applied to; they are attached to its first table rule (`{}`.`{}`): move \
                                 them if they belong elsewhere",
                                first.source.schema, first.source.table
                            ));
                        }
                        first.binlog_filter_rule = Some(attached);
                    }
                    None => {
                        self.warnings.push(format!(
                            "task `{name}`: source `{src}` has binlog filters but no table rule; filters not imported"
                        ));
                        for (f, key) in attached.into_iter().zip(keys) {
                            if !used.contains(&f) {
                                defs.remove(&f);
                                name_of.remove(&key);
                            }
                        }
                    }
                }
            }
        }
        let f = t.source_config.full_migrate_conf.clone().unwrap_or_default();
        let full = FullMigrateConfSpec {
            export_threads: f.export_threads.filter(|v| *v != facts::EXPORT_THREADS),
            import_threads: f.import_threads.filter(|v| *v != facts::IMPORT_THREADS),
            data_dir: f.data_dir.clone().filter(|v| !v.is_empty() && v != facts::DATA_DIR),
            consistency: f.consistency.as_deref().filter(|v| !v.is_empty()).and_then(parse_enum::<Consistency>),
            import_mode: f
                .import_mode
                .as_deref()
                .filter(|v| !v.is_empty() && *v != facts::IMPORT_MODE)
                .and_then(parse_enum),
            pd_addr: f.pd_addr.clone().filter(|v| !v.is_empty()),
            security: f.security.as_ref().map(|s| {
                self.security(s, &format!("DM_TASK_{name}_IMPORT_SSL_KEY"), &format!("task `{name}` physical import"))
            }),
            ..Default::default()
        };
        if self.tracked(&address, FP_WRITE_ONLY) {
            lifecycle.ignore_changes.push("source_config.full_migrate_conf".into());
            self.warnings.push(format!(
                "task `{name}`: dm-apply recorded write-only full_migrate_conf fields (sorting_dir, disk_quota, \
                 checksum, analyze, range_concurrency, compress-kv-pairs, on_duplicate_physical) that DM never \
                 returns; `source_config.full_migrate_conf` is in lifecycle.ignore_changes so the plan does not \
                 replace the task. Restore those fields from your previous configuration, then remove the entry"
            ));
        }
        let i = t.source_config.incr_migrate_conf.clone().unwrap_or_default();
        let incr = IncrMigrateConfSpec {
            repl_threads: i.repl_threads.filter(|v| *v != facts::REPL_THREADS),
            repl_batch: i.repl_batch.filter(|v| *v != facts::REPL_BATCH),
            safe_mode: i.safe_mode.filter(|v| *v),
        };
        let mut source_conf: Vec<TaskSourceConfSpec> = t
            .source_config
            .source_conf
            .iter()
            .map(|s| TaskSourceConfSpec {
                source_name: s.source_name.clone(),
                binlog_name: s.binlog_name.clone().filter(|v| !v.is_empty()),
                binlog_pos: s.binlog_pos.filter(|p| *p != 0),
                binlog_gtid: s.binlog_gtid.clone().filter(|v| !v.is_empty()),
            })
            .collect();
        source_conf.sort_by(|a, b| a.source_name.cmp(&b.source_name));
        source_conf.dedup_by(|a, b| a.source_name == b.source_name);

        let tc = &t.target_config;
        let target_config = TargetConfigSpec {
            host: tc.host.clone(),
            port: tc.port,
            user: tc.user.clone(),
            password: self.target_password(t),
            security: tc.security.as_ref().map(|s| {
                self.security(s, &format!("DM_TARGET_{}_SSL_KEY", tc.user), &format!("target of task `{name}`"))
            }),
            session: tc.session.as_ref().and_then(|s| match s.foreign_key_checks.as_deref() {
                Some("0") => Some(TargetSessionSpec { foreign_key_checks: Some(ForeignKeyChecks::Off) }),
                Some("1") => Some(TargetSessionSpec { foreign_key_checks: Some(ForeignKeyChecks::On) }),
                _ => None,
            }),
        };

        let stage = self.stage(lt);
        let meta = t.meta_schema.clone().filter(|m| !m.is_empty() && m != facts::META_SCHEMA);
        Some(TaskSpec {
            name: name.clone(),
            task_mode,
            shard_mode: t.shard_mode.as_deref().filter(|s| !s.is_empty()).and_then(parse_enum),
            strict_optimistic_shard_mode: t.strict_optimistic_shard_mode.filter(|v| *v),
            meta_schema: meta,
            timezone: t.timezone.clone().filter(|v| !v.is_empty()),
            enhance_online_schema_change: (!t.enhance_online_schema_change).then_some(false),
            on_duplicate: Some(t.on_duplicate.as_str())
                .filter(|v| !v.is_empty() && *v != facts::ON_DUPLICATE)
                .and_then(parse_enum),
            ignore_checking_items: t.ignore_checking_items.clone().filter(|v| !v.is_empty()),
            target_config,
            binlog_filter_rule: defs,
            table_migrate_rule: rules,
            source_config: TaskSourceConfigSpec {
                full_migrate_conf: (full != FullMigrateConfSpec::default()).then_some(full),
                incr_migrate_conf: (incr != IncrMigrateConfSpec::default()).then_some(incr),
                source_conf,
            },
            stage,
            lifecycle,
            write_only_version: None,
            renamed_from: Default::default(),
        })
    }

    /// What DM stores for the task beyond what its OpenAPI shows (docs/dm-behaviour.md R11.5), when it was read:
    /// the imported configuration cannot carry it, so managing the task with dm-apply would drop it.
    fn legacy_warning(&mut self, name: &str) {
        let reads = &self.live.legacy;
        if !reads.consulted {
            return;
        }
        match reads.tasks.get(name) {
            Some(crate::legacy::LegacyRead::Read(subtasks)) => {
                let a = crate::legacy::assess(subtasks, None);
                if let Some(w) = crate::legacy::import_warning(name, &a) {
                    self.warnings.push(w);
                }
            }
            Some(crate::legacy::LegacyRead::Failed(why)) if reads.unserved.is_none() => {
                self.warnings.push(format!(
                    "task `{name}`: DM's full configuration could not be read ({why}); it may hold settings (set with \
                     dmctl) that DM's OpenAPI does not show and this file does not carry"
                ));
            }
            _ => {}
        }
    }

    /// `running` unless every subtask is idle (Paused/Stopped) without an error.
    fn stage(&mut self, lt: &LiveTask) -> DesiredStage {
        let name = &lt.task.name;
        let Some(st) = &lt.status else {
            self.warnings.push(format!("task `{name}`: status could not be read; imported as `stage: running`"));
            return DesiredStage::Running;
        };
        let idle: Vec<_> = st.iter().filter(|s| matches!(s.stage, Stage::Paused | Stage::Stopped)).collect();
        let erroneous: Vec<&str> = idle
            .iter()
            .filter(|s| s.error_msg.as_deref().is_some_and(|m| !m.trim().is_empty()))
            .map(|s| s.source_name.as_str())
            .collect();
        if idle.is_empty() {
            return DesiredStage::Running;
        }
        if !erroneous.is_empty() {
            self.warnings.push(format!(
                "task `{name}` is paused by an error on {}: imported as `stage: running`, so the plan shows a resume; \
                 fix the cause first",
                erroneous.join(", ")
            ));
            return DesiredStage::Running;
        }
        if idle.len() < st.len() {
            self.warnings.push(format!(
                "task `{name}` runs on some sources and is paused on others; imported as `stage: running`, so the plan \
                 shows a start"
            ));
            return DesiredStage::Running;
        }
        DesiredStage::Stopped
    }
}

/// A readable, unique name for an imported binlog filter: `ignore-<first event or "sql">`.
/// A stable name saying what the filter ignores: its events (up to three, then "and N more"), `sql` for SQL
/// patterns, e.g. `ignore-drop-database-drop-table-and-2-more`, `ignore-insert-sql`. `suffixes`: per base name, the
/// next suffix to try (the ones before it are taken), so many filters with the same base do not each probe every
/// taken suffix again.
fn filter_name(
    spec: &BinlogFilterRuleSpec,
    taken: &BTreeMap<String, BinlogFilterRuleSpec>,
    suffixes: &mut BTreeMap<String, u64>,
) -> String {
    let events = spec.ignore_event.as_deref().unwrap_or_default();
    let mut parts: Vec<String> = if events.len() <= 3 {
        events.to_vec()
    } else {
        vec![events[0].clone(), events[1].clone(), format!("and {} more", events.len() - 2)]
    };
    if spec.ignore_sql.is_some() {
        parts.push("sql".into());
    }
    if parts.is_empty() {
        parts.push("nothing".into());
    }
    let slug = |s: &str| {
        let mut o = String::new();
        for c in s.chars() {
            if c.is_ascii_alphanumeric() {
                o.push(c.to_ascii_lowercase());
            } else if !o.is_empty() && !o.ends_with('-') {
                o.push('-');
            }
        }
        o.trim_end_matches('-').to_owned()
    };
    let base = std::iter::once("ignore".to_owned())
        .chain(parts.iter().map(|p| slug(p)))
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    if !taken.contains_key(&base) {
        return base;
    }
    let n = suffixes.entry(base.clone()).or_insert(2);
    loop {
        let name = format!("{base}-{n}");
        *n += 1;
        if !taken.contains_key(&name) {
            return name;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dm::ServerVersion;
    use crate::dm::types::*;

    fn task(name: &str, pw: &str) -> Task {
        serde_json::from_value(serde_json::json!({
            "name": name, "task_mode": "all", "meta_schema": "dm-meta", "enhance_online_schema_change": true,
            "on_duplicate": "replace",
            "target_config": {"host": "tidb", "port": 4000, "user": "w", "password": pw,
                "security": {"ssl_ca_content": "CA", "ssl_cert_content": "CERT", "ssl_key_content": "KEY"}},
            "binlog_filter_rule": {
                "s1-filter-rule-0": {"ignore_event": ["drop table"]},
                "s1-filter-rule-1": {"ignore_sql": ["^ALTER"]},
                "s2-filter-rule-0": {"ignore_event": ["drop table"]}
            },
            "table_migrate_rule": [
                {"source": {"source_name": "s1", "schema": "b", "table": ""},
                 "binlog_filter_rule": ["s1-filter-rule-1", "s1-filter-rule-0"]},
                {"source": {"source_name": "s1", "schema": "a", "table": "t"}, "target": {"schema": "x", "table": ""},
                 "binlog_filter_rule": ["s1-filter-rule-0", "s1-filter-rule-1"]},
                {"source": {"source_name": "s1", "schema": "b", "table": ""}},
                {"source": {"source_name": "s2", "schema": "a", "table": "t"}, "binlog_filter_rule": ["s2-filter-rule-0"]},
                {"source": {"source_name": "gone", "schema": "z", "table": ""}}
            ],
            "source_config": {
                "full_migrate_conf": {"export_threads": 4, "import_threads": 32, "data_dir": "./dumped_data",
                                      "import_mode": "logical"},
                "incr_migrate_conf": {"repl_threads": 16, "repl_batch": 100, "safe_mode": false},
                "source_conf": [{"source_name": "s2"}, {"source_name": "s1"}]
            }
        }))
        .unwrap()
    }

    fn live() -> Live {
        let mut l = Live::empty("http://dm", ServerVersion::parse("v8.5.3"));
        let src: Source = serde_json::from_value(serde_json::json!({
            "source_name": "s1", "host": "h", "port": 3306, "user": "u", "password": "******", "enable": true,
            "enable_gtid": false, "flavor": "mysql",
            "security": {"ssl_ca_content": "", "ssl_cert_content": "", "ssl_key_content": "", "cert_allowed_cn": ["cn"]},
            "purge": {"interval": 3600, "expires": 0, "remain_space": 20},
            "relay_config": {"enable_relay": false, "relay_dir": "relay-dir"}
        }))
        .unwrap();
        l.sources.insert("s1".into(), src);
        let running = task("t-run", "pw1");
        let status = crate::plan::testing::status(&running, Stage::Running, Unit::Sync);
        l.tasks.insert("t-run".into(), LiveTask::new(running, Some(status)));
        let paused = task("t-paused", "pw2");
        let status = crate::plan::testing::status(&paused, Stage::Paused, Unit::Sync);
        l.tasks.insert("t-paused".into(), LiveTask::new(paused, Some(status)));
        let broken = task("t-error", "pw1");
        let mut status = crate::plan::testing::status(&broken, Stage::Paused, Unit::Sync);
        status[0].error_msg = Some("boom".into());
        l.tasks.insert("t-error".into(), LiveTask::new(broken, Some(status)));
        l
    }

    #[test]
    fn filter_names_take_the_next_free_suffix() {
        let spec = |e: &str| BinlogFilterRuleSpec { ignore_event: Some(vec![e.to_string()]), ignore_sql: None };
        let (mut taken, mut suffixes) = (BTreeMap::new(), BTreeMap::new());
        let mut names = vec![];
        for e in ["drop table", "drop-table", "x-3", "drop table!", "x", "x", "x"] {
            let n = filter_name(&spec(e), &taken, &mut suffixes);
            taken.insert(n.clone(), spec(e));
            names.push(n);
        }
        assert_eq!(
            names,
            [
                "ignore-drop-table",
                "ignore-drop-table-2",
                "ignore-x-3",
                "ignore-drop-table-3",
                "ignore-x",
                "ignore-x-2",
                "ignore-x-4"
            ]
        );
    }

    #[test]
    fn item_by_item_yaml_is_the_same_text() {
        let mut config = import(&live(), &ImportOptions::default()).unwrap().config;
        let mut second = config.sources[0].clone();
        second.source_name = "s-second".into();
        config.sources.push(second);
        config.external_sources.push("s-external".into());
        assert!(config.tasks.len() > 1);
        assert_eq!(yaml_by_item(&config), to_yaml(&config));
        let only_tasks = ConfigFile { sources: vec![], ..config.clone() };
        assert_eq!(yaml_by_item(&only_tasks), to_yaml(&only_tasks));
        assert_eq!(yaml_by_item(&ConfigFile::default()), to_yaml(&ConfigFile::default()));
    }

    #[test]
    fn maps_live_objects_back_leaving_defaults_out_and_secrets_behind() {
        let imp = import(&live(), &ImportOptions::default()).unwrap();
        let text = render(&imp, "http://dm", "s.json");
        for secret in ["pw1", "pw2", "KEY"] {
            assert!(!text.contains(&format!(": {secret}")), "{secret} written:\n{text}");
        }
        let s = &imp.config.sources[0];
        assert_eq!(s.password.as_ref().unwrap().expose(), "${env:DM_SOURCE_S1_PASSWORD}");
        assert_eq!(s.lifecycle.ignore_changes, ["password", "security"]);
        assert_eq!(s.flavor, None);
        assert_eq!(s.purge.as_ref().unwrap(), &PurgeSpec { remain_space: Some(20), ..Default::default() });
        assert_eq!(s.relay_config, None);
        let sec = s.security.as_ref().unwrap();
        assert_eq!(sec.ssl_ca_content, "${env:DM_SOURCE_S1_SSL_CA}");
        assert_eq!(sec.cert_allowed_cn.as_deref(), Some(&["cn".to_owned()][..]));

        let t = imp.config.tasks.iter().find(|t| t.name == "t-run").unwrap();
        assert_eq!(t.meta_schema.as_deref(), Some("dm-meta"));
        assert_eq!(t.on_duplicate, None);
        assert_eq!(t.enhance_online_schema_change, None);
        let full = t.source_config.full_migrate_conf.as_ref().unwrap();
        assert_eq!(full, &FullMigrateConfSpec { import_threads: Some(32), ..Default::default() });
        assert_eq!(t.source_config.incr_migrate_conf, None);
        let names: Vec<&str> = t.source_config.source_conf.iter().map(|s| s.source_name.as_str()).collect();
        assert_eq!(names, ["s1", "s2"]);
        // Rules: de-duplicated, sorted, the unknown source's dropped; an empty target table reads as absent.
        let keys: Vec<(String, String)> =
            t.table_migrate_rule.iter().map(|r| (r.source.source_name.clone(), r.source.schema.clone())).collect();
        assert_eq!(keys, [("s1".into(), "a".into()), ("s1".into(), "b".into()), ("s2".into(), "a".into())]);
        assert_eq!(t.table_migrate_rule[0].target.as_ref().unwrap().table, None);
        // Filters: server order by index, equal contents share a name, once per source on its first rule.
        assert_eq!(t.table_migrate_rule[0].binlog_filter_rule.as_deref().unwrap(), ["ignore-drop-table", "ignore-sql"]);
        assert_eq!(t.table_migrate_rule[1].binlog_filter_rule, None);
        let many = BinlogFilterRuleSpec {
            ignore_event: Some(
                ["drop database", "drop table", "truncate table", "drop index"].map(String::from).to_vec(),
            ),
            ignore_sql: Some(vec!["^X".into()]),
        };
        assert_eq!(
            filter_name(&many, &BTreeMap::new(), &mut BTreeMap::new()),
            "ignore-drop-database-drop-table-and-2-more-sql"
        );
        assert_eq!(t.table_migrate_rule[2].binlog_filter_rule.as_deref().unwrap(), ["ignore-drop-table"]);
        assert_eq!(t.binlog_filter_rule.len(), 2);
        assert!(imp.warnings.iter().any(|w| w.contains("first table rule")));
        // Target TLS: public parts kept, the key a placeholder.
        let tsec = t.target_config.security.as_ref().unwrap();
        assert_eq!((tsec.ssl_ca_content.as_str(), tsec.ssl_key_content.expose()), ("CA", "${env:DM_TARGET_W_SSL_KEY}"));
        // Same target user, different passwords: different variables; equal passwords share one.
        let pw =
            |n: &str| imp.config.tasks.iter().find(|t| t.name == n).unwrap().target_config.password.expose().to_owned();
        assert_eq!(pw("t-run"), pw("t-error"));
        assert_ne!(pw("t-run"), pw("t-paused"));
        // Stages.
        let stage = |n: &str| imp.config.tasks.iter().find(|t| t.name == n).unwrap().stage;
        assert_eq!(stage("t-run"), DesiredStage::Running);
        assert_eq!(stage("t-paused"), DesiredStage::Stopped);
        assert_eq!(stage("t-error"), DesiredStage::Running);
        assert!(imp.warnings.iter().any(|w| w.contains("paused by an error")));
        // The task's source not imported is external.
        assert_eq!(imp.config.external_sources, ["s2"]);
    }
}
