//! Every step kind against the simulator over real HTTP, on both server generations, checked through the
//! simulator's request log (order of requests) and by planning again.

mod apply_common;

use apply_common::*;

#[tokio::test]
async fn create_sources_and_tasks_then_plan_is_empty() {
    for g in GENERATIONS {
        let env = env(g).await;
        let d = desired(&config(&[
            incr_task("orders", &["mysql-a"], "running", 100),
            incr_task("both", &["mysql-a", "mysql-b"], "stopped", 100),
        ]));
        let r = converge(&env, &d, false).await;
        assert_eq!(r.summary_line(), "Apply complete! Resources: 4 added, 0 changed, 0 destroyed.", "{g:?}");
        let m = dm_mutations(&env.ctl.request_log());
        assert!(pos(&m, "POST /api/v1/sources") < pos(&m, "POST /api/v1/tasks"), "{g:?}: {m:#?}");
        assert!(pos(&m, "POST /api/v1/tasks") < pos(&m, "POST /api/v1/tasks/orders/start"), "{g:?}: {m:#?}");
        assert!(!m.iter().any(|x| x == "POST /api/v1/tasks/both/start"), "a task meant to be stopped was started");
        assert!(refused(&env.ctl.request_log()).is_empty(), "{g:?}: {:?}", refused(&env.ctl.request_log()));
        assert_eq!(stages(&env, "orders").await, ["Running"]);
        assert_eq!(stages(&env, "both").await, ["Stopped", "Stopped"]);
        assert_no_changes(&env, &d, false).await;
    }
}
