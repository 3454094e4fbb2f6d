//! Task templates (`/api/v1/tasks/templates`): stored `Task` JSON that never creates a task, but whose create and
//! update connect to the template's target first (docs/dm-behaviour.md §10).

use serde_json::{Value, json};

use super::bound;
use super::errors::SimError;
use super::state::{Out, R, State};
use crate::dm::types::Task;

fn template_not_exist(name: &str) -> SimError {
    SimError::new(20051, format!("the openapi task config for '{name}' does not exist"))
}

fn template_exists(name: &str) -> SimError {
    SimError::new(20050, format!("the openapi task config for '{name}' already exist"))
        .workaround("If you want to override it, please use the overwrite flag.")
}

impl State {
    /// `c.Bind`, `Task.Adjust` (`meta_schema` defaulting; HEAD also checks `timezone`) and
    /// `AdjustTargetDBSessionCfg`, whose failure is re-classed `dm-master`. Returns the template as bound,
    /// target password included.
    fn adjust_template(&self, mut task: Task) -> Result<Value, SimError> {
        bound::strip_task(&mut task, self.generation);
        if task.meta_schema.is_none() {
            task.meta_schema = Some(crate::dm::facts::META_SCHEMA.into());
        }
        if let Some(tz) = task.timezone.as_deref()
            && !super::state::valid_timezone(tz)
        {
            return Err(SimError::new(20008, format!("invalid timezone string: {tz}"))
                .workaround("Please check the `timezone` config in task configuration file."));
        }
        self.connect_target(&task.target_config).map_err(|err| err.with_class("dm-master"))?;
        Ok(bound::task_json(&task, self.generation))
    }

    /// POST: the downstream check comes before the 20050 check; 201 with the stored template.
    pub fn create_template(&mut self, task: Task) -> R {
        let v = self.adjust_template(task.clone())?;
        if self.templates.contains_key(&task.name) {
            return Err(template_exists(&task.name));
        }
        self.templates.insert(task.name.clone(), v.clone());
        Ok(Out::Json(201, v))
    }

    /// Sorted by name, as etcd ranges are.
    pub fn list_templates(&mut self) -> R {
        let data: Vec<Value> = self.templates.values().cloned().collect();
        Ok(Out::Json(200, json!({"total": data.len(), "data": data})))
    }

    pub fn get_template(&mut self, name: &str) -> R {
        match self.templates.get(name) {
            Some(v) => Ok(Out::Json(200, v.clone())),
            None => Err(template_not_exist(name)),
        }
    }

    /// PUT: the path name is ignored, the body's `name` is the template written (20051 if it does not exist).
    pub fn update_template(&mut self, task: Task) -> R {
        let v = self.adjust_template(task.clone())?;
        if !self.templates.contains_key(&task.name) {
            return Err(template_not_exist(&task.name));
        }
        self.templates.insert(task.name.clone(), v.clone());
        Ok(Out::Json(200, v))
    }

    /// DELETE is an etcd delete: an unknown template is 204 too.
    pub fn delete_template(&mut self, name: &str) -> R {
        self.templates.remove(name);
        Ok(Out::Empty(204))
    }

    /// 202 `{success_task_list, failed_task_list}`: every task, as its read-back, stored as a template; an existing
    /// template fails that task unless `overwrite`. No downstream connect here.
    pub fn import_templates(&mut self, overwrite: bool) -> R {
        let names: Vec<String> = self.tasks.keys().cloned().collect();
        let (mut ok, mut failed) = (vec![], vec![]);
        for n in names {
            if self.templates.contains_key(&n) && !overwrite {
                failed.push(json!({"task_name": n, "error_msg": template_exists(&n).error_msg()}));
                continue;
            }
            let v = self.task_view(&n);
            self.templates.insert(n.clone(), v);
            ok.push(n);
        }
        Ok(Out::Json(202, json!({"success_task_list": ok, "failed_task_list": failed})))
    }
}
