//! Task outbox benchmark (run by `scripts/bench-tasks.sh`): the dispatch rate of committed outbox rows
//! against the Cloud Tasks fake with a simulated round trip per create call, with the dispatcher killed
//! part-way and restarted (zero losses and zero duplicate tasks checked), and the median cost
//! `enqueue_in` adds to the caller's transaction against the same transaction without it.
//!
//! Usage: bench_tasks [ROWS] [LATENCY_MS] [CONCURRENCY]   (defaults 20000, 50, 512)
//! Env:   BENCH_DB_URL (default a fresh SQLite file); BENCH_TXNS (default 2000 transactions per variant).
//!
//! `bench_tasks fleet [ROWS]` (default 20000, BENCH_DB_URL a PostgreSQL URL): many instances on one
//! outbox. This process serves the Cloud Tasks fake and starts 4 dispatcher processes and 4 writer
//! processes (each writer, like an app instance, also runs a dispatcher); the writers commit ROWS
//! one-row transactions in all, recording when each committed. It reports create calls per task, lost
//! tasks, tasks created twice, and the median and 90th percentile from a commit to the create call.
//! `BENCH_RATE` paces the writers to that many tasks per second for the whole fleet (steady traffic);
//! unset, they commit as fast as they can and the latency includes the backlog they build.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_gcp::BoxError;
use sea_gcp::tasks::{
    CloudTasksClient, Dispatcher, DispatcherOptions, Registry, Task, TaskContext, TaskOutbox, Tasks, TasksSettings,
};
use sea_gcp::testing::cloud_tasks::{FakeCloudTasks, QueueConfig};
use sea_gcp::testing::oidc::TestIssuer;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, TransactionTrait};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Order {
    order_id: i64,
    customer: String,
}

struct Ship;

#[async_trait::async_trait]
impl Task for Ship {
    const NAME: &'static str = "ship-order";
    type Payload = Order;
    type Output = ();
    async fn run(&self, _: Order, _: TaskContext) -> Result<(), BoxError> {
        Ok(())
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn connect(url: &str) -> DatabaseConnection {
    let mut opts = ConnectOptions::new(url.to_string());
    opts.max_connections(16).sqlx_logging(false);
    let db = Database::connect(opts).await.expect("database");
    if url.starts_with("sqlite") {
        db.execute_unprepared("PRAGMA journal_mode=WAL").await.unwrap();
        db.execute_unprepared("PRAGMA synchronous=NORMAL").await.unwrap();
        db.execute_unprepared("PRAGMA busy_timeout=20000").await.unwrap();
    }
    db
}

fn settings(fake_url: &str) -> TasksSettings {
    let mut settings = TasksSettings::default();
    settings.default_queue = "bench".into();
    settings.tasks_domain = "http://127.0.0.1:9".into();
    settings.project_id = Some("bench-project".into());
    settings.invoker_service_account = Some("invoker@bench-project.iam.gserviceaccount.com".into());
    settings.cloud_tasks_endpoint = fake_url.into();
    settings.validate().unwrap();
    settings
}

fn fleet_tasks(fake_url: &str) -> Tasks {
    let registry = Registry::builder().task(Ship).build().unwrap();
    Tasks::new(settings(fake_url), registry, CloudTasksClient::unauthenticated(fake_url)).unwrap()
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is set by `bench_tasks fleet`"))
}

fn unix_micros() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64
}

/// Commit and have this process's dispatcher send the rows at once.
async fn commit(tasks: &Tasks, txn: DatabaseTransaction) {
    tasks.commit_and_send(txn).await.unwrap()
}

/// A fleet member: `dispatcher` runs a dispatcher until killed; `writer` also commits BENCH_ROWS_EACH
/// one-row transactions and writes `id commit_unix_us` lines to BENCH_OUT.
async fn fleet_member(role: &str) {
    let db = connect(&env("BENCH_DB_URL")).await;
    let tasks = fleet_tasks(&env("BENCH_FAKE_URL"));
    let outbox = TaskOutbox::new(env("BENCH_TABLE"));
    let dispatcher =
        Dispatcher::new(tasks.clone(), db.clone(), outbox.clone()).with_options(DispatcherOptions::default());
    let running = tokio::spawn(async move { dispatcher.run_until(std::future::pending()).await });
    if role == "writer" {
        let rows: usize = env("BENCH_ROWS_EACH").parse().unwrap();
        let writer: i64 = env("BENCH_WRITER").parse().unwrap();
        // BENCH_RATE (tasks/s for the whole fleet, 0 = as fast as the writers can commit): each writer
        // commits on a fixed schedule, as an app serving steady traffic does.
        let rate: f64 = std::env::var("BENCH_RATE").ok().and_then(|r| r.parse().ok()).unwrap_or(0.0);
        let writers = env("BENCH_WRITERS").parse::<f64>().unwrap();
        let start = tokio::time::Instant::now();
        let mut lines = String::new();
        for i in 0..rows {
            if rate > 0.0 {
                tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 * writers / rate)).await;
            }
            let order = Order { order_id: writer * 1_000_000 + i as i64, customer: format!("w{writer}") };
            let txn = db.begin().await.unwrap();
            let sea_gcp::tasks::Enqueued::Outboxed { id } =
                tasks.enqueue_in::<Ship, _>(&txn, &outbox, &order).await.unwrap()
            else {
                panic!("not outboxed")
            };
            commit(&tasks, txn).await;
            lines.push_str(&format!("{id} {}\n", unix_micros()));
        }
        std::fs::write(env("BENCH_OUT"), lines).unwrap();
        // Let the last wake's round finish, then exit (the dispatcher processes poll for the rest).
        tokio::time::sleep(Duration::from_secs(1)).await;
        return;
    }
    let _ = running.await;
}

