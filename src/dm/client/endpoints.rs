//! One method per DM-master operation used by dm-apply: path, query and body as DM wants them, and the shape of
//! the answer. Everything about sending and checking is in `transport.rs`; operations only tests use are in
//! `testkit.rs`.

use reqwest::Method;
use serde::Deserialize;

use super::transport::*;
use super::*;

impl DmClient {
    // ---------------------------------------------------------------------------------------------- version

    /// The server version from `GET /status` (plain text), detected once per client.
    pub async fn server_version(&self) -> Result<&ServerVersion, DmError> {
        self.version
            .get_or_try_init(|| async {
                let (answer, _) = self.call(Method::GET, "/status", &[], Body::None).await?;
                let text = String::from_utf8_lossy(&answer.body);
                let mut version = ServerVersion::parse_status(&text);
                // Shown in plans: bounded and printable whatever the server sent.
                version.raw = clean_text(&version.raw, 64);
                Ok(version)
            })
            .await
    }

    // ---------------------------------------------------------------------------------------------- sources

    pub async fn create_source(&self, source: &Source, worker_name: Option<&str>) -> Result<Source, DmError> {
        let req = CreateSourceRequest { source: source.clone(), worker_name: worker_name.map(str::to_string) };
        self.call_json(Method::POST, "/api/v1/sources", &[], json(&req), "a source").await
    }

    pub async fn list_sources(&self, with_status: bool, enable_relay: Option<bool>) -> Result<Vec<Source>, DmError> {
        let mut q = vec![];
        if with_status {
            q.push(("with_status", "true".to_string()));
        }
        if let Some(r) = enable_relay {
            q.push(("enable_relay", r.to_string()));
        }
        self.call_list("/api/v1/sources", &q, "a source list", false).await
    }

