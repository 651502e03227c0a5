//! Tasks end to end on loopback: the Cloud Tasks fake dispatches to the verified worker router.
//! enqueue runs once, enqueue_later not before its time, dedup refuses duplicates (also with reordered
//! keys and after the task ran), failing tasks are retried and see their retry count, forged or missing
//! tokens never run a task, the fake refuses what Cloud Tasks refuses, eager and disabled modes.

#![cfg(feature = "tasks")]

mod tasks_support;

use std::time::{Duration, Instant};

use sea_gcp::Error;
use sea_gcp::tasks::{CloudTasksClient, Enqueued, NewTask, Tasks};
use sea_gcp::testing::oidc::TestIssuer;
use serde_json::{Value, json};
use tasks_support::*;

fn note(text: &str) -> Note {
    Note { text: text.into(), n: 1 }
}

#[tokio::test]
async fn enqueue_runs_once_with_cloud_tasks_context() {
    let h = start("", |_| {}).await;
    let Enqueued::Sent(info) = h.tasks.enqueue::<Record>(&note("hello")).await.unwrap() else { panic!("not sent") };
    assert!(info.name.starts_with(&format!("{}/tasks/", h.queue_path())), "{}", info.name);
    assert_eq!(h.wait_runs("record", 1).await, 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let runs = h.runs_of("record");
    assert_eq!(runs.len(), 1, "ran exactly once");
    let (payload, ctx) = &runs[0];
    assert_eq!(payload, &json!({"text": "hello", "n": 1}));
    assert_eq!(ctx.queue.as_deref(), Some(QUEUE));
    assert_eq!(ctx.task_name.as_deref(), Some(info.id()));
    assert_eq!((ctx.retry_count, ctx.execution_count), (0, 0));
    assert!(ctx.eta.is_some());
    assert_eq!(ctx.caller.as_ref().map(|c| c.email.as_str()), Some(INVOKER));
    let d = h.fake.dispatches();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].status, Some(200));
    assert!(h.fake.tasks(&h.queue_path()).is_empty(), "a task that succeeded is gone");
}

#[tokio::test]
async fn enqueue_later_runs_not_before_its_time() {
    let h = start("", |_| {}).await;
    let started = Instant::now();
    h.tasks.enqueue_later::<Record>(&note("later"), Duration::from_millis(1500)).await.unwrap();
    let at = chrono::Utc::now() + chrono::Duration::milliseconds(800);
    h.tasks.enqueue_later::<Record>(&note("at"), at).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(h.runs_of("record").is_empty(), "nothing before its time");
    assert_eq!(h.wait_runs("record", 2).await, 2);
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(1500), "{elapsed:?}");
    let runs = h.runs_of("record");
    assert_eq!(runs[0].0["text"], "at");
    assert_eq!(runs[1].0["text"], "later");
    for d in h.fake.dispatches() {
        assert!(d.at >= d.eta, "dispatched at {} before its ETA {}", d.at, d.eta);
    }
    let eta = runs[0].1.eta.unwrap();
    assert!((eta - at).num_milliseconds().abs() < 5, "ETA header {eta} vs scheduled {at}");
}