/// The fleet benchmark's orchestrator (see the module docs).
async fn fleet(rows: usize) {
    const DISPATCHERS: usize = 4;
    const WRITERS: usize = 4;
    let url = std::env::var("BENCH_DB_URL").expect("BENCH_DB_URL: the PostgreSQL database the fleet shares");
    let db = connect(&url).await;
    let fake = FakeCloudTasks::start(Arc::new(TestIssuer::generate("bench"))).await;
    let tasks = fleet_tasks(&fake.url());
    let queue = tasks.settings().queue_path("bench");
    fake.create_queue(&queue, QueueConfig::default().with_paused(true));
    let table = format!("bench_fleet_outbox_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let outbox = TaskOutbox::new(&table);
    outbox.create(&db).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let spawn = |role: &str, writer: usize| {
        std::process::Command::new(&exe)
            .env("BENCH_ROLE", role)
            .env("BENCH_DB_URL", &url)
            .env("BENCH_FAKE_URL", fake.url())
            .env("BENCH_TABLE", &table)
            .env("BENCH_ROWS_EACH", (rows / WRITERS).to_string())
            .env("BENCH_WRITER", writer.to_string())
            .env("BENCH_WRITERS", WRITERS.to_string())
            .env("BENCH_OUT", dir.path().join(format!("writer-{writer}")))
            .spawn()
            .unwrap()
    };
    let mut children: Vec<std::process::Child> = (0..DISPATCHERS).map(|i| spawn("dispatcher", i)).collect();
    let started = Instant::now();
    let mut writers: Vec<std::process::Child> = (0..WRITERS).map(|i| spawn("writer", i)).collect();
    let total = rows / WRITERS * WRITERS;
    // Every writer done, then every committed task created (or two minutes without progress).
    for w in &mut writers {
        assert!(w.wait().unwrap().success(), "a writer failed");
    }
    let written = started.elapsed();
    let (mut last, mut since) = (0, Instant::now());
    while fake.tasks(&queue).len() < total && since.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = fake.tasks(&queue).len();
        if now != last {
            (last, since) = (now, Instant::now());
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await; // late duplicate creates, if any, are counted too
    for c in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }
    let held = fake.tasks(&queue);
    let mut committed = std::collections::HashMap::new();
    for w in 0..WRITERS {
        for line in std::fs::read_to_string(dir.path().join(format!("writer-{w}"))).unwrap().lines() {
            let (id, at) = line.split_once(' ').unwrap();
            committed.insert(id.to_string(), at.parse::<i64>().unwrap());
        }
    }
    let held_ids: std::collections::HashSet<&str> = held.iter().map(|t| t.id.as_str()).collect();
    let lost = committed.keys().filter(|id| !held_ids.contains(id.as_str())).count();
    // The fake keys tasks by id and refuses a second create of one: a task created twice would be a
    // second id for one committed row, or a create counted beyond the tasks held.
    let run_twice = (fake.created_count() as usize).saturating_sub(held.len());
    // Commit -> create call: the fake's createTime of each task (read back through its REST API).
    let client = CloudTasksClient::unauthenticated(fake.url());
    let mut latencies: Vec<i64> =
        futures_util::StreamExt::collect::<Vec<_>>(futures_util::StreamExt::buffer_unordered(
            futures_util::stream::iter(committed.iter().map(|(id, at)| {
                let client = client.clone();
                let path = format!("{queue}/tasks/{id}");
                async move {
                    let info = client.get_task(&path).await.ok().flatten()?;
                    let created = chrono::DateTime::parse_from_rfc3339(info.create_time.as_deref()?).ok()?;
                    Some(created.timestamp_micros() - at)
                }
            })),
            64,
        ))
        .await
        .into_iter()
        .flatten()
        .collect();
    latencies.sort_unstable();
    let pct = |p: f64| latencies.get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)));
    let calls = fake.created_count() + fake.refused_duplicates();
    println!(
        "fleet: {DISPATCHERS} dispatcher processes + {WRITERS} writer processes (each with its own dispatcher), one PostgreSQL outbox"
    );
    let rate = std::env::var("BENCH_RATE").ok().filter(|r| r != "0");
    println!(
        "tasks committed: {}, written in {:.1} s ({})",
        committed.len(),
        written.as_secs_f64(),
        rate.map_or("writers as fast as they can commit".to_string(), |r| format!("writers paced at {r} tasks/s"))
    );
    println!(
        "create calls: {calls} = {:.3} x tasks ({} refused as duplicates)",
        calls as f64 / committed.len().max(1) as f64,
        fake.refused_duplicates()
    );
    println!("lost: {lost}, created twice: {run_twice}");
    println!(
        "commit -> create call: median {:.1} ms, p90 {:.1} ms (of {} tasks)",
        pct(0.5).copied().unwrap_or(-1) as f64 / 1e3,
        pct(0.9).copied().unwrap_or(-1) as f64 / 1e3,
        latencies.len()
    );
    outbox.drop(&db).await.unwrap();
}

