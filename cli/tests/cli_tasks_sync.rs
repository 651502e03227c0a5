//! `sea-gcp tasks sync` end to end through the built binary, against the Cloud Scheduler fake and the
//! Pub/Sub emulator (`PUBSUB_EMULATOR_HOST`, started by scripts/test.sh; without it the subscriber task's
//! part is skipped loudly, and fails under `SEA_GCP_REQUIRE_ALL=1`).

use std::process::Command;
use std::sync::Arc;

use sea_gcp::testing::oidc::TestIssuer;
use sea_gcp::testing::scheduler::FakeScheduler;

/// Whether the Pub/Sub emulator is there (else a loud skip, or a failure under `SEA_GCP_REQUIRE_ALL=1`).
fn pubsub_emulator() -> bool {
    if std::env::var("PUBSUB_EMULATOR_HOST").is_ok_and(|h| !h.is_empty()) {
        return true;
    }
    let why = "PUBSUB_EMULATOR_HOST is not set (run through scripts/test.sh)";
    if std::env::var("SEA_GCP_REQUIRE_ALL").as_deref() == Ok("1") {
        panic!("the Pub/Sub emulator is required (SEA_GCP_REQUIRE_ALL=1): {why}");
    }
    eprintln!("SKIPPED: subscription sync through the CLI — {why}");
    false
}

fn sync(args: &[&str], scheduler: &str, manifest: &std::path::Path, affix: Option<&str>) -> (bool, String, String) {
    // A project of this process's own: the emulator may be shared with other runs.
    static PROJECT: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| format!("cli-sync-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]));
    let mut command = Command::new(env!("CARGO_BIN_EXE_sea-gcp"));
    command
        .args(["tasks", "sync", "--manifest"])
        .arg(manifest)
        .args(args)
        .env("GCP_PROJECT_ID", PROJECT.as_str())
        .env("GCP_TASKS_DEFAULT_QUEUE_NAME", "primary")
        .env("GCP_TASKS_DOMAIN", "https://worker.example.com")
        .env("GCP_TASKS_INVOKER_SERVICE_ACCOUNT", "invoker@test-project.iam.gserviceaccount.com")
        .env("GCP_SCHEDULER_EMULATOR_TARGET", scheduler)
        .env_remove("GCP_TASKS_RESOURCE_AFFIX");
    if let Some(affix) = affix {
        command.env("GCP_TASKS_RESOURCE_AFFIX", affix);
    }
    let out = command.output().expect("binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_sync_plans_applies_is_idempotent_and_cleans_up_only_our_jobs() {
    let scheduler = FakeScheduler::start(Arc::new(TestIssuer::generate("cli"))).await;
    let url = scheduler.url();
    let tmp = tempfile::tempdir().unwrap();
    let manifest = tmp.path().join("tasks.json");
    let pubsub = pubsub_emulator();
    let subscribers = if pubsub { r#"{"task": "on-order", "topic": "orders"}"# } else { "" };
    let write = |periodic: &str| {
        std::fs::write(&manifest, format!(r#"{{"periodic": [{periodic}], "subscribers": [{subscribers}]}}"#)).unwrap()
    };
    let nightly = r#"{"task": "nightly", "cron": "0 3 * * *", "time_zone": "Europe/Paris", "attempt_deadline_seconds": 300, "body": {}}"#;
    let hourly =
        r#"{"task": "hourly", "cron": "0 * * * *", "time_zone": "UTC", "attempt_deadline_seconds": 60, "body": {}}"#;
    write(&format!("{nightly}, {hourly}"));

    // --dry-run reads no API and needs neither credentials nor a queue name: the Scheduler endpoint here
    // is a closed port, and the queue variable is unset.
    let out = Command::new(env!("CARGO_BIN_EXE_sea-gcp"))
        .args(["tasks", "sync", "--dry-run", "--manifest"])
        .arg(&manifest)
        .env("GCP_PROJECT_ID", "dry-run-project")
        .env("GCP_TASKS_DOMAIN", "https://worker.example.com")
        .env("GCP_TASKS_INVOKER_SERVICE_ACCOUNT", "invoker@test-project.iam.gserviceaccount.com")
        .env("GCP_SCHEDULER_EMULATOR_TARGET", "http://127.0.0.1:9")
        .env("GCP_TASKS_RESOURCE_AFFIX", "shop")
        .env("PUBSUB_EMULATOR_HOST", "127.0.0.1:9")
        .env_remove("GCP_TASKS_DEFAULT_QUEUE_NAME")
        .output()
        .unwrap();
    let (dry, err) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{err}");
    assert!(
        dry.contains(
            "want      scheduler job nightly--shop (0 3 * * * Europe/Paris) -> https://worker.example.com/tasks/nightly"
        ) && dry.contains("want      scheduler job hourly--shop")
            && dry.contains("dry run: nothing read or changed"),
        "{dry}"
    );
    assert!(!pubsub || dry.contains("want      push subscription"), "{dry}");
    for api_name in ["::", "Manifest", "registry", "TasksSettings"] {
        assert!(!err.contains(api_name) && !dry.contains(api_name), "no API names for CLI users: {dry}{err}");
    }

    let (ok, out, err) = sync(&["--plan"], &url, &manifest, Some("shop"));
    assert!(ok, "{err}");
    assert!(
        out.contains("create    scheduler job nightly--shop") && out.contains("create    scheduler job hourly--shop"),
        "{out}"
    );
    assert!(!pubsub || out.contains("create    subscription on-order--shop (topic orders)"), "{out}");
    assert!(out.contains("plan only: nothing changed") && scheduler.jobs().is_empty(), "{out}");

    let (ok, out, err) = sync(&[], &url, &manifest, Some("shop"));
    assert!(ok && out.contains("applied"), "{out}{err}");
    assert_eq!(scheduler.jobs().len(), 2);
    let mutations = scheduler.mutations().len();
    let (ok, out, _) = sync(&["--cleanup"], &url, &manifest, Some("shop"));
    assert!(ok && out.contains("unchanged scheduler job nightly--shop") && out.contains("nothing to change"), "{out}");
    assert!(!pubsub || out.contains("unchanged subscription on-order--shop"), "{out}");
    assert_eq!(scheduler.mutations().len(), mutations, "the second run changed nothing");

    // --tasks-domain moves the targets; dropping `hourly` and --cleanup deletes its job only.
    write(nightly);
    let (ok, out, err) =
        sync(&["--cleanup", "--tasks-domain", "https://worker-2.example.com"], &url, &manifest, Some("shop"));
    assert!(ok, "{err}");
    assert!(
        out.contains("update    scheduler job nightly--shop (httpTarget)")
            && out.contains("delete    scheduler job hourly--shop"),
        "{out}"
    );
    assert!(
        !pubsub || out.contains("update    subscription on-order--shop (pushEndpoint, oidcToken.audience)"),
        "{out}"
    );
    let jobs = scheduler.jobs();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs.values().next().unwrap()["httpTarget"]["uri"], "https://worker-2.example.com/tasks/nightly");

    // Without an affix, cleanup is refused and nothing changes.
    let (ok, _, err) = sync(&["--cleanup"], &url, &manifest, None);
    assert!(!ok && err.contains("GCP_TASKS_RESOURCE_AFFIX"), "{err}");
    assert_eq!(scheduler.jobs().len(), 1);
}