#[tokio::test]
async fn dedup_refuses_the_same_payload_in_any_key_order() {
    let h = start("", |s| s.resource_affix = Some("shop-test".into())).await;
    h.fake.set_paused(&h.queue_path(), true);
    let first = h.tasks.enqueue::<Dedup>(&json!({"user": 1, "kind": "welcome"})).await.unwrap();
    let Enqueued::Sent(info) = first else { panic!() };
    assert!(info.id().ends_with("--dedup--shop-test"), "{}", info.id());
    let err = h.tasks.enqueue::<Dedup>(&json!({"kind": "welcome", "user": 1})).await.unwrap_err();
    match &err {
        Error::DuplicateTask { task, id, retried } => {
            assert_eq!(task, "dedup");
            assert_eq!(id, info.id());
            assert!(!retried);
        }
        other => panic!("expected DuplicateTask, got {other:?}"),
    }
    assert!(err.to_string().contains("same payload"));
    // Another payload is another task.
    h.tasks.enqueue::<Dedup>(&json!({"user": 2, "kind": "welcome"})).await.unwrap();
    assert_eq!(h.fake.tasks(&h.queue_path()).len(), 2);
    // After it ran, the id stays refused (tombstone window).
    h.fake.set_paused(&h.queue_path(), false);
    assert_eq!(h.wait_runs("dedup", 2).await, 2);
    let again = h.tasks.enqueue::<Dedup>(&json!({"user": 1, "kind": "welcome"})).await.unwrap_err();
    assert!(again.is_duplicate_task(), "{again:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(h.runs_of("dedup").len(), 2, "each payload ran once");
    // Once the window has passed, the same payload may run again.
    h.fake.set_tombstone_window(Duration::ZERO);
    h.tasks.enqueue::<Dedup>(&json!({"user": 1, "kind": "welcome"})).await.unwrap();
    assert_eq!(h.wait_runs("dedup", 3).await, 3);
}

#[tokio::test]
async fn a_failing_task_is_retried_and_sees_its_retry_count() {
    let h = start("", |_| {}).await;
    h.tasks.enqueue::<Flaky>(&2).await.unwrap();
    assert_eq!(h.wait_runs("flaky", 3).await, 3);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let runs = h.runs_of("flaky");
    assert_eq!(runs.len(), 3, "two failures, one success, then nothing");
    let counts: Vec<(u32, u32)> = runs.iter().map(|(_, c)| (c.retry_count, c.execution_count)).collect();
    assert_eq!(counts, vec![(0, 0), (1, 1), (2, 2)]);
    assert_eq!(runs[1].1.previous_response, Some(500));
    let statuses: Vec<Option<u16>> = h.fake.dispatches().iter().map(|d| d.status).collect();
    assert_eq!(statuses, vec![Some(500), Some(500), Some(200)]);
    // Backoff: the retries were spaced.
    let d = h.fake.dispatches();
    assert!(d[1].at - d[0].at >= chrono::Duration::milliseconds(45));
    assert!(d[2].at - d[1].at >= chrono::Duration::milliseconds(95));
}

async fn post(url: &str, token: Option<&str>, body: &str, forged: bool) -> (u16, String) {
    let mut request =
        reqwest::Client::new().post(url).header("content-type", "application/json").body(body.to_string());
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    if forged {
        request = request.header("X-CloudTasks-TaskRetryCount", "99").header("X-CloudTasks-QueueName", "forged");
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn forged_or_missing_tokens_never_run_a_task() {
    let h = start("", |_| {}).await;
    let url = h.settings.task_url("record");
    let body = r#"{"text":"attack"}"#;
    let stranger = TestIssuer::generate("not-in-jwks");
    let mut expired = h.issuer.claims(&url, INVOKER);
    expired["exp"] = json!(chrono::Utc::now().timestamp() - 3600);
    expired["iat"] = json!(chrono::Utc::now().timestamp() - 7200);
    let mut unverified = h.issuer.claims(&url, INVOKER);
    unverified["email_verified"] = json!(false);
    let cases: Vec<(&str, Option<String>, u16)> = vec![
        ("no token", None, 401),
        ("garbage", Some("garbage".into()), 401),
        ("unknown key", Some(stranger.mint(&stranger.claims(&url, INVOKER))), 401),
        ("other task's audience", Some(h.issuer.mint(&h.issuer.claims(&h.settings.task_url("flaky"), INVOKER))), 401),
        (
            "other host's audience",
            Some(h.issuer.mint(&h.issuer.claims("https://evil.example.com/tasks/record", INVOKER))),
            401,
        ),
        ("expired", Some(h.issuer.mint(&expired)), 401),
        ("email not verified", Some(h.issuer.mint(&unverified)), 401),
        (
            "other service account",
            Some(h.issuer.mint(&h.issuer.claims(&url, "attacker@evil.iam.gserviceaccount.com"))),
            403,
        ),
    ];
    for (what, token, status) in cases {
        let (got, text) = post(&url, token.as_deref(), body, true).await;
        assert_eq!(got, status, "{what}: {text}");
        assert!(!text.contains("attack") && !text.contains("record"), "{what}: {text}");
    }
    // An unknown task name with no token is refused before the name is looked at.
    let (got, _) = post(&h.settings.task_url("no-such-task"), None, body, false).await;
    assert_eq!(got, 401);
    assert!(h.runs.lock().unwrap().is_empty(), "no task ran");

    // With a valid token: the forged-looking headers are Cloud Tasks' word only after verification.
    let token = h.issuer.mint(&h.issuer.claims(&url, INVOKER));
    let (got, text) = post(&url, Some(&token), body, true).await;
    assert_eq!(got, 200, "{text}");
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), json!({"echo": "attack"}));
    assert_eq!(h.runs_of("record")[0].1.retry_count, 99);
}

#[tokio::test]
async fn a_second_authorization_header_is_refused_whichever_comes_first() {
    let h = start("", |_| {}).await;
    let url = h.settings.task_url("record");
    let good = format!("Bearer {}", h.issuer.mint(&h.issuer.claims(&url, INVOKER)));
    let client = reqwest::Client::new();
    let send = |values: Vec<String>| {
        let mut request =
            client.post(&url).header("content-type", "application/json").body(r#"{"text":"attack"}"#.to_string());
        for value in values {
            request = request.header("authorization", value);
        }
        request.send()
    };
    let garbage = "Bearer garbage".to_string();
    let cases = [
        ("valid, then bad", vec![good.clone(), garbage.clone()]),
        ("bad, then valid", vec![garbage.clone(), good.clone()]),
        ("valid twice", vec![good.clone(); 2]),
    ];
    for (name, values) in cases {
        let response = send(values).await.unwrap();
        assert_eq!(response.status().as_u16(), 401, "{name}");
        assert_eq!(response.text().await.unwrap(), r#"{"error":"unauthenticated"}"#);
    }
    assert!(h.runs.lock().unwrap().is_empty(), "no task ran");
    assert_eq!(send(vec![good]).await.unwrap().status().as_u16(), 200);
}

#[tokio::test]
async fn the_body_is_read_only_after_authentication() {
    let h = start("", |_| {}).await;
    let big = format!(r#"{{"text":"{}"}}"#, "x".repeat(2 << 20));
    for url in [h.settings.task_url("record"), h.settings.subscriber_task_url("on-order")] {
        // No token: refused before the body is read, so its size is never looked at.
        let (status, text) = post(&url, None, &big, false).await;
        assert_eq!((status, text.as_str()), (401, r#"{"error":"unauthenticated"}"#), "{url}");
        // A verified caller over the limit: 413.
        let token = h.issuer.mint(&h.issuer.claims(&url, INVOKER));
        let (status, text) = post(&url, Some(&token), &big, false).await;
        assert_eq!((status, text.as_str()), (413, r#"{"error":"body_too_large"}"#), "{url}");
    }
    assert!(h.runs.lock().unwrap().is_empty(), "no task ran");
    let url = h.settings.task_url("record");
    let token = h.issuer.mint(&h.issuer.claims(&url, INVOKER));
    assert_eq!(post(&url, Some(&token), r#"{"text":"small"}"#, false).await.0, 200);
}

#[tokio::test]
async fn worker_answers_404_400_500_without_details() {
    let h = start("", |_| {}).await;
    let token_for = |task: &str| h.issuer.mint(&h.issuer.claims(&h.settings.task_url(task), INVOKER));
    let (status, text) =
        post(&h.settings.task_url("no-such-task"), Some(&token_for("no-such-task")), "{}", false).await;
    assert_eq!(status, 404);
    assert_eq!(text, r#"{"error":"unknown_task"}"#, "no list of task names");
    let (status, text) = post(&h.settings.task_url("record"), Some(&token_for("record")), r#"{"txt": 1}"#, false).await;
    assert_eq!(status, 400);
    assert_eq!(text, r#"{"error":"bad_payload"}"#);
    let (status, text) = post(&h.settings.task_url("flaky"), Some(&token_for("flaky")), "5", false).await;
    assert_eq!(status, 500);
    assert_eq!(text, r#"{"error":"task_failed"}"#);
    assert!(!text.contains("hunter2"));
    // A subscriber route for an on-demand task is unknown there.
    let sub_url = h.settings.subscriber_task_url("record");
    let token = h.issuer.mint(&h.issuer.claims(&sub_url, INVOKER));
    let (status, _) = post(&sub_url, Some(&token), "{}", false).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_router_mounts_under_a_prefix() {
    let h = start("/internal", |_| {}).await;
    assert!(h.settings.task_url("record").ends_with("/internal/tasks/record"));
    h.tasks.enqueue::<Record>(&note("prefixed")).await.unwrap();
    assert_eq!(h.wait_runs("record", 1).await, 1);
    // The fake records the attempt once the worker's answer arrived, just after the task ran.
    assert_eq!(h.fake.wait_for_dispatches(1, Duration::from_secs(10)).await, 1);
    assert_eq!(h.fake.dispatches()[0].status, Some(200));
}

#[tokio::test]
async fn the_fake_refuses_what_cloud_tasks_refuses() {
    let h = start("", |_| {}).await;
    let client = CloudTasksClient::unauthenticated(h.fake.url());
    let queue = h.queue_path();
    let task = || NewTask::new(h.settings.task_url("record"), br#"{"text":"x"}"#.to_vec());
    // Missing queue: 404 NOT_FOUND in Google's error JSON.
    let missing = h.settings.queue_path("no-such-queue");
    match client.create_task(&missing, &task()).await.unwrap_err() {
        Error::Service { status: Some(404), code, .. } => assert_eq!(code, "NOT_FOUND"),
        other => panic!("{other:?}"),
    }
    let raw = reqwest::Client::new()
        .post(format!("{}/v2/{missing}/tasks", h.fake.url()))
        .json(&json!({"task": task().to_json(&missing)}))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 404);
    let body: Value = raw.json().await.unwrap();
    assert_eq!(body["error"]["status"], "NOT_FOUND");
    assert_eq!(body["error"]["code"], 404);
    // Bad ids and names.
    for id in ["has space", "dot.ted", &"a".repeat(501)] {
        let err = client.create_task(&queue, &task().with_id(id)).await.unwrap_err();
        assert!(
            matches!(&err, Error::Service { status: Some(400), code, .. } if code == "INVALID_ARGUMENT"),
            "{id}: {err:?}"
        );
    }
    client.create_task(&queue, &task().with_id("a".repeat(500))).await.unwrap();
    let err =
        client.create_task("projects/Bad_Project/locations/europe-west1/queues/default", &task()).await.unwrap_err();
    assert!(matches!(err, Error::Service { status: Some(400), .. }), "{err:?}");
    let mut other_queue = task().to_json(&queue);
    other_queue["name"] = json!(format!("{}/tasks/x", h.settings.queue_path("other")));
    let raw = reqwest::Client::new()
        .post(format!("{}/v2/{queue}/tasks", h.fake.url()))
        .json(&json!({"task": other_queue}))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 400);
    // Over 1 MB (the client's own check is bypassed by calling the API directly).
    let big = NewTask::new(h.settings.task_url("record"), vec![b'x'; 1_000_001]);
    let err = client.create_task(&queue, &big).await.unwrap_err();
    assert!(err.to_string().contains("too large"), "{err}");
    // Not base64; bad times; bad deadline.
    let mut bad = task().to_json(&queue);
    bad["httpRequest"]["body"] = json!("%%% not base64 %%%");
    let raw = reqwest::Client::new()
        .post(format!("{}/v2/{queue}/tasks", h.fake.url()))
        .json(&json!({"task": bad}))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 400);
    let far = task().with_schedule_time(chrono::Utc::now() + chrono::Duration::days(31));
    assert!(client.create_task(&queue, &far).await.is_err());
    let short = task().with_dispatch_deadline(Duration::from_secs(5));
    assert!(client.create_task(&queue, &short).await.is_err());
    // Repeated name while it exists, and after deletion (tombstone).
    h.fake.set_paused(&queue, true);
    client.create_task(&queue, &task().with_id("named-1")).await.unwrap();
    let dup = client.create_task(&queue, &task().with_id("named-1")).await.unwrap_err();
    assert!(dup.is_duplicate_task(), "{dup:?}");
    let path = format!("{queue}/tasks/named-1");
    assert!(client.get_task(&path).await.unwrap().is_some());
    assert!(client.delete_task(&path).await.unwrap());
    assert!(client.get_task(&path).await.unwrap().is_none());
    assert!(client.create_task(&queue, &task().with_id("named-1")).await.unwrap_err().is_duplicate_task());
    assert_eq!(h.fake.refused_duplicates(), 2);
}

#[tokio::test]
async fn latency_is_simulated_per_call() {
    let h = start("", |_| {}).await;
    h.fake.set_paused(&h.queue_path(), true);
    h.fake.set_latency(Duration::from_millis(50));
    let started = Instant::now();
    h.tasks.enqueue::<Record>(&note("slow")).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(50));
}

#[tokio::test]
async fn eager_runs_in_process_and_disabled_enqueues_nothing() {
    let h = start("", |s| s.eager_execute = true).await;
    let out = h.tasks.enqueue::<Record>(&note("eager")).await.unwrap();
    assert_eq!(out, Enqueued::Ran(json!({"echo": "eager"})));
    let runs = h.runs_of("record");
    assert_eq!(runs.len(), 1);
    assert!(runs[0].1.eager);
    let err = h.tasks.enqueue::<Flaky>(&1).await.unwrap_err();
    assert!(matches!(err, Error::TaskFailed { .. }), "{err:?}");
    // What Cloud Tasks would refuse in production is refused in eager mode too, and does not run.
    let far = h.tasks.enqueue_later::<Record>(&note("far"), Duration::from_secs(31 * 24 * 3600)).await.unwrap_err();
    assert!(matches!(far, Error::InvalidTask { .. }), "{far:?}");
    let big = h.tasks.enqueue::<Record>(&note(&"x".repeat(1_000_001))).await.unwrap_err();
    assert!(matches!(big, Error::InvalidTask { .. }), "{big:?}");
    assert_eq!(h.runs_of("record").len(), 1, "the refused tasks did not run");
    assert_eq!(h.fake.api_calls(), 0, "eager mode sends nothing");

    let h = start("", |s| s.disable_execute = true).await;
    assert_eq!(h.tasks.enqueue::<Record>(&note("off")).await.unwrap(), Enqueued::Disabled);
    assert_eq!(
        h.tasks.enqueue_later::<Record>(&note("off"), Duration::from_secs(1)).await.unwrap(),
        Enqueued::Disabled
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(h.fake.api_calls(), 0);
    assert!(h.runs.lock().unwrap().is_empty());
}

#[tokio::test]
async fn unregistered_tasks_and_bad_registries_are_refused() {
    let runs = Runs::default();
    let dup = sea_gcp::tasks::Registry::builder().task(Record(runs.clone())).task(Record(runs.clone())).build();
    assert!(dup.unwrap_err().to_string().contains("two tasks"));
    let h = start("", |_| {}).await;
    let only_record = sea_gcp::tasks::Registry::builder().task(Record(runs.clone())).build().unwrap();
    let tasks = Tasks::new(h.settings.clone(), only_record, CloudTasksClient::unauthenticated(h.fake.url())).unwrap();
    let err = tasks.enqueue::<Flaky>(&1).await.unwrap_err();
    assert!(err.to_string().contains("not in the registry"), "{err}");
    assert_eq!(h.fake.api_calls(), 0);
}

#[tokio::test]
async fn subscriber_tasks_run_with_the_decoded_message() {
    use sea_gcp::pubsub::{PubSubMessage, make_pubsub_message};
    let h = start("", |_| {}).await;
    let url = h.settings.subscriber_task_url("on-order");
    let token = h.issuer.mint(&h.issuer.claims(&url, INVOKER));
    let mut message = PubSubMessage::new(br#"{"text":"order 7","n":7}"#.to_vec())
        .with_message_id("m-1")
        .with_attribute("kind", "new");
    message.delivery_attempt = Some(3);
    let envelope = make_pubsub_message(&message).to_string();
    let (status, text) = post(&url, Some(&token), &envelope, false).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), json!({"message_id": "m-1"}));
    let runs = h.runs_of("on-order");
    assert_eq!(runs.len(), 1);
    let (payload, ctx) = &runs[0];
    assert_eq!(payload, &json!({"text": "order 7", "n": 7}));
    assert_eq!(ctx.retry_count, 2);
    assert_eq!(ctx.message.as_ref().unwrap().attributes["kind"], "new");
    // Refusals: no token; a malformed envelope; the /tasks route does not serve subscriber tasks.
    assert_eq!(post(&url, None, &envelope, false).await.0, 401);
    assert_eq!(
        post(&url, Some(&token), r#"{"no":"message"}"#, false).await,
        (400, r#"{"error":"bad_payload"}"#.to_string())
    );
    let task_url = h.settings.task_url("on-order");
    let task_token = h.issuer.mint(&h.issuer.claims(&task_url, INVOKER));
    assert_eq!(post(&task_url, Some(&task_token), r#"{"text":"x"}"#, false).await.0, 404);
    assert_eq!(h.runs_of("on-order").len(), 1);
}

#[tokio::test]
async fn publish_in_eager_mode_runs_the_subscriber_in_process() {
    let h = start("", |s| s.eager_execute = true).await;
    let pubsub = sea_gcp::pubsub::PubSubClient::emulator("127.0.0.1:9", PROJECT);
    let runs = Runs::default();
    let outcome = h
        .tasks
        .publish(&pubsub, &OnOrder(runs), &Note { text: "eager".into(), n: 1 }, Default::default(), Some("k"))
        .await
        .unwrap();
    assert!(matches!(outcome, sea_gcp::tasks::PublishOutcome::Ran(_)), "{outcome:?}");
    let ran = h.runs_of("on-order");
    assert_eq!(ran.len(), 1);
    assert_eq!(ran[0].1.message.as_ref().unwrap().ordering_key.as_deref(), Some("k"));
}
