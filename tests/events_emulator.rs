//! End to end with the Pub/Sub emulator: topic + push subscription pointed at the router on loopback
//! through a proxy that adds an OIDC token minted by a test key (the emulator sends none), so every
//! delivery is verified against a fake JWKS. Delivery decoded, ordering keys in order, redelivery after a
//! 503, and no second handler run with the dedup table when an acknowledgement is lost.
#![cfg(all(feature = "events", feature = "testing", feature = "orm"))]

mod events_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sea_gcp::auth::InvokerPolicy;
use sea_gcp::events::{
    CreateEventDedup, DedupTable, Event, EventHandler, EventsRouter, HandlerError, TransactionalHandler,
};
use sea_gcp::pubsub::{OutgoingMessage, PubSubClient, PubSubMessage, PushSubscription};
use sea_gcp::testing::oidc::{BearerProxy, FakeJwks, TestIssuer};
use sea_orm::{ConnectionTrait, DatabaseTransaction, Statement};
use sea_orm_migration::{MigrationTrait, SchemaManager};
use tokio::sync::Mutex;

use events_support::*;

const EMAIL: &str = "push@emulator-project.iam.gserviceaccount.com";
const PROJECT: &str = "emulator-project";

struct Rig {
    client: PubSubClient,
    proxy: BearerProxy,
    _jwks: FakeJwks,
    topic: String,
    subscription: String,
}

/// The router (built by `build` with the policy) behind a token-adding proxy; a topic.
async fn rig(host: &str, build: impl FnOnce(EventsRouter) -> EventsRouter) -> Rig {
    let issuer = Arc::new(TestIssuer::generate("emulator-kid"));
    let jwks = FakeJwks::start(&[&issuer]).await;
    let (listener, base) = listener().await;
    let policy = InvokerPolicy::new(jwks.verifier(), &base).allow_email(EMAIL);
    spawn(listener, build(EventsRouter::new(policy)).into_router());
    let proxy = BearerProxy::start(issuer, EMAIL, &base, &base).await;
    let client = PubSubClient::emulator(host, PROJECT);
    let suffix = unique();
    let topic = format!("topic-{suffix}");
    assert!(client.create_topic(&topic).await.unwrap());
    assert!(!client.create_topic(&topic).await.unwrap(), "a second create reports it exists");
    Rig { client, proxy, _jwks: jwks, topic, subscription: format!("sub-{suffix}") }
}

impl Rig {
    async fn subscribe(&self, path: &str, ordering: bool) {
        let sub = PushSubscription::new(&self.subscription, &self.topic, format!("{}{path}", self.proxy.url()))
            .with_service_account(EMAIL)
            .with_message_ordering(ordering)
            .with_retry_backoff(Duration::from_secs(1), Duration::from_secs(2));
        assert!(self.client.create_push_subscription(&sub).await.unwrap());
        let got = self.client.get_subscription(&self.subscription).await.unwrap().unwrap();
        assert_eq!(got["enableMessageOrdering"].as_bool().unwrap_or(false), ordering);
    }

    async fn teardown(&self) {
        assert!(self.client.delete_subscription(&self.subscription).await.unwrap());
        assert!(self.client.delete_topic(&self.topic).await.unwrap());
        assert!(!self.client.delete_topic(&self.topic).await.unwrap());
    }
}

