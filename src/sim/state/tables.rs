//! What a task's subtasks report through their worker: schema and table lists, table structures, migrate
//! targets, and the task converter (docs/dm-behaviour.md §13).

use super::*;

impl State {
    /// The checks of the table-structure and migrate-target endpoints: they call the bound worker.
    /// They ask the source's bound worker (40070 when there is none, unknown sources included), whose answer
    /// errors come back as 49001 around the worker's own error: the subtask must exist (40054), be in the Sync
    /// unit (40056) and be Paused (40051); listing migrate targets also accepts Running (docs/dm-behaviour.md §13).
    pub(super) fn worker_subtask(&self, task: &str, source: &str) -> Result<&SubTask, SimError> {
        self.worker_subtask_in(task, source, &[Stage::Paused])
    }

    pub(super) fn worker_subtask_in(&self, task: &str, source: &str, stages: &[Stage]) -> Result<&SubTask, SimError> {
        if self.bound_worker(source).is_none() {
            return Err(e::worker_no_start());
        }
        let worker_err = |code: i64, msg: String| e::openapi(SimError::new(code, msg).error_msg());
        let sub = self
            .tasks
            .get(task)
            .and_then(|t| t.subtasks.get(source))
            .ok_or_else(|| worker_err(40054, format!("sub task with name {task} not found")))?;
        if !stages.contains(&sub.observed) {
            return Err(worker_err(
                40051,
                format!("current stage is {} but not paused, invalid", sub.observed.as_str()),
            ));
        }
        if sub.unit != Unit::Sync {
            return Err(worker_err(
                40056,
                format!(
                    "such operation is only available for syncer, but now syncer is not running. current unit is {}",
                    sub.unit
                ),
            ));
        }
        Ok(sub)
    }

    /// (schema, table) pairs of the source's upstream the subtask migrates.
    pub(super) fn migrated_tables(&self, task: &str, source: &str) -> Result<Vec<(String, String)>, SimError> {
        self.migrated_tables_in(task, source, &[Stage::Paused])
    }

    pub(super) fn migrated_tables_in(
        &self,
        task: &str,
        source: &str,
        stages: &[Stage],
    ) -> Result<Vec<(String, String)>, SimError> {
        let sub = self.worker_subtask_in(task, source, stages)?;
        let cfg = project::to_subcfg(&sub.cfg, source, self.case_insensitive(source))?;
        let m = cfg.matcher().map_err(e::openapi)?;
        let mut out = vec![];
        for (db, tables) in self.catalog(source) {
            for t in tables {
                if m.allows(&db, &t) {
                    out.push((db.clone(), t));
                }
            }
        }
        // The schema tracker also knows every table whose structure was set through the schema endpoints, whatever
        // the rules say (the structure goes into the checkpoint, which the tracker loads; docs/dm-behaviour.md R13.6).
        for key in sub.tables.keys() {
            if !out.contains(key) {
                out.push(key.clone());
            }
        }
        out.sort();
        Ok(out)
    }

    pub fn task_schemas(&mut self, task: &str, source: &str) -> R {
        let mut dbs: Vec<String> = self.migrated_tables(task, source)?.into_iter().map(|(d, _)| d).collect();
        dbs.dedup();
        Ok(Out::Json(200, json!(dbs)))
    }

    pub fn task_tables(&mut self, task: &str, source: &str, schema: &str) -> R {
        let t: Vec<String> =
            self.migrated_tables(task, source)?.into_iter().filter(|(d, _)| d == schema).map(|(_, t)| t).collect();
        Ok(Out::Json(200, json!(t)))
    }

    pub fn get_table(&mut self, task: &str, source: &str, schema: &str, table: &str) -> R {
        let key = (schema.to_string(), table.to_string());
        let sql = match self.worker_subtask(task, source)?.tables.get(&key) {
            Some(sql) => sql.clone(),
            None => {
                if !self.migrated_tables(task, source)?.contains(&key) {
                    return Err(e::openapi(format!("table `{schema}`.`{table}` not found in the schema tracker")));
                }
                catalog::create_table_sql(table)
            }
        };
        // The spec requires `table_create_sql` by mistake; the server sends `schema_create_sql` (its own property).
        Ok(Out::Json(200, json!({"schema_name": schema, "table_name": table, "schema_create_sql": sql})))
    }