    /// `None` when the source does not exist (the server's 404 with an empty body).
    pub async fn get_source(&self, name: &str, with_status: bool) -> Result<Option<Source>, DmError> {
        let path = format!("/api/v1/sources/{}", seg(name));
        let q = if with_status { vec![("with_status", "true".to_string())] } else { vec![] };
        match self.call_json(Method::GET, &path, &q, Body::None, "a source").await {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.is_absent() || e.has_code(codes::SOURCE_NOT_EXIST) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// PUT keeps `source.source_name` and the path name equal (the body name decides what is written).
    /// Leave `password` as `None` to keep the stored one; never send the `******` read from a GET.
    pub async fn update_source(&self, source: &Source) -> Result<Source, DmError> {
        let path = format!("/api/v1/sources/{}", seg(&source.source_name));
        let req = UpdateSourceRequest { source: source.clone() };
        self.call_json(Method::PUT, &path, &[], json(&req), "a source").await
    }

    pub async fn delete_source(&self, name: &str, force: bool) -> Result<(), DmError> {
        let path = format!("/api/v1/sources/{}", seg(name));
        let q = if force { vec![("force", "true".to_string())] } else { vec![] };
        self.call_unit(Method::DELETE, &path, &q, Body::None).await
    }

    pub async fn source_status(&self, name: &str) -> Result<Vec<SourceStatus>, DmError> {
        let path = format!("/api/v1/sources/{}/status", seg(name));
        self.call_list(&path, &[], "a source status list", true).await
    }

    pub async fn enable_source(&self, name: &str) -> Result<(), DmError> {
        self.call_unit(Method::POST, &format!("/api/v1/sources/{}/enable", seg(name)), &[], Body::None).await
    }

    pub async fn disable_source(&self, name: &str) -> Result<(), DmError> {
        self.call_unit(Method::POST, &format!("/api/v1/sources/{}/disable", seg(name)), &[], Body::None).await
    }

    pub async fn transfer_source(&self, name: &str, worker_name: &str) -> Result<(), DmError> {
        let req = WorkerNameRequest { worker_name: worker_name.to_string() };
        self.call_unit(Method::POST, &format!("/api/v1/sources/{}/transfer", seg(name)), &[], json(&req)).await
    }

    /// With `None`, no body is sent, so v8.5.4+ does not inject a `relay_dir` (which would rewrite the source).
    pub async fn enable_relay(&self, name: &str, req: Option<&EnableRelayRequest>) -> Result<(), DmError> {
        let path = format!("/api/v1/sources/{}/relay/enable", seg(name));
        let body = match req {
            Some(r) => json(r),
            None => Body::None,
        };
        self.call_unit(Method::POST, &path, &[], body).await
    }

    pub async fn disable_relay(&self, name: &str, req: Option<&DisableRelayRequest>) -> Result<(), DmError> {
        let path = format!("/api/v1/sources/{}/relay/disable", seg(name));
        let body = match req {
            Some(r) => json(r),
            None => Body::None,
        };
        self.call_unit(Method::POST, &path, &[], body).await
    }

    pub async fn purge_relay(&self, name: &str, req: &PurgeRelayRequest) -> Result<(), DmError> {
        let path = format!("/api/v1/sources/{}/relay/purge", seg(name));
        self.call_unit(Method::POST, &path, &[], json(req)).await
    }

    pub async fn source_schemas(&self, name: &str) -> Result<Vec<String>, DmError> {
        let path = format!("/api/v1/sources/{}/schemas", seg(name));
        self.call_names(&path, "a schema name list").await
    }

    pub async fn source_tables(&self, name: &str, schema: &str) -> Result<Vec<String>, DmError> {
        let path = format!("/api/v1/sources/{}/schemas/{}", seg(name), seg(schema));
        self.call_names(&path, "a table name list").await
    }

    // ---------------------------------------------------------------------------------------------- tasks

    /// Creates the task in stage Stopped. Accepts the v6.1+ `{task, check_result}` answer and v6.0's bare task.
    pub async fn create_task(&self, task: &Task) -> Result<OperateTaskResponse, DmError> {
        let req = TaskRequest { task: task.clone() };
        let (answer, ctx) = self.call(Method::POST, "/api/v1/tasks", &[], json(&req)).await?;
        decode_operate(&ctx, &answer)
    }

    pub async fn list_tasks(
        &self,
        with_status: bool,
        stage: Option<&str>,
        source_name_list: &[String],
    ) -> Result<Vec<Task>, DmError> {
        let mut q = vec![];
        if with_status {
            q.push(("with_status", "true".to_string()));
        }
        if let Some(s) = stage {
            q.push(("stage", s.to_string()));
        }
        for s in source_name_list {
            q.push(("source_name_list", s.clone()));
        }
        self.call_list("/api/v1/tasks", &q, "a task list", false).await
    }

    /// `None` when the task does not exist (DM answers 400 with code 46018, not 404).
    pub async fn get_task(&self, name: &str, with_status: bool) -> Result<Option<Task>, DmError> {
        let path = format!("/api/v1/tasks/{}", seg(name));
        let q = if with_status { vec![("with_status", "true".to_string())] } else { vec![] };
        match self.call_json(Method::GET, &path, &q, Body::None, "a task").await {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.has_code(codes::TASK_NOT_EXIST) || e.is_absent() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The task must not be Running (46035); its source set cannot change (46034).
    pub async fn update_task(&self, task: &Task) -> Result<OperateTaskResponse, DmError> {
        let path = format!("/api/v1/tasks/{}", seg(&task.name));
        let req = TaskRequest { task: task.clone() };
        let (answer, ctx) = self.call(Method::PUT, &path, &[], json(&req)).await?;
        decode_operate(&ctx, &answer)
    }

    /// `keep_meta` is sent only when the server supports it (unreleased after v26.3.3); otherwise it is dropped
    /// and the checkpoints go with the task. Returns whether `keep_meta` was honoured.
    pub async fn delete_task(&self, name: &str, force: bool, keep_meta: bool) -> Result<bool, DmError> {
        let path = format!("/api/v1/tasks/{}", seg(name));
        let mut q = vec![];
        if force {
            q.push(("force", "true".to_string()));
        }
        let keep = keep_meta && self.server_version().await.map(|v| v.supports_keep_meta()).unwrap_or(false);
        if keep {
            q.push(("keep_meta", "true".to_string()));
        }
        self.call_unit(Method::DELETE, &path, &q, Body::None).await?;
        Ok(keep)
    }

    /// Status of every subtask (the server ignores `source_name_list` here).
    pub async fn task_status(&self, name: &str) -> Result<Vec<SubTaskStatus>, DmError> {
        let path = format!("/api/v1/tasks/{}/status", seg(name));
        self.call_list(&path, &[], "a subtask status list", false).await
    }

    /// Asynchronous: success means the expected stage was written, not that the task runs.
    pub async fn start_task(&self, name: &str, req: &StartTaskRequest) -> Result<(), DmError> {
        let path = format!("/api/v1/tasks/{}/start", seg(name));
        let body = if req.is_empty() { Body::None } else { json(req) };
        self.call_unit(Method::POST, &path, &[], body).await
    }

    /// Asynchronous; the worker shows a stopped task as `Paused`.
    pub async fn stop_task(&self, name: &str, req: &StopTaskRequest) -> Result<(), DmError> {
        let path = format!("/api/v1/tasks/{}/stop", seg(name));
        let body = if req.is_empty() { Body::None } else { json(req) };
        self.call_unit(Method::POST, &path, &[], body).await
    }

    pub async fn migrate_targets(
        &self,
        task: &str,
        source: &str,
        schema_pattern: Option<&str>,
        table_pattern: Option<&str>,
    ) -> Result<Vec<TaskMigrateTarget>, DmError> {
        let path = format!("/api/v1/tasks/{}/sources/{}/migrate_targets", seg(task), seg(source));
        let mut q = vec![];
        if let Some(p) = schema_pattern {
            q.push(("schema_pattern", p.to_string()));
        }
        if let Some(p) = table_pattern {
            q.push(("table_pattern", p.to_string()));
        }
        self.call_list(&path, &q, "a migrate target list", false).await
    }

    // ---------------------------------------------------------------------------------------------- legacy

    /// The full configuration DM stores for each subtask of a task, from the legacy endpoint
    /// `GET /apis/v1alpha1/subtasks/{name}` (docs/dm-behaviour.md R11.3), reduced to the settings dm-apply compares
    /// with DM's OpenAPI model. `None` when DM does not know the task.
    ///
    /// The answer holds plain-text passwords and TLS contents: it is decoded straight into
    /// [`crate::dm::legacy::LegacySubtask`], which keeps none of them, and no error built from it quotes it.
    pub async fn subtask_configs(&self, name: &str) -> Result<Option<Vec<crate::dm::legacy::LegacySubtask>>, DmError> {
        use crate::dm::legacy::{MAX_SUBTASKS, SubTaskCfgAnswer, parse_subtask};
        let path = format!("/apis/v1alpha1/subtasks/{}", seg(name));
        let (answer, ctx) = self.call(Method::GET, &path, &[], Body::None).await?;
        const EXPECTED: &str = "the subtask configurations of a task";
        let envelope: SubTaskCfgAnswer = decode(&ctx, &answer, Top::Object, EXPECTED)?;
        drop(answer);
        if !envelope.result {
            let msg = clean_text(envelope.msg.as_deref().unwrap_or(""), MAX_MESSAGE_CHARS);
            if msg == "task not found" {
                return Ok(None);
            }
            return Err(DmError::Api {
                method: "GET".into(),
                path,
                status: 200,
                code: None,
                message: msg,
                hint: None,
                absent: false,
            });
        }
        let docs = envelope.cfgs.unwrap_or_default();
        if docs.is_empty() || docs.len() > MAX_SUBTASKS {
            let detail = format!("{} subtask documents (expected 1 to {MAX_SUBTASKS})", docs.len());
            return Err(DmError::Decode { method: "GET".into(), path, status: 200, expected: EXPECTED, detail });
        }
        let mut out = Vec::with_capacity(docs.len());
        for (i, doc) in docs.into_iter().enumerate() {
            let parsed = parse_subtask(i + 1, &doc);
            drop(doc);
            match parsed {
                Ok(s) => out.push(s),
                Err(p) => {
                    return Err(DmError::Decode {
                        method: "GET".into(),
                        path,
                        status: 200,
                        expected: EXPECTED,
                        detail: p.to_string(),
                    });
                }
            }
        }
        Ok(Some(out))
    }

    /// `None` when the template does not exist (DM error 20051).
    pub async fn get_template(&self, name: &str) -> Result<Option<Task>, DmError> {
        let path = format!("/api/v1/tasks/templates/{}", seg(name));
        match self.call_json(Method::GET, &path, &[], Body::None, "a task template").await {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.has_code(codes::TEMPLATE_NOT_EXIST) || e.is_absent() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Fails with 20050 when it exists.
    pub async fn create_template(&self, task: &Task) -> Result<Task, DmError> {
        self.call_json(Method::POST, "/api/v1/tasks/templates", &[], json(task), "a task template").await
    }

    pub async fn update_template(&self, task: &Task) -> Result<Task, DmError> {
        let path = format!("/api/v1/tasks/templates/{}", seg(&task.name));
        self.call_json(Method::PUT, &path, &[], json(task), "a task template").await
    }

    /// 204 also when it does not exist.
    pub async fn delete_template(&self, name: &str) -> Result<(), DmError> {
        self.call_unit(Method::DELETE, &format!("/api/v1/tasks/templates/{}", seg(name)), &[], Body::None).await
    }

    pub async fn list_workers(&self) -> Result<Vec<ClusterWorker>, DmError> {
        self.call_list("/api/v1/cluster/workers", &[], "a worker list", false).await
    }

    /// Only the cluster id of `GET /cluster/info`: the topology (free-form JSON) is skipped, not built.
    pub async fn cluster_id(&self) -> Result<u64, DmError> {
        #[derive(Deserialize)]
        struct Id {
            cluster_id: u64,
        }
        let id: Id = self.call_json(Method::GET, "/api/v1/cluster/info", &[], Body::None, "the cluster info").await?;
        Ok(id.cluster_id)
    }
}
