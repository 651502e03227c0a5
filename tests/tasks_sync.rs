//! `sync` of periodic tasks against the Cloud Scheduler fake: plans, applies, is idempotent, updates with
//! an update mask, cleans up only jobs carrying the affix (and refuses cleanup without one); the fake's
//! checks; `:run` reaches the verified worker with Scheduler's headers.

#![cfg(feature = "tasks")]

mod tasks_support;

use std::time::Duration;

use sea_gcp::Error;
use sea_gcp::tasks::sync::{Change, Manifest, apply, desired_jobs, plan};
use sea_gcp::tasks::{Job, PeriodicTask, Registry, Schedule, SchedulerClient, Task, TaskContext};
use sea_gcp::testing::scheduler::FakeScheduler;
use serde_json::Value;
use tasks_support::*;

async fn setup(affix: bool) -> (Harness, FakeScheduler, SchedulerClient) {
    let h = start("", |s| {
        if affix {
            s.resource_affix = Some("shop-test".into());
        }
    })
    .await;
    let scheduler = FakeScheduler::start(h.issuer.clone()).await;
    let client = SchedulerClient::unauthenticated(scheduler.url());
    (h, scheduler, client)
}

fn parent(h: &Harness) -> String {
    format!("projects/{PROJECT}/locations/{}", h.settings.region)
}

fn other_job(h: &Harness, id: &str) -> Job {
    let mut job = desired_jobs(&Manifest::from(h.tasks.registry()), &h.settings).unwrap().remove(0);
    job.name = format!("{}/jobs/{id}", parent(h));
    job
}

#[tokio::test]
async fn sync_plans_applies_and_is_idempotent() {
    let (h, scheduler, client) = setup(true).await;
    let registry = &Manifest::from(h.tasks.registry());
    let first = plan(&client, &h.settings, registry, false).await.unwrap();
    assert_eq!(first.changes.len(), 1);
    let Change::Create(job) = &first.changes[0] else { panic!("{:?}", first.changes) };
    assert_eq!(job.id(), "nightly--shop-test");
    assert_eq!(first.changes[0].to_string(), "create    scheduler job nightly--shop-test (0 3 * * * Europe/Paris)");
    apply(&client, &first).await.unwrap();
    let stored = &scheduler.jobs()[&job.name];
    assert_eq!(stored["schedule"], "0 3 * * *");
    assert_eq!(stored["timeZone"], "Europe/Paris");
    assert_eq!(stored["attemptDeadline"], "300s");
    assert_eq!(stored["httpTarget"]["uri"], h.settings.task_url("nightly"));
    assert_eq!(stored["httpTarget"]["oidcToken"]["serviceAccountEmail"], INVOKER);

    let second = plan(&client, &h.settings, registry, true).await.unwrap();
    assert!(second.is_noop(), "{:?}", second.changes);
    let mutations = scheduler.mutations().len();
    apply(&client, &second).await.unwrap();
    assert_eq!(scheduler.mutations().len(), mutations, "a second sync changes nothing");

    // Someone changed the schedule: sync patches exactly that field.
    let mut drifted = job.clone();
    drifted.schedule = "0 4 * * *".into();
    client.patch_job(&drifted, &["schedule"]).await.unwrap();
    let third = plan(&client, &h.settings, registry, false).await.unwrap();
    assert_eq!(third.changes, vec![Change::Update(job.clone(), vec!["schedule"])]);
    apply(&client, &third).await.unwrap();
    assert_eq!(scheduler.mutations().last().unwrap(), &format!("PATCH {} schedule", job.name));
    assert_eq!(scheduler.jobs()[&job.name]["schedule"], "0 3 * * *");
    assert!(plan(&client, &h.settings, registry, false).await.unwrap().is_noop());

    // A changed tasks domain (`--tasks-domain`) moves the target.
    let mut moved = h.settings.clone();
    moved.tasks_domain = "https://worker-2.example.com".into();
    let fourth = plan(&client, &moved, registry, false).await.unwrap();
    assert!(
        matches!(&fourth.changes[0], Change::Update(_, mask) if mask == &vec!["httpTarget"]),
        "{:?}",
        fourth.changes
    );
}

