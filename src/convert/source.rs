//! dmctl `source.yaml` (`SourceConfig`) → [`SourceSpec`] (semantics §7, second table).

use serde_json::{Map, Value};

use super::{ConvertError, Cx};
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

    let relay = RelayConfigSpec {
        enable_relay: cx.opt_bool(root, "", "enable-relay"),
        relay_binlog_name: cx.opt_str(root, "", "relay-binlog-name").filter(|s| !s.is_empty()),
        relay_binlog_gtid: cx.opt_str(root, "", "relay-binlog-gtid").filter(|s| !s.is_empty()),
        relay_dir: cx.opt_str(root, "", "relay-dir").filter(|s| !s.is_empty()),
    };
    let relay_config = (relay != RelayConfigSpec::default()).then_some(relay);

    let spec = SourceSpec {
        source_name: name,
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
        lifecycle: Default::default(),
        write_only_version: None,
    };

    cx.leftovers(
        root,
        "",
        &[
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

fn explain(key: &str) -> Option<String> {
    let why = match key {
        "server-id" => "DM's OpenAPI picks a random server-id",
        "case-sensitive" => "DM's OpenAPI detects case sensitivity from the upstream's `lower_case_table_names`",
        "checker" => "the source checker settings are not exposed by DM's OpenAPI",
        "filters" => "source-level binlog filters are not exposed by DM's OpenAPI (use task binlog_filter_rule)",
        "auto-fix-gtid" | "meta-dir" | "charset" | "tracer" | "rpl-schema" | "log-level" | "log-file" => {
            "not exposed by DM's OpenAPI source"
        }
        _ => return None,
    };
    Some(format!("`{key}` is not representable: {why}; not converted"))
}
