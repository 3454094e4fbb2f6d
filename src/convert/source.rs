//! dmctl `source.yaml` (`SourceConfig`) → [`SourceSpec`] (docs/dm-behaviour.md §3, §11).

use serde_json::{Map, Value};

use super::{ConvertError, Cx, task};
use crate::config::model::{Flavor, PurgeSpec, RelayConfigSpec, SourceSpec};

pub(super) fn convert(cx: &mut Cx<'_>, root: &Map<String, Value>) -> Result<SourceSpec, ConvertError> {
    let name = cx.req_str(root, "", "source-id")?;
    if name.chars().count() > 32 {
        return Err(cx.invalid("/source-id", format!("source name `{name}` is longer than 32 characters (DM's limit)")));
    }
    let from = match root.get("from") {
        Some(Value::Object(m)) => m.clone(),
        _ => return Err(cx.invalid("/from", "`from` (the upstream's host, port, user, password) is required")),
    };
    let host = cx.req_str(&from, "/from", "host")?;
    let port = cx.port(&from, "/from")?;
    let user = cx.req_str(&from, "/from", "user")?;
    let password = cx.password(
        from.get("password"),
        "/from/password",
        &format!("source:{name}"),
        &format!("DM_SOURCE_{name}_PASSWORD"),
        &format!("password of source `{name}`"),
    );
    let security = match from.get("security") {
        Some(Value::Object(sec)) => {
            Some(cx.security(sec, "/from/security", &format!("DM_SOURCE_{name}_SSL_KEY"), &format!("source `{name}`")))
        }
        Some(Value::Null) | None => None,
        Some(_) => {
            cx.warn("/from/security", "`security` should be a mapping; not converted");
            None
        }
    };
    cx.leftovers(
        &from,
        "/from",
        &["host", "port", "user", "password", "security"],
        &|k| {
            Some(format!(
                "`from.{k}` is not representable in DM's OpenAPI source (only host, port, user, password and TLS are); not converted"
            ))
        },
        "from",
    );

    let flavor = match cx.opt_str(root, "", "flavor").map(|s| s.to_ascii_lowercase()) {
        None => None,
        Some(f) if f.is_empty() => None,
        Some(f) if f == "mysql" => Some(Flavor::Mysql),
        Some(f) if f == "mariadb" => Some(Flavor::Mariadb),
        Some(f) => {
            cx.warn("/flavor", format!("flavor `{f}` is not mysql or mariadb; left out (DM detects it)"));
            None
        }
    };

    let purge = match root.get("purge") {
        Some(Value::Object(p)) => {
            let spec = PurgeSpec {
                interval: cx.opt_i64(p, "/purge", "interval"),
                expires: cx.opt_i64(p, "/purge", "expires"),
                remain_space: cx.opt_i64(p, "/purge", "remain-space"),
            };
            cx.leftovers(p, "/purge", &["interval", "expires", "remain-space"], &|_| None, "purge");
            (spec != PurgeSpec::default()).then_some(spec)
        }
        None | Some(Value::Null) => None,
        Some(_) => {
            cx.warn("/purge", "`purge` should be a mapping; not converted");
            None
        }
    };

    // DM stores `enable_relay: true` when it creates the source and then fails the request (46030), leaving a
    // half-created source (docs/dm-behaviour.md §4): relay is enabled afterwards, not declared here.
    if cx.opt_bool(root, "", "enable-relay") == Some(true) {
        cx.warn(
            "/enable-relay",
            format!(
                "`enable-relay: true` is not copied: DM's OpenAPI fails to create a source with relay enabled (46030, \
                 after storing it). Once `dm-apply apply` has created source `{name}`, enable relay with `dmctl \
                 start-relay -s {name}` or `POST /api/v1/sources/{name}/relay/enable`"
            ),
        );
    }
    let relay = RelayConfigSpec {
        enable_relay: None,
        relay_binlog_name: cx.opt_str(root, "", "relay-binlog-name").filter(|s| !s.is_empty()),
        relay_binlog_gtid: cx.opt_str(root, "", "relay-binlog-gtid").filter(|s| !s.is_empty()),
        relay_dir: cx.opt_str(root, "", "relay-dir").filter(|s| !s.is_empty()),
    };
    let relay_config = (relay != RelayConfigSpec::default()).then_some(relay);

    let spec = SourceSpec {
        source_name: name.clone(),
        host,
        port,
        user,
        password,
        enable_gtid: cx.opt_bool(root, "", "enable-gtid").unwrap_or(false),
        enable: cx.opt_bool(root, "", "enable").unwrap_or(true),
        flavor,
        security,
        purge,
        relay_config,
        relay: None,
        worker_name: None,
        lifecycle: Default::default(),
        write_only_version: None,
    };

    filters(cx, root, &name);
    if root.get("case-sensitive") == Some(&Value::Bool(true)) {
        cx.warn(
            "/case-sensitive",
            "`case-sensitive` is not part of DM's OpenAPI source (DM reads the upstream's `lower_case_table_names`); \
             the tasks converted with this file are checked with it",
        );
    }
    cx.leftovers(
        root,
        "",
        &[
            "case-sensitive",
            "filters",
            "source-id",
            "from",
            "flavor",
            "purge",
            "enable-relay",
            "relay-binlog-name",
            "relay-binlog-gtid",
            "relay-dir",
            "enable-gtid",
            "enable",
        ],
        &explain,
        "source",
    );
    Ok(spec)
}

/// Source-level binlog filters: DM's worker adds them to every task of the source, after the task's own. DM's
/// OpenAPI source has none, so they are carried into the converted tasks that use the source instead.
fn filters(cx: &mut Cx<'_>, root: &Map<String, Value>, name: &str) {
    let Some(list) = root.get("filters") else { return };
    let Some(items) = list.as_array() else {
        if !list.is_null() {
            cx.warn("/filters", "`filters` should be a list of binlog filter rules; not converted");
        }
        return;
    };
    let mut carried = Vec::new();
    for (i, f) in items.iter().enumerate() {
        let ptr = format!("/filters/{i}");
        let Some(obj) = f.as_object() else {
            cx.warn(&ptr, "a binlog filter rule must be a mapping; not converted");
            continue;
        };
        let fname = format!("{name}-source-filter-{}", i + 1);
        if let Some(mut fi) = task::read_filter(cx, &fname, obj, &ptr, true) {
            fi.ptr = cx.elsewhere(&ptr);
            carried.push(fi);
        }
    }
    if !carried.is_empty() {
        cx.warn(
            "/filters",
            format!(
                "source-level binlog filters are not part of DM's OpenAPI source: they are added to the filters of \
                 every converted task that uses source `{name}` (as `{name}-source-filter-N`, after the task's own, \
                 as DM's worker does); tasks created later for this source do not get them"
            ),
        );
        cx.shared.source_filters.insert(name.to_owned(), carried);
    }
}

fn explain(key: &str) -> Option<String> {
    let why = match key {
        "server-id" => "DM's OpenAPI picks a random server-id",
        "checker" => "the source checker settings are not exposed by DM's OpenAPI",
        "auto-fix-gtid" | "meta-dir" | "charset" | "tracer" | "rpl-schema" | "log-level" | "log-file" => {
            "not exposed by DM's OpenAPI source"
        }
        _ => return None,
    };
    Some(format!("`{key}` is not representable: {why}; not converted"))
}
