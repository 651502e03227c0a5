//! Task outbox benchmark (run by `scripts/bench-tasks.sh`): the dispatch rate of committed outbox rows
//! against the Cloud Tasks fake with a simulated round trip per create call, with the dispatcher killed
//! part-way and restarted (zero losses and zero duplicate tasks checked), and the median cost
//! `enqueue_in` adds to the caller's transaction against the same transaction without it.
//!
//! Usage: bench_tasks [ROWS] [LATENCY_MS] [CONCURRENCY]   (defaults 20000, 50, 512)
//! Env:   BENCH_DB_URL (default a fresh SQLite file); BENCH_TXNS (default 2000 transactions per variant).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_gcp::BoxError;
use sea_gcp::tasks::{
    CloudTasksClient, Dispatcher, DispatcherOptions, Registry, Task, TaskContext, TaskOutbox, Tasks, TasksSettings,
};
use sea_gcp::testing::cloud_tasks::{FakeCloudTasks, QueueConfig};
use sea_gcp::testing::oidc::TestIssuer;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, TransactionTrait};
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

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
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
    let settings = TasksSettings::builder()
        .with_default_queue("bench")
        .with_tasks_domain("http://127.0.0.1:9")
        .with_project_id("bench-project")
        .with_invoker_service_account("invoker@bench-project.iam.gserviceaccount.com")
        .with_cloud_tasks_endpoint(fake.url())
        .build()
        .unwrap();
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