#[tokio::main]
async fn main() {
    if let Ok(role) = std::env::var("BENCH_ROLE") {
        return fleet_member(&role).await;
    }
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("fleet") {
        return fleet(args.get(2).and_then(|a| a.parse().ok()).unwrap_or(20_000)).await;
    }
    let rows: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let latency_ms: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(50);
    let concurrency: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(512);
    let txns: usize = std::env::var("BENCH_TXNS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    // The cost measurement's transactions are part of the outbox that is dispatched.
    let rows = rows.max(txns);
    let dir = tempfile::tempdir().unwrap();
    let url = std::env::var("BENCH_DB_URL")
        .unwrap_or_else(|_| format!("sqlite://{}?mode=rwc", dir.path().join("bench.sqlite").display()));
    let backend = url.split(':').next().unwrap_or("?").to_string();
    let db = connect(&url).await;

    let issuer = Arc::new(TestIssuer::generate("bench"));
    let fake = FakeCloudTasks::start(issuer).await;
    let settings = settings(&fake.url());
    let queue = settings.queue_path("bench");
    // Paused: the fake holds the tasks (the benchmark measures the outbox, not the worker).
    fake.create_queue(&queue, QueueConfig::default().with_paused(true));
    let registry = Registry::builder().task(Ship).build().unwrap();
    let tasks = Tasks::new(settings, registry, CloudTasksClient::unauthenticated(fake.url())).unwrap();
    let suffix = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let outbox = TaskOutbox::new(format!("bench_task_outbox_{suffix}"));
    outbox.create(&db).await.unwrap();
    let orders = format!("bench_orders_{suffix}");
    let id_col = if backend.starts_with("postgres") {
        "id BIGSERIAL PRIMARY KEY"
    } else if backend.starts_with("mysql") {
        "id BIGINT AUTO_INCREMENT PRIMARY KEY"
    } else {
        "id INTEGER PRIMARY KEY AUTOINCREMENT"
    };
    db.execute_unprepared(&format!("CREATE TABLE {orders} ({id_col}, customer VARCHAR(100) NOT NULL)")).await.unwrap();

    // 1. Cost enqueue_in adds to the caller's transaction (alternating, same run).
    let mut plain = Vec::with_capacity(txns);
    let mut with_task = Vec::with_capacity(txns);
    for i in 0..txns * 2 {
        let enqueue = i % 2 == 1;
        let started = Instant::now();
        let txn = db.begin().await.unwrap();
        txn.execute_unprepared(&format!("INSERT INTO {orders} (customer) VALUES ('c{i}')")).await.unwrap();
        if enqueue {
            tasks
                .enqueue_in::<Ship, _>(&txn, &outbox, &Order { order_id: i as i64, customer: format!("c{i}") })
                .await
                .unwrap();
        }
        txn.commit().await.unwrap();
        if enqueue { with_task.push(started.elapsed()) } else { plain.push(started.elapsed()) }
    }
    let (m_plain, m_with) = (median(plain), median(with_task));

    // 2. Fill the outbox to `rows` committed entries (500 per transaction).
    let have = txns;
    let mut i = have;
    while i < rows {
        let txn = db.begin().await.unwrap();
        for _ in 0..500.min(rows - i) {
            tasks
                .enqueue_in::<Ship, _>(&txn, &outbox, &Order { order_id: i as i64, customer: format!("c{i}") })
                .await
                .unwrap();
            i += 1;
        }
        txn.commit().await.unwrap();
    }
    assert_eq!(outbox.census(&db).await.unwrap(), (rows as u64, 0));

    // 3. Dispatch with a simulated round trip; kill the dispatcher at 40 % and restart it.
    fake.set_latency(Duration::from_millis(latency_ms));
    let options = DispatcherOptions::default()
        .with_concurrency(concurrency)
        .with_batch_size(2000)
        .with_poll_interval(Duration::from_millis(10));
    let started = Instant::now();
    let first = Dispatcher::new(tasks.clone(), db.clone(), outbox.clone()).with_options(options.clone());
    let handle = tokio::spawn(async move { first.run_until(std::future::pending()).await });
    while (fake.created_count() as usize) < rows * 2 / 5 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    handle.abort(); // killed mid-round: some tasks created, their rows not marked
    let _ = handle.await;
    let killed_at = fake.created_count();
    let (pending_at_kill, sent_at_kill) = outbox.census(&db).await.unwrap();
    let second = Dispatcher::new(tasks.clone(), db.clone(), outbox.clone()).with_options(options);
    let mut resent_duplicates = 0;
    loop {
        let report = second.run_once().await.unwrap();
        resent_duplicates += report.duplicates;
        if report.created + report.duplicates + report.failed == 0 {
            break;
        }
    }
    let elapsed = started.elapsed();
    let (pending, sent) = outbox.census(&db).await.unwrap();
    let held = fake.tasks(&queue).len();
    let losses = rows - held.min(rows);
    // Every row's id is held by the fake exactly once (the fake keys tasks by id: a second create is refused).
    let duplicates = fake.created_count() as usize - held;
    assert_eq!((pending, sent as usize), (0, rows), "every row marked sent");
    assert_eq!(losses, 0, "no task lost");
    assert_eq!(duplicates, 0, "no task created twice");

    let rate = rows as f64 / elapsed.as_secs_f64();
    let ceiling = concurrency as f64 / (latency_ms as f64 / 1000.0);
    println!("backend: {backend}");
    println!("rows: {rows}, simulated round trip: {latency_ms} ms per create call, concurrency: {concurrency}");
    println!(
        "dispatch: {rows} tasks in {:.2} s = {rate:.0} tasks/s (ceiling concurrency/latency = {ceiling:.0}/s, {:.2}x of it)",
        elapsed.as_secs_f64(),
        rate / ceiling
    );
    println!(
        "kill at {killed_at} created ({sent_at_kill} marked sent, {pending_at_kill} pending); after restart: {resent_duplicates} re-sends refused as duplicates and counted sent"
    );
    println!("losses: {losses}, duplicate tasks: {duplicates}, fake API calls: {}", fake.api_calls());
    println!(
        "transaction median ({txns} each, alternating): plain {:.3} ms, with enqueue_in {:.3} ms, added {:.3} ms ({:.2}x)",
        m_plain.as_secs_f64() * 1e3,
        m_with.as_secs_f64() * 1e3,
        (m_with.as_secs_f64() - m_plain.as_secs_f64()) * 1e3,
        m_with.as_secs_f64() / m_plain.as_secs_f64()
    );
    outbox.drop(&db).await.unwrap();
    db.execute_unprepared(&format!("DROP TABLE {orders}")).await.unwrap();
}