#[tokio::test]
async fn cleanup_deletes_only_our_unclaimed_jobs() {
    let (h, scheduler, client) = setup(true).await;
    let registry = &Manifest::from(h.tasks.registry());
    apply(&client, &plan(&client, &h.settings, registry, false).await.unwrap()).await.unwrap();
    for id in ["retired--shop-test", "someone-elses-job", "retired--shop-staging"] {
        client.create_job(&other_job(&h, id)).await.unwrap();
    }
    let p = plan(&client, &h.settings, registry, true).await.unwrap();
    let deletes: Vec<String> = p
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::Delete(n) => Some(n.rsplit('/').next().unwrap().to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(deletes, vec!["retired--shop-test".to_string()]);
    // Without --cleanup nothing is deleted.
    assert!(
        !plan(&client, &h.settings, registry, false)
            .await
            .unwrap()
            .changes
            .iter()
            .any(|c| matches!(c, Change::Delete(_)))
    );
    apply(&client, &p).await.unwrap();
    let left: Vec<String> = scheduler.jobs().keys().map(|k| k.rsplit('/').next().unwrap().to_string()).collect();
    assert_eq!(left, vec!["nightly--shop-test", "retired--shop-staging", "someone-elses-job"]);
    assert!(plan(&client, &h.settings, registry, true).await.unwrap().is_noop());

    let (h, scheduler, client) = setup(false).await;
    client.create_job(&other_job(&h, "someone-elses-job")).await.unwrap();
    let err = plan(&client, &h.settings, &Manifest::from(h.tasks.registry()), true).await.unwrap_err();
    assert!(err.to_string().contains("GCP_TASKS_RESOURCE_AFFIX"), "{err}");
    assert_eq!(scheduler.jobs().len(), 1, "cleanup without an affix deletes nothing");
}

#[tokio::test]
async fn run_reaches_the_verified_worker_with_scheduler_headers() {
    let (h, scheduler, client) = setup(true).await;
    apply(&client, &plan(&client, &h.settings, &Manifest::from(h.tasks.registry()), false).await.unwrap())
        .await
        .unwrap();
    let name = desired_jobs(&Manifest::from(h.tasks.registry()), &h.settings).unwrap()[0].name.clone();
    client.run_job(&name).await.unwrap();
    assert_eq!(scheduler.wait_for_dispatches(1, Duration::from_secs(10)).await, 1);
    assert_eq!(scheduler.dispatches()[0].status, Some(200));
    let runs = h.runs_of("nightly");
    assert_eq!(runs.len(), 1);
    let (payload, ctx) = &runs[0];
    assert_eq!(payload, &serde_json::json!({}));
    assert!(ctx.from_scheduler);
    assert_eq!(ctx.task_name.as_deref(), Some("nightly--shop-test"));
    assert_eq!(ctx.caller.as_ref().unwrap().email, INVOKER);
}

#[tokio::test]
async fn the_fake_refuses_what_scheduler_refuses() {
    let (h, _scheduler, client) = setup(true).await;
    let base = other_job(&h, "checked");
    let refused =
        |e: Error| matches!(e, Error::Service { status: Some(400), ref code, .. } if code == "INVALID_ARGUMENT");
    let mut bad = base.clone();
    bad.schedule = "every day".into();
    assert!(refused(client.create_job(&bad).await.unwrap_err()));
    let mut bad = base.clone();
    bad.time_zone = "Mars/Olympus".into();
    assert!(refused(client.create_job(&bad).await.unwrap_err()));
    for secs in [10, 1801] {
        let mut bad = base.clone();
        bad.attempt_deadline = Duration::from_secs(secs);
        assert!(refused(client.create_job(&bad).await.unwrap_err()), "{secs}");
    }
    let mut bad = base.clone();
    bad.name = format!("{}/jobs/not.valid", parent(&h));
    assert!(client.create_job(&bad).await.is_err());
    client.create_job(&base).await.unwrap();
    let again = client.create_job(&base).await.unwrap_err();
    assert!(
        matches!(again, Error::Service { status: Some(409), ref code, .. } if code == "ALREADY_EXISTS"),
        "{again:?}"
    );
    assert!(client.patch_job(&base, &["nonsense"]).await.is_err());
    // Pages: the client follows nextPageToken.
    for i in 0..4 {
        client.create_job(&other_job(&h, &format!("paged-{i}"))).await.unwrap();
    }
    let listed = client.list_jobs(&parent(&h), 2).await.unwrap();
    assert_eq!(listed.len(), 5);
    let raw: Value = reqwest::get(format!("{}/v1/{}/jobs?pageSize=2", _scheduler.url(), parent(&h)))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(raw["jobs"].as_array().unwrap().len(), 2);
    assert!(raw["nextPageToken"].is_string());
    assert!(client.delete_job(&base.name).await.unwrap());
    assert!(!client.delete_job(&base.name).await.unwrap());
    assert!(client.get_job(&base.name).await.unwrap().is_none());
}

struct BadCron;

#[async_trait::async_trait]
impl Task for BadCron {
    const NAME: &'static str = "bad-cron";
    type Payload = ();
    type Output = ();
    async fn run(&self, _: (), _: TaskContext) -> Result<(), sea_gcp::BoxError> {
        Ok(())
    }
}

impl PeriodicTask for BadCron {
    fn schedule(&self) -> Schedule {
        Schedule::cron("61 * * * *")
    }
}

#[test]
fn the_manifest_round_trips_through_json() {
    let runs = Runs::default();
    let manifest = Manifest::from(&registry(&runs));
    let text = serde_json::to_string_pretty(&manifest).unwrap();
    assert_eq!(Manifest::from_json(&text).unwrap(), manifest);
    assert_eq!(manifest.periodic.len(), 1);
    assert_eq!(manifest.periodic[0].attempt_deadline_seconds, 300);
    assert_eq!(manifest.subscribers[0].topic, "orders");
    assert!(Manifest::from_json("{not json").is_err());
}

#[tokio::test]
async fn an_invalid_schedule_is_refused_before_any_call() {
    let (h, scheduler, client) = setup(true).await;
    // At start-up, when the registry is built ...
    let err = Registry::builder().periodic(BadCron).build().unwrap_err();
    assert!(err.to_string().contains("bad-cron") && err.to_string().contains("minute"), "{err}");
    // ... and in a manifest handed to sync.
    let mut manifest = Manifest::from(h.tasks.registry());
    manifest.periodic[0].cron = "61 * * * *".into();
    let err = plan(&client, &h.settings, &manifest, false).await.unwrap_err();
    assert!(err.to_string().contains("nightly") && err.to_string().contains("minute"), "{err}");
    assert!(scheduler.mutations().is_empty());
}

/// `PUBSUB_EMULATOR_HOST`, or a loud skip (a failure under `SEA_GCP_REQUIRE_ALL=1`).
fn pubsub_emulator() -> Option<String> {
    match std::env::var("PUBSUB_EMULATOR_HOST") {
        Ok(host) if !host.is_empty() => Some(host),
        _ => {
            let why = "PUBSUB_EMULATOR_HOST is not set (run through scripts/test.sh)";
            if std::env::var("SEA_GCP_REQUIRE_ALL").as_deref() == Ok("1") {
                panic!("the Pub/Sub emulator is required (SEA_GCP_REQUIRE_ALL=1): {why}");
            }
            eprintln!("SKIPPED: subscription sync on the Pub/Sub emulator — {why}");
            None
        }
    }
}

#[tokio::test]
async fn sync_manages_the_push_subscriptions_of_subscriber_tasks_on_the_emulator() {
    use sea_gcp::pubsub::{PubSubClient, PushSubscription};
    use sea_gcp::tasks::sync_subscriptions::{SubscriptionChange, apply_subscriptions, plan_subscriptions};

    let Some(host) = pubsub_emulator() else { return };
    let (h, _scheduler, _client) = setup(true).await;
    // A project of its own: other runs on the same emulator see nothing of this one.
    let pubsub = PubSubClient::emulator(host, format!("sync-{}", uuid::Uuid::new_v4().simple()));
    let manifest = Manifest::from(h.tasks.registry());
    let topic = manifest.subscribers[0].topic.clone();

    // First run: the topic and the subscription are created, pushing to the worker with the invoker's token.
    let first = plan_subscriptions(&pubsub, &h.settings, &manifest, false).await.unwrap();
    let [SubscriptionChange::Create(sub)] = first.changes.as_slice() else { panic!("{:?}", first.changes) };
    assert!(sub.name.ends_with("--shop-test"), "{}", sub.name);
    apply_subscriptions(&pubsub, &first).await.unwrap();
    let created = pubsub.get_subscription(&sub.name).await.unwrap().expect("created");
    let task = &manifest.subscribers[0].task;
    assert_eq!(created["pushConfig"]["pushEndpoint"], h.settings.subscriber_task_url(task).as_str());
    assert!(created["topic"].as_str().unwrap().ends_with(&format!("/topics/{topic}")));

    // Second run: nothing to do.
    let second = plan_subscriptions(&pubsub, &h.settings, &manifest, false).await.unwrap();
    assert!(second.is_noop(), "{:?}", second.changes);

    // A moved worker: the push configuration is replaced in place, then the plan is empty again.
    let mut moved = h.settings.clone();
    moved.tasks_domain = "https://worker-2.example.com".into();
    let third = plan_subscriptions(&pubsub, &moved, &manifest, false).await.unwrap();
    assert!(
        matches!(&third.changes[0], SubscriptionChange::Update(_, fields) if fields.contains(&"pushEndpoint")),
        "{:?}",
        third.changes
    );
    apply_subscriptions(&pubsub, &third).await.unwrap();
    let updated = pubsub.get_subscription(&sub.name).await.unwrap().unwrap();
    assert_eq!(updated["pushConfig"]["pushEndpoint"], moved.subscriber_task_url(task).as_str());
    assert!(plan_subscriptions(&pubsub, &moved, &manifest, false).await.unwrap().is_noop());

    // Cleanup deletes only subscriptions with our affix that no task claims.
    let stale = PushSubscription::new("retired--shop-test", &topic, "https://worker-2.example.com/x");
    let foreign = PushSubscription::new("someone-elses", &topic, "https://elsewhere.example.com/x");
    assert!(pubsub.create_push_subscription(&stale).await.unwrap());
    assert!(pubsub.create_push_subscription(&foreign).await.unwrap());
    let cleanup = plan_subscriptions(&pubsub, &moved, &manifest, true).await.unwrap();
    assert_eq!(
        cleanup.changes.iter().filter(|c| matches!(c, SubscriptionChange::Delete(_))).collect::<Vec<_>>(),
        vec![&SubscriptionChange::Delete("retired--shop-test".into())]
    );
    apply_subscriptions(&pubsub, &cleanup).await.unwrap();
    assert!(pubsub.get_subscription("retired--shop-test").await.unwrap().is_none());
    assert!(pubsub.get_subscription("someone-elses").await.unwrap().is_some());
    assert!(pubsub.get_subscription(&sub.name).await.unwrap().is_some());

    // Without an affix, cleanup is refused before any change.
    let mut no_affix = moved.clone();
    no_affix.resource_affix = None;
    let err = plan_subscriptions(&pubsub, &no_affix, &manifest, true).await.unwrap_err();
    assert!(err.to_string().contains("GCP_TASKS_RESOURCE_AFFIX"), "{err}");
    assert!(pubsub.get_subscription("someone-elses").await.unwrap().is_some());
}

/// After a migration from django-gcp its job `{affix}--{slug}` is still there: by default sync reports
/// it (it would fire beside ours); with `django_gcp_compat` sync adopts it by name, and cleanup sees
/// django-gcp's naming.
#[tokio::test]
async fn jobs_named_the_django_gcp_way_are_reported_or_adopted() {
    let (h, scheduler, client) = setup(true).await;
    let registry = &Manifest::from(h.tasks.registry());
    client.create_job(&other_job(&h, "shop-test--nightly")).await.unwrap();
    client.create_job(&other_job(&h, "shop-test--retired")).await.unwrap();
    let notes = |p: &sea_gcp::tasks::sync::SyncPlan| -> Vec<String> {
        p.changes
            .iter()
            .filter_map(|c| match c {
                Change::OtherNaming(n) => Some(n.rsplit('/').next().unwrap().to_string()),
                _ => None,
            })
            .collect()
    };
    let p = plan(&client, &h.settings, registry, true).await.unwrap();
    assert_eq!(notes(&p), vec!["shop-test--nightly".to_string(), "shop-test--retired".to_string()], "{p:?}");
    assert!(!p.changes.iter().any(|c| matches!(c, Change::Delete(_))), "never deleted: {p:?}");
    assert!(p.changes.iter().any(|c| c.to_string().contains("GCP_TASKS_DJANGO_GCP_COMPAT")));
    apply(&client, &p).await.unwrap();
    assert_eq!(scheduler.jobs().len(), 3, "ours created beside them, theirs left");

    // The same application in django-gcp compatibility: `{affix}--{task}` is ours, and cleanup deletes
    // the retired one; our suffix-named job is now the other naming and is reported.
    let mut compat = h.settings.clone();
    compat.django_gcp_compat = true;
    assert_eq!(compat.job_id("nightly"), "shop-test--nightly");
    let p = plan(&client, &compat, registry, true).await.unwrap();
    assert!(p.changes.iter().any(|c| matches!(c, Change::Unchanged(j) if j.id() == "shop-test--nightly")), "{p:?}");
    assert!(p.changes.iter().any(|c| matches!(c, Change::Delete(n) if n.ends_with("/shop-test--retired"))), "{p:?}");
    assert_eq!(notes(&p), vec!["nightly--shop-test".to_string()]);
}
