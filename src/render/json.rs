//! JSON plan (`-o json`), versioned by `format_version` (minor: additive, major: breaking). See docs/plan.md.

use serde_json::{Value, json};

use crate::plan::{Plan, PlanProblem, ResourceChange};

fn change(c: &ResourceChange) -> Value {
    let mut v = json!({
        "address": c.address,
        "type": c.address.kind,
        "name": c.address.name,
        "actions": c.actions(),
        "reasons": c.reasons,
        "impact": {
            "kind": serde_json::to_value(&c.impact).ok().and_then(|v| v.get("kind").cloned()),
            "description": c.describe_impact(),
            "details": c.impact,
        },
        "change": {
            "before": c.before,
            "after": c.after,
            "attributes": c.attributes,
            "unchanged_attributes": c.unchanged_attributes,
        },
        "send_password": c.send_password,
        "desired_stage": c.desired_stage,
        "observed": c.observed,
        "depends_on": c.depends_on,
        "live_digest": c.live_digest,
        "origin": c.origin.as_ref().map(|o| format!("{}:{}", o.file, o.line)),
        "hold": c.hold,
    });
    // Relay and binding operations of a source (format 1.2), only where there are some.
    if let Some(m) = v.as_object_mut() {
        if let Some(r) = &c.relay {
            m.insert("relay".into(), json!(r));
        }
        if let Some(b) = &c.binding {
            m.insert("binding".into(), json!(b));
        }
    }
    v
}

/// The JSON document. `errors` are the problems that refused the plan (empty when it is valid).
pub fn render_value(plan: &Plan, errors: &[PlanProblem]) -> Value {
    let s = plan.summary();
    json!({
        "format_version": plan.format_version,
        "dm_apply_version": env!("CARGO_PKG_VERSION"),
        "cluster": plan.cluster,
        "has_changes": plan.has_changes(),
        "has_actionable_changes": plan.has_actionable_changes(),
        "summary": {
            "add": s.add, "change": s.change, "destroy": s.destroy, "deferred": s.deferred, "blocked": s.blocked,
        },
        "resource_changes": plan.changes.iter().filter(|c| !c.is_noop()).map(change).collect::<Vec<_>>(),
        "unmanaged": plan.unmanaged,
        "warnings": plan.warnings,
        "notes": plan.notes,
        "targets": plan.targets,
        "prune": plan.prune,
        "errors": errors.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
        "preview": super::preview::json(plan),
    })
}

pub fn render(plan: &Plan, errors: &[PlanProblem]) -> String {
    let mut s = serde_json::to_string_pretty(&render_value(plan, errors)).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}