async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_verified_decoded_and_in_order() {
    let Some(host) = pubsub_emulator() else { return };
    let seen: Arc<Mutex<Vec<(PubSubMessage, Event)>>> = Arc::default();
    let s = seen.clone();
    let rig = rig(&host, |r| {
        r.on("orders", move |event: Event| {
            let s = s.clone();
            async move {
                s.lock().await.push((event.pubsub()?, event));
                Ok(())
            }
        })
    })
    .await;
    rig.subscribe("/events/orders/shop-1?region=eu", true).await;
    let mut ids = Vec::new();
    for i in 0..20 {
        let message = OutgoingMessage::json(&serde_json::json!({ "seq": i }))
            .unwrap()
            .with_attribute("origin", "shop")
            .with_ordering_key("customer-7");
        ids.extend(rig.client.publish(&rig.topic, &[message]).await.unwrap());
    }
    wait_for("20 deliveries", async || seen.lock().await.len() >= 20).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = seen.lock().await;
    assert_eq!(seen.len(), 20, "each message delivered once");
    let seqs: Vec<i64> =
        seen.iter().map(|(m, _)| m.json::<serde_json::Value>().unwrap().unwrap()["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (0..20).collect::<Vec<_>>(), "ordering key honoured");
    let (message, event) = &seen[0];
    assert_eq!(message.message_id, ids[0]);
    assert_eq!(message.attributes["origin"], "shop");
    assert_eq!(message.subscription.as_deref(), Some(rig.client.subscription_path(&rig.subscription).as_str()));
    assert_eq!(event.parameters["region"], "eu");
    assert_eq!((event.kind.as_str(), event.reference.as_str()), ("orders", "shop-1"));
    assert_eq!(event.caller.as_ref().unwrap().email, EMAIL);
    rig.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attribute_only_message_arrives_without_data() {
    let Some(host) = pubsub_emulator() else { return };
    let seen: Arc<Mutex<Vec<PubSubMessage>>> = Arc::default();
    let s = seen.clone();
    let rig = rig(&host, |r| {
        r.on("marks", move |event: Event| {
            let s = s.clone();
            async move {
                s.lock().await.push(event.pubsub()?);
                Ok(())
            }
        })
    })
    .await;
    rig.subscribe("/events/marks/m-1", false).await;
    let message = OutgoingMessage::new(Vec::new()).with_attribute("origin", "shop");
    let ids = rig.client.publish(&rig.topic, &[message]).await.unwrap();
    wait_for("the delivery", async || !seen.lock().await.is_empty()).await;
    let seen = seen.lock().await;
    assert_eq!(seen[0].message_id, ids[0]);
    assert_eq!(seen[0].data, None, "no data, as an unwrapped push of the same message");
    assert_eq!(seen[0].attributes["origin"], "shop");
    rig.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_is_redelivered() {
    let Some(host) = pubsub_emulator() else { return };
    let attempts: Arc<Mutex<Vec<String>>> = Arc::default();
    let a = attempts.clone();
    let rig = rig(&host, |r| {
        r.on("jobs", move |event: Event| {
            let a = a.clone();
            async move {
                let id = event.pubsub()?.message_id;
                let mut attempts = a.lock().await;
                attempts.push(id);
                if attempts.len() == 1 {
                    return Err(HandlerError::retry_later(Duration::from_secs(1), "dependency down"));
                }
                Ok(())
            }
        })
    })
    .await;
    rig.subscribe("/events/jobs/j-1", false).await;
    let ids = rig.client.publish(&rig.topic, &[OutgoingMessage::new(b"work".to_vec())]).await.unwrap();
    wait_for("the redelivery", async || attempts.lock().await.len() >= 2).await;
    let attempts = attempts.lock().await;
    assert_eq!(attempts[..2], [ids[0].clone(), ids[0].clone()], "the same message again after the 503");
    rig.teardown().await;
}

struct Effect {
    table: String,
    runs: Arc<AtomicUsize>,
}

#[async_trait]
impl TransactionalHandler for Effect {
    async fn handle(&self, txn: &DatabaseTransaction, event: &Event) -> Result<(), HandlerError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let sql = format!("INSERT INTO {} (message_id) VALUES (?)", self.table);
        txn.execute_raw(Statement::from_sql_and_values(
            txn.get_database_backend(),
            sql,
            [event.pubsub()?.message_id.into()],
        ))
        .await?;
        Ok(())
    }
}

/// Runs the inner handler, then answers 503 on the first delivery anyway: an acknowledgement lost after
/// the commit.
struct LoseFirstAck<H> {
    inner: H,
    deliveries: Arc<AtomicUsize>,
}

#[async_trait]
impl<H: EventHandler> EventHandler for LoseFirstAck<H> {
    async fn handle(&self, event: Event) -> Result<(), HandlerError> {
        let n = self.deliveries.fetch_add(1, Ordering::SeqCst);
        self.inner.handle(event).await?;
        if n == 0 { Err(HandlerError::retry_later(Duration::from_secs(1), "ack lost")) } else { Ok(()) }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_dedup_table_a_redelivery_does_not_run_the_handler_again() {
    let Some(host) = pubsub_emulator() else { return };
    let dbs = databases().await;
    let db = &dbs[0]; // SQLite; the dedup suite covers every backend
    let suffix = unique();
    let (dedup_table, effects) = (format!("dedup_{suffix}"), format!("effects_{suffix}"));
    CreateEventDedup::with_table(&dedup_table).up(&SchemaManager::new(&db.conn)).await.unwrap();
    db.conn.execute_unprepared(&format!("CREATE TABLE {effects} (message_id VARCHAR(64) NOT NULL)")).await.unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let deliveries = Arc::new(AtomicUsize::new(0));
    let handler = LoseFirstAck {
        inner: DedupTable::with_table(db.conn.clone(), &dedup_table)
            .once(Effect { table: effects.clone(), runs: runs.clone() }),
        deliveries: deliveries.clone(),
    };
    let rig = rig(&host, |r| r.on("payments", handler)).await;
    rig.subscribe("/events/payments/p-1", false).await;
    rig.client.publish(&rig.topic, &[OutgoingMessage::new(b"charge".to_vec())]).await.unwrap();
    wait_for("the redelivery", async || deliveries.load(Ordering::SeqCst) >= 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the handler ran once");
    let row = db
        .conn
        .query_one_raw(Statement::from_string(
            db.conn.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM {effects}"),
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get::<i64>("", "n").unwrap(), 1);
    rig.teardown().await;
}