    pub fn put_table(
        &mut self,
        task: &str,
        source: &str,
        schema: &str,
        table: &str,
        req: OperateTableStructureRequest,
    ) -> R {
        // HEAD checks `schema_source` against `sql_content` before asking the worker; earlier generations have
        // no `schema_source` and always set the schema from `sql_content` (docs/dm-behaviour.md §13).
        let from_sql = if self.head() {
            match req.schema_source.as_deref().unwrap_or("sql") {
                "sql" if req.sql_content.as_deref().is_none_or(|s| s.trim().is_empty()) => {
                    return Err(e::openapi(
                        "`sql_content` must be provided and non-empty when `schema_source` is `sql`",
                    ));
                }
                "sql" => true,
                other if req.sql_content.is_some() => {
                    return Err(e::openapi(format!("`sql_content` must be omitted when `schema_source` is `{other}`")));
                }
                _ => false,
            }
        } else {
            true
        };
        self.worker_subtask(task, source)?;
        let sql = if from_sql {
            let sql = req.sql_content.unwrap_or_default();
            if !sql.trim_start().to_ascii_lowercase().starts_with("create table") {
                let inner = SimError::new(44009, format!("{sql} is not a valid `CREATE TABLE` statement"));
                return Err(e::openapi(inner.error_msg()));
            }
            sql
        } else {
            catalog::create_table_sql(table)
        };
        if let Some(sub) = self.tasks.get_mut(task).and_then(|t| t.subtasks.get_mut(source)) {
            sub.tables.insert((schema.to_string(), table.to_string()), sql);
        }
        Ok(Out::Empty(200))
    }

    pub fn delete_table(&mut self, task: &str, source: &str, schema: &str, table: &str) -> R {
        self.worker_subtask(task, source)?;
        if let Some(sub) = self.tasks.get_mut(task).and_then(|t| t.subtasks.get_mut(source)) {
            sub.tables.remove(&(schema.to_string(), table.to_string()));
        }
        Ok(Out::Empty(204))
    }

    pub fn migrate_targets(
        &mut self,
        task: &str,
        source: &str,
        schema_pattern: Option<&str>,
        table_pattern: Option<&str>,
    ) -> R {
        let tables = self.migrated_tables_in(task, source, &[Stage::Running, Stage::Paused])?;
        let sub = self.worker_subtask_in(task, source, &[Stage::Running, Stage::Paused])?;
        let cfg = project::to_subcfg(&sub.cfg, source, self.case_insensitive(source))?;
        let m = cfg.matcher().map_err(e::openapi)?;
        // The patterns are Go regular expressions, searched anywhere in the name (docs/dm-behaviour.md R13.6).
        let re = |p: Option<&str>| -> Result<Option<regex::Regex>, SimError> {
            match p.filter(|p| !p.is_empty()) {
                None => Ok(None),
                Some(p) => {
                    regex::Regex::new(p).map(Some).map_err(|err| e::openapi(format!("error parsing regexp: {err}")))
                }
            }
        };
        let (sp, tp) = (re(schema_pattern)?, re(table_pattern)?);
        let data: Vec<Value> = tables
            .into_iter()
            .filter(|(d, t)| sp.as_ref().is_none_or(|r| r.is_match(d)) && tp.as_ref().is_none_or(|r| r.is_match(t)))
            .map(|(d, t)| {
                let (ts, tt) = m.route(&d, &t);
                json!({"source_schema": d, "source_table": t, "target_schema": ts, "target_table": tt})
            })
            .collect();
        Ok(Out::Json(200, list_answer(data)))
    }

    pub fn convert(&mut self, req: Value) -> R {
        crate::sim::project::convert(self, req)
    }
}
