//! DM-master operations only the tests and the benchmark use (schema lists of a task, table structures, the
//! task converter, templates listed or deleted, cluster members taken offline, cluster info). Built in tests and
//! debug builds, and in release only with the `testkit` feature (Cargo.toml), so the release library does not
//! ship them.

use reqwest::Method;

use super::transport::*;
use super::*;

impl DmClient {
    pub async fn task_source_schemas(&self, task: &str, source: &str) -> Result<Vec<String>, DmError> {
        let path = format!("/api/v1/tasks/{}/sources/{}/schemas", seg(task), seg(source));
        self.call_names(&path, "a schema name list").await
    }

    pub async fn task_source_tables(&self, task: &str, source: &str, schema: &str) -> Result<Vec<String>, DmError> {
        let path = format!("/api/v1/tasks/{}/sources/{}/schemas/{}", seg(task), seg(source), seg(schema));
        self.call_names(&path, "a table name list").await
    }

    pub async fn get_table_structure(
        &self,
        task: &str,
        source: &str,
        schema: &str,
        table: &str,
    ) -> Result<TableStructure, DmError> {
        let path =
            format!("/api/v1/tasks/{}/sources/{}/schemas/{}/{}", seg(task), seg(source), seg(schema), seg(table));
        self.call_json(Method::GET, &path, &[], Body::None, "a table structure").await
    }

    pub async fn put_table_structure(
        &self,
        task: &str,
        source: &str,
        schema: &str,
        table: &str,
        req: &OperateTableStructureRequest,
    ) -> Result<(), DmError> {
        let path =
            format!("/api/v1/tasks/{}/sources/{}/schemas/{}/{}", seg(task), seg(source), seg(schema), seg(table));
        self.call_unit(Method::PUT, &path, &[], json(req)).await
    }

    pub async fn delete_table_structure(
        &self,
        task: &str,
        source: &str,
        schema: &str,
        table: &str,
    ) -> Result<(), DmError> {
        let path =
            format!("/api/v1/tasks/{}/sources/{}/schemas/{}/{}", seg(task), seg(source), seg(schema), seg(table));
        self.call_unit(Method::DELETE, &path, &[], Body::None).await
    }

    /// dmctl task.yaml ⇄ OpenAPI task conversion done by the server (answers 200, not the spec's 201).
    pub async fn convert_task(&self, req: &ConverterTaskRequest) -> Result<ConverterTaskResponse, DmError> {
        self.call_json(Method::POST, "/api/v1/tasks/converters", &[], json(req), "a task conversion").await
    }

    // ---------------------------------------------------------------------------------------------- templates

    /// Task templates only store `Task` JSON in etcd; they never create tasks. dm-apply keeps its small state
    /// record (secret fingerprints) in one of them, so the record lives with the cluster, not on a CI runner.
    pub async fn list_templates(&self) -> Result<Vec<Task>, DmError> {
        self.call_list("/api/v1/tasks/templates", &[], "a task template list", false).await
    }

    // ---------------------------------------------------------------------------------------------- cluster

    pub async fn list_masters(&self) -> Result<Vec<ClusterMaster>, DmError> {
        self.call_list("/api/v1/cluster/masters", &[], "a master list", false).await
    }

    pub async fn offline_master(&self, name: &str) -> Result<(), DmError> {
        self.call_unit(Method::DELETE, &format!("/api/v1/cluster/masters/{}", seg(name)), &[], Body::None).await
    }

    /// The worker must be offline (46005).
    pub async fn offline_worker(&self, name: &str) -> Result<(), DmError> {
        self.call_unit(Method::DELETE, &format!("/api/v1/cluster/workers/{}", seg(name)), &[], Body::None).await
    }

    pub async fn cluster_info(&self) -> Result<ClusterInfo, DmError> {
        self.call_json(Method::GET, "/api/v1/cluster/info", &[], Body::None, "the cluster info").await
    }

    /// The request body is the `ClusterTopology` (the spec's `requestBody`), i.e. `info.topology`, not the whole
    /// `{cluster_id, topology}` answer shape; `cluster_id` cannot be set.
    pub async fn update_cluster_info(&self, info: &ClusterInfo) -> Result<ClusterInfo, DmError> {
        let topology = info.topology.clone().unwrap_or_else(|| serde_json::json!({}));
        self.call_json(Method::PUT, "/api/v1/cluster/info", &[], json(&topology), "the cluster info").await
    }
}
