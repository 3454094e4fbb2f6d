//! The request validator DM-master runs before every handler (kin-openapi behind `OapiRequestValidator`,
//! docs/dm-behaviour.md §2), re-stated by hand for the request bodies the embedded spec of each generation
//! declares: required properties, types, enums, `additionalProperties: false` on `TaskTargetSession`, and, from
//! v8.5.4 on (kin-openapi ≥ v0.95), the injection of spec `default:` values into the body (absent or null)
//! before the required check. kin-openapi v0.80 (v8.5.0–v8.5.3) words its messages differently.
//!
//! Failures are answered `400 {"error": "..."}`, never with `{error_msg, error_code}`.

use serde_json::{Map, Value, json};

use super::Generation;

#[derive(Debug, Clone)]
pub enum S {
    Obj(Obj),
    Str(Option<Vec<&'static str>>),
    Int,
    Bool,
    Arr(Box<S>),
    /// An object whose values all have one schema (`additionalProperties: {schema}`).
    Map(Box<S>),
}

#[derive(Debug, Clone)]
pub struct Prop {
    name: &'static str,
    schema: S,
    default: Option<Value>,
    nullable: bool,
}

#[derive(Debug, Clone)]
pub struct Obj {
    props: Vec<Prop>,
    required: Vec<&'static str>,
    /// `additionalProperties: false`.
    closed: bool,
}

fn p(name: &'static str, schema: S) -> Prop {
    Prop { name, schema, default: None, nullable: false }
}

impl Prop {
    fn d(mut self, v: Value) -> Self {
        self.default = Some(v);
        self
    }
    fn null(mut self) -> Self {
        self.nullable = true;
        self
    }
}

fn obj(props: Vec<Prop>, required: &[&'static str]) -> S {
    S::Obj(Obj { props, required: required.to_vec(), closed: false })
}

fn str_() -> S {
    S::Str(None)
}

fn en(vals: &[&'static str]) -> S {
    S::Str(Some(vals.to_vec()))
}

fn arr(s: S) -> S {
    S::Arr(Box::new(s))
}

fn security() -> S {
    obj(
        vec![
            p("ssl_ca_content", str_()),
            p("ssl_cert_content", str_()),
            p("ssl_key_content", str_()),
            p("cert_allowed_cn", arr(str_())),
        ],
        &["ssl_ca_content", "ssl_cert_content", "ssl_key_content"],
    )
}

pub fn source() -> S {
    obj(
        vec![
            p("source_name", str_()),
            p("host", str_()),
            p("port", S::Int),
            p("user", str_()),
            p("password", str_()).null(),
            p("enable_gtid", S::Bool).d(json!(false)),
            p("enable", S::Bool).d(json!(false)),
            p("flavor", str_()),
            p("task_name_list", arr(str_())),
            p("security", security()).null(),
            p(
                "purge",
                obj(
                    vec![
                        p("interval", S::Int).d(json!(crate::dm::facts::PURGE_INTERVAL)).null(),
                        p("expires", S::Int).d(json!(crate::dm::facts::PURGE_EXPIRES)).null(),
                        p("remain_space", S::Int).d(json!(crate::dm::facts::PURGE_REMAIN_SPACE)).null(),
                    ],
                    &[],
                ),
            ),
            p("status_list", arr(obj(vec![p("source_name", str_()), p("worker_name", str_())], &[]))),
            p(
                "relay_config",
                obj(
                    vec![
                        p("enable_relay", S::Bool),
                        p("relay_binlog_name", str_()).null(),
                        p("relay_binlog_gtid", str_()).null(),
                        p("relay_dir", str_()).d(json!(crate::dm::facts::RELAY_DIR_INJECTED)).null(),
                    ],
                    &[],
                ),
            ),
        ],
        &["source_name", "host", "port", "user", "enable_gtid", "enable"],
    )
}

/// The `Task` schema of the generation's embedded spec (docs/dm-behaviour.md §15): `dump`/`load` and `import-into` from
/// v26.3, `full_migrate_conf.security` from v26.3, `timezone`, `target_config.session` and `safe_mode` on HEAD.
pub fn task(g: Generation) -> S {
    let head = g.head();
    let v26 = g.v26();
    let modes: &[&str] =
        if v26 { &["full", "incremental", "all", "dump", "load"] } else { &["full", "incremental", "all"] };
    let import_modes: &[&str] = if v26 { &["logical", "physical", "import-into"] } else { &["logical", "physical"] };
    let session = S::Obj(Obj { props: vec![p("foreign_key_checks", en(&["0", "1"]))], required: vec![], closed: true });
    let mut target_props = vec![
        p("host", str_()),
        p("port", S::Int),
        p("user", str_()),
        p("password", str_()),
        p("security", security()).null(),
    ];
    if head {
        target_props.push(p("session", session));
    }
    let mut full = vec![
        p("export_threads", S::Int).d(json!(crate::dm::facts::EXPORT_THREADS)),
        p("import_threads", S::Int).d(json!(crate::dm::facts::IMPORT_THREADS)),
        p("data_dir", str_()),
        p("consistency", str_()),
        p("import_mode", en(import_modes)),
        p("sorting_dir", str_()),
        p("disk_quota", str_()),
        p("checksum", en(&["required", "optional", "off"])),
        p("analyze", en(&["required", "optional", "off"])),
        p("range_concurrency", S::Int).d(json!(crate::dm::facts::RANGE_CONCURRENCY)),
        p("compress-kv-pairs", str_()),
        p("pd_addr", str_()),
        p("on_duplicate_logical", en(&["replace", "error", "ignore"])),
        p("on_duplicate_physical", en(&["none", "manual"])),
    ];
    if v26 {
        full.push(p("security", security()).null());
    }
    let mut incr = vec![
        p("repl_threads", S::Int).d(json!(crate::dm::facts::REPL_THREADS)),
        p("repl_batch", S::Int).d(json!(crate::dm::facts::REPL_BATCH)),
    ];
    if head {
        incr.push(p("safe_mode", S::Bool).d(json!(false)));
    }
    let mut props = vec![
        p("name", str_()),
        p("task_mode", en(modes)),
        p("shard_mode", en(&["pessimistic", "optimistic"])),
        p("strict_optimistic_shard_mode", S::Bool).d(json!(false)),
        p("meta_schema", str_()).d(json!(crate::dm::facts::META_SCHEMA_INJECTED)),
        p("enhance_online_schema_change", S::Bool).d(json!(true)),
        p("on_duplicate", en(&["replace", "error", "ignore"])),
        p("target_config", obj(target_props, &["host", "port", "user", "password"])),
        p(
            "binlog_filter_rule",
            S::Map(Box::new(obj(vec![p("ignore_event", arr(str_())), p("ignore_sql", arr(str_()))], &[]))),
        ),
        p(
            "table_migrate_rule",
            arr(obj(
                vec![
                    p(
                        "source",
                        obj(
                            vec![p("source_name", str_()), p("schema", str_()), p("table", str_())],
                            &["source_name", "schema", "table"],
                        ),
                    ),
                    p("target", obj(vec![p("schema", str_()), p("table", str_())], &[])),
                    p("binlog_filter_rule", arr(str_())),
                ],
                &["source"],
            )),
        ),
        p(
            "source_config",
            obj(
                vec![
                    p("full_migrate_conf", obj(full, &[])),
                    p("incr_migrate_conf", obj(incr, &[])),
                    p(
                        "source_conf",
                        arr(obj(
                            vec![
                                p("source_name", str_()),
                                p("binlog_name", str_()),
                                p("binlog_pos", S::Int),
                                p("binlog_gtid", str_()),
                            ],
                            &["source_name"],
                        )),
                    ),
                ],
                &["source_conf"],
            ),
        ),
        p("status_list", arr(obj(vec![], &[]))),
        p("ignore_checking_items", arr(str_())),
    ];
    if head {
        props.insert(5, p("timezone", str_()));
    }
    obj(
        props,
        &[
            "name",
            "task_mode",
            "enhance_online_schema_change",
            "on_duplicate",
            "target_config",
            "table_migrate_rule",
            "source_config",
        ],
    )
}

/// A named request-body schema (the name shows in validation messages like kin-openapi's).
pub struct BodySchema {
    pub name: &'static str,
    pub schema: S,
    /// `requestBody.required: true` in the spec.
    pub required: bool,
}

pub fn create_source() -> BodySchema {
    BodySchema {
        name: "CreateSourceRequest",
        schema: obj(vec![p("source", source()), p("worker_name", str_())], &["source"]),
        required: false,
    }
}

pub fn update_source() -> BodySchema {
    BodySchema { name: "UpdateSourceRequest", schema: obj(vec![p("source", source())], &["source"]), required: true }
}

pub fn worker_name() -> BodySchema {
    BodySchema {
        name: "WorkerNameRequest",
        schema: obj(vec![p("worker_name", str_())], &["worker_name"]),
        required: true,
    }
}

pub fn enable_relay() -> BodySchema {
    BodySchema {
        name: "EnableRelayRequest",
        schema: obj(
            vec![
                p("worker_name_list", arr(str_())),
                p("relay_binlog_name", str_()).null(),
                p("relay_binlog_gtid", str_()).null(),
                p("relay_dir", str_()).d(json!(crate::dm::facts::RELAY_DIR_INJECTED)).null(),
            ],
            &[],
        ),
        required: false,
    }
}

pub fn disable_relay() -> BodySchema {
    BodySchema {
        name: "DisableRelayRequest",
        schema: obj(vec![p("worker_name_list", arr(str_()))], &[]),
        required: false,
    }
}

pub fn purge_relay() -> BodySchema {
    BodySchema {
        name: "PurgeRelayRequest",
        schema: obj(vec![p("relay_binlog_name", str_()), p("relay_dir", str_()).null()], &["relay_binlog_name"]),
        required: true,
    }
}

pub fn create_task(g: Generation) -> BodySchema {
    BodySchema { name: "CreateTaskRequest", schema: obj(vec![p("task", task(g))], &["task"]), required: false }
}

pub fn update_task(g: Generation) -> BodySchema {
    BodySchema { name: "UpdateTaskRequest", schema: obj(vec![p("task", task(g))], &["task"]), required: false }
}

pub fn start_task() -> BodySchema {
    BodySchema {
        name: "StartTaskRequest",
        schema: obj(
            vec![
                p("remove_meta", S::Bool).d(json!(false)),
                p("source_name_list", arr(str_())),
                p("start_time", str_()),
                p("safe_mode_time_duration", str_()),
            ],
            &[],
        ),
        required: false,
    }
}

pub fn stop_task() -> BodySchema {
    BodySchema {
        name: "StopTaskRequest",
        schema: obj(vec![p("timeout_duration", str_()), p("source_name_list", arr(str_()))], &[]),
        required: false,
    }
}

/// Before HEAD: `sql_content` required, no `schema_source`, and `sync` without a default (docs/dm-behaviour.md §13).
pub fn table_structure(g: Generation) -> BodySchema {
    let schema = if g.head() {
        obj(
            vec![
                p("schema_source", en(&["sql", "upstream", "downstream"])).d(json!("sql")),
                p("sql_content", str_()),
                p("flush", S::Bool).d(json!(true)),
                p("sync", S::Bool).d(json!(true)),
            ],
            &[],
        )
    } else {
        obj(vec![p("sql_content", str_()), p("flush", S::Bool).d(json!(true)), p("sync", S::Bool)], &["sql_content"])
    };
    BodySchema { name: "OperateTaskTableStructureRequest", schema, required: true }
}

pub fn converter(g: Generation) -> BodySchema {
    BodySchema {
        name: "ConverterTaskRequest",
        schema: obj(vec![p("task", task(g)), p("task_config_file", str_())], &[]),
        required: false,
    }
}

pub fn template(g: Generation) -> BodySchema {
    BodySchema { name: "Task", schema: task(g), required: false }
}

pub fn template_import() -> BodySchema {
    BodySchema {
        name: "TaskTemplateRequest",
        schema: obj(vec![p("overwrite", S::Bool).d(json!(false))], &["overwrite"]),
        required: false,
    }
}

pub fn cluster_topology() -> BodySchema {
    let hp = |named: bool| {
        let mut v = vec![p("host", str_()), p("port", S::Int)];
        let mut req = vec!["host", "port"];
        if named {
            v.insert(0, p("name", str_()));
            req.insert(0, "name");
        }
        S::Obj(Obj { props: v, required: req, closed: false })
    };
    BodySchema {
        name: "ClusterTopology",
        schema: obj(
            vec![
                p("master_topology_list", arr(hp(true))),
                p("worker_topology_list", arr(hp(true))),
                p("grafana_topology", hp(false)),
                p("prometheus_topology", hp(false)),
                p("alert_manager_topology", hp(false)),
            ],
            &[],
        ),
        required: false,
    }
}

/// kin-openapi's wording: v0.80 on v8.5.0–v8.5.3, v0.131+ later.
#[derive(Debug, Clone, Copy)]
struct Words {
    old: bool,
}

impl Words {
    fn not_allowed(self, allowed: &[&str]) -> String {
        if self.old {
            return "value is not one of the allowed values".into();
        }
        let list: Vec<String> = allowed.iter().map(|a| format!("{a:?}")).collect();
        format!("value is not one of the allowed values [{}]", list.join(","))
    }

    fn wrong_type(self, ty: &str) -> String {
        if self.old {
            return format!("Field must be set to {ty} or not be present");
        }
        let a = if matches!(ty, "array" | "object" | "integer") { "an" } else { "a" };
        format!("value must be {a} {ty}")
    }

    fn not_integer(self) -> String {
        if self.old { "Value must be an integer".into() } else { "value must be an integer".into() }
    }
}

/// Validate (and from v8.5.4, fill defaults into) a decoded body. The error is kin-openapi's message, first line
/// only, as `OapiRequestValidator` keeps it.
pub fn validate(body: &mut Value, bs: &BodySchema, g: Generation) -> Result<(), String> {
    let words = Words { old: !g.injects_defaults() };
    check(body, &bs.schema, "", g.injects_defaults(), words).map_err(|(at, why)| {
        let reason = if words.old {
            "doesn't match the schema".to_string()
        } else {
            format!("doesn't match schema #/components/schemas/{}", bs.name)
        };
        let at = if at.is_empty() { String::new() } else { format!("Error at \"{at}\": ") };
        format!("error in openapi3filter.RequestError: request body has an error: {reason}: {at}{why}")
    })
}

fn check(v: &mut Value, s: &S, at: &str, inject: bool, w: Words) -> Result<(), (String, String)> {
    let fail = |why: String| Err((at.to_string(), why));
    match s {
        S::Str(allowed) => match v {
            Value::String(x) => {
                if let Some(allowed) = allowed
                    && !allowed.contains(&x.as_str())
                {
                    return fail(w.not_allowed(allowed));
                }
                Ok(())
            }
            _ => fail(w.wrong_type("string")),
        },
        S::Int => match v {
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(()),
            Value::Number(_) => fail(w.not_integer()),
            _ => fail(w.wrong_type("integer")),
        },
        S::Bool => match v {
            Value::Bool(_) => Ok(()),
            _ => fail(w.wrong_type("boolean")),
        },
        S::Arr(item) => match v {
            Value::Array(items) => {
                for (i, it) in items.iter_mut().enumerate() {
                    check(it, item, &format!("{at}/{i}"), inject, w)?;
                }
                Ok(())
            }
            _ => fail(w.wrong_type("array")),
        },
        S::Map(item) => match v {
            Value::Object(m) => {
                for (k, it) in m.iter_mut() {
                    check(it, item, &format!("{at}/{k}"), inject, w)?;
                }
                Ok(())
            }
            _ => fail(w.wrong_type("object")),
        },
        S::Obj(o) => match v {
            Value::Object(m) => check_obj(m, o, at, inject, w),
            _ => fail(w.wrong_type("object")),
        },
    }
}

fn check_obj(m: &mut Map<String, Value>, o: &Obj, at: &str, inject: bool, w: Words) -> Result<(), (String, String)> {
    if inject {
        for prop in &o.props {
            if let Some(d) = &prop.default
                && m.get(prop.name).is_none_or(Value::is_null)
            {
                m.insert(prop.name.to_string(), d.clone());
            }
        }
    }
    // The missing key is part of the reported path (`markSchemaErrorKey`).
    for r in &o.required {
        if !m.contains_key(*r) {
            return Err((format!("{at}/{r}"), format!("property \"{r}\" is missing")));
        }
    }
    if o.closed
        && let Some(k) = m.keys().find(|k| !o.props.iter().any(|p| p.name == k.as_str()))
    {
        return Err((format!("{at}/{k}"), format!("property \"{k}\" is unsupported")));
    }
    for prop in &o.props {
        let here = format!("{at}/{}", prop.name);
        match m.get_mut(prop.name) {
            None => {}
            Some(Value::Null)
                if prop.nullable
                    || matches!(prop.schema, S::Obj(ref x) if x.props.iter().any(|p| p.name == "ssl_ca_content")) => {}
            Some(Value::Null) => return Err((here, "Value is not nullable".into())),
            Some(v) => check(v, &prop.schema, &here, inject, w)?,
        }
    }
    Ok(())
}

/// kin-openapi's check of a boolean query parameter (Go `strconv.ParseBool`).
pub fn parse_bool_param(name: &str, v: &str) -> Result<bool, String> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!(
            "error in openapi3filter.RequestError: parameter \"{name}\" in query has an error: value {v}: an invalid boolean: invalid syntax"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_injects_defaults_v85_requires() {
        let mut b = json!({"source": {"source_name": "a", "host": "h", "port": 3306, "user": "u"}});
        let err = validate(&mut b.clone(), &create_source(), Generation::V853).unwrap_err();
        assert!(
            err.contains("property \"enable_gtid\" is missing") || err.contains("property \"enable\" is missing"),
            "{err}"
        );
        validate(&mut b, &create_source(), Generation::Head).unwrap();
        assert_eq!(b["source"]["enable"], json!(false));
    }

    #[test]
    fn session_is_closed_and_enums_checked() {
        let mut t = json!({"task": {"name": "t", "task_mode": "all", "on_duplicate": "overwrite",
            "enhance_online_schema_change": true, "target_config": {"host": "h", "port": 4000, "user": "u", "password": ""},
            "table_migrate_rule": [], "source_config": {"source_conf": []}}});
        let err = validate(&mut t, &create_task(Generation::Head), Generation::Head).unwrap_err();
        assert!(err.contains("allowed values"), "{err}");
        t["task"]["on_duplicate"] = json!("replace");
        t["task"]["target_config"]["session"] = json!({"sql_mode": "x"});
        let err = validate(&mut t, &create_task(Generation::Head), Generation::Head).unwrap_err();
        assert!(err.contains("unsupported"), "{err}");
    }

    #[test]
    fn bool_params() {
        assert!(parse_bool_param("force", "true").unwrap());
        assert!(parse_bool_param("force", "yes").unwrap_err().contains("invalid boolean"));
    }
}
