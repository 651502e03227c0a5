//! Events benchmark (run with `scripts/bench-events.sh`, which also measures `openssl speed rsa2048`):
//! - raw ID-token verification rate on one core (warm JWKS cache);
//! - pushes per second through the events router on loopback, with verification and with
//!   authentication disabled, interleaved in one run with the same client and the same requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sea_gcp::auth::{InvokerPolicy, JwksCache, JwksOptions, OidcVerifier, VerifierOptions, audiences_for};
use sea_gcp::events::{Event, EventsRouter};
use sea_gcp::pubsub::{PubSubMessage, make_pubsub_message};
use sea_gcp::testing::oidc::{FakeJwks, TestIssuer};

const EMAIL: &str = "push@bench.iam.gserviceaccount.com";
const PATH: &str = "/events/orders/o-1?shard=1";
const CONCURRENCY: usize = 32;
const ROUND: Duration = Duration::from_secs(4);

/// CPU time (user + system) of the calling thread, from /proc (Linux; None elsewhere).
fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let after_comm = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // utime and stime (fields 14 and 15 of stat(5)) are at 11 and 12 after the command name; 100 ticks/s.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Verifications per wall-clock second and per CPU second of this thread (`openssl speed` divides by
/// CPU time too, so the ratio to it is fair on a shared machine).
fn verify_rate(issuer: &TestIssuer) -> (f64, Option<f64>) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let jwks = FakeJwks::start(&[issuer]).await;
        let verifier = no_memory(&jwks);
        let audiences = audiences_for("https://bench.example.com", PATH);
        let token = issuer.mint(&issuer.claims(&audiences[0], EMAIL));
        verifier.verify(&token, &audiences).await.unwrap(); // warm the cache
        let start = Instant::now();
        let cpu_start = thread_cpu();
        let mut n = 0u64;
        while start.elapsed() < Duration::from_secs(3) {
            for _ in 0..100 {
                std::hint::black_box(verifier.verify(&token, &audiences).await.unwrap());
            }
            n += 100;
        }
        let wall = n as f64 / start.elapsed().as_secs_f64();
        let cpu = match (cpu_start, thread_cpu()) {
            (Some(a), Some(b)) if b > a => Some(n as f64 / (b - a).as_secs_f64()),
            _ => None,
        };
        (wall, cpu)
    })
}

/// A verifier that checks every signature (no verified-token memory).
fn no_memory(jwks: &FakeJwks) -> OidcVerifier {
    OidcVerifier::new(
        JwksCache::new(jwks.url(), JwksOptions::default()),
        VerifierOptions::default().with_verified_cache_capacity(0),
    )
}

async fn serve(policy: InvokerPolicy, handled: Arc<AtomicU64>) -> String {
    let router = EventsRouter::new(policy)
        .on("orders", move |event: Event| {
            let handled = handled.clone();
            async move {
                let message = event.pubsub()?;
                std::hint::black_box(message);
                handled.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
        })
        .into_router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

async fn load(url: &str, token: &str, body: &bytes::Bytes) -> f64 {
    let client = reqwest::Client::builder().pool_max_idle_per_host(CONCURRENCY).build().unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + ROUND;
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (client, url, token, body, done) =
                (client.clone(), url.to_owned(), token.to_owned(), body.clone(), done.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let r = client
                        .post(&url)
                        .bearer_auth(&token)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 201);
                    let _ = r.bytes().await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let start = Instant::now();
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn router_rates(issuer: &TestIssuer) -> (f64, f64, f64) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let jwks = FakeJwks::start(&[issuer]).await;
        let handled = Arc::new(AtomicU64::new(0));
        // Both routers get the same external base URL, so the same token and body go to both.
        let base = "https://bench.example.com";
        let verified = serve(InvokerPolicy::new(jwks.verifier(), base).allow_email(EMAIL), handled.clone()).await;
        let every = serve(InvokerPolicy::new(no_memory(&jwks), base).allow_email(EMAIL), handled.clone()).await;
        let open = serve(InvokerPolicy::disabled(), handled.clone()).await;
        let token = issuer.mint(&issuer.claims(&format!("{base}{PATH}"), EMAIL));
        let body = bytes::Bytes::from(
            serde_json::to_vec(&make_pubsub_message(
                &PubSubMessage::new(br#"{"order":42,"items":[1,2,3]}"#.to_vec()).with_attribute("origin", "shop"),
            ))
            .unwrap(),
        );
        // Warm-up (JWKS fetch, connection pools).
        let _ = load(&format!("{verified}{PATH}"), &token, &body).await;
        let _ = load(&format!("{open}{PATH}"), &token, &body).await;
        let _ = load(&format!("{every}{PATH}"), &token, &body).await;
        let (mut on, mut full, mut off) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..3 {
            on.push(load(&format!("{verified}{PATH}"), &token, &body).await);
            full.push(load(&format!("{every}{PATH}"), &token, &body).await);
            off.push(load(&format!("{open}{PATH}"), &token, &body).await);
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            v[v.len() / 2]
        };
        (median(&mut on), median(&mut full), median(&mut off))
    })
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists benches; nothing to list here
    }
    let issuer = TestIssuer::generate("bench-kid");
    let (verify, verify_cpu) = verify_rate(&issuer);
    println!(
        "events/verify_rs256_one_core: {:.0} tokens/s per CPU second ({verify:.0} per wall-clock second)",
        verify_cpu.unwrap_or(verify)
    );
    let (on, full, off) = router_rates(&issuer);
    println!(
        "events/router_verified: {on:.0} pushes/s ({CONCURRENCY} concurrent, loopback, median of 3 x {}s; a reused token, as a push sender sends it)",
        ROUND.as_secs()
    );
    println!("events/router_verified_every_signature: {full:.0} pushes/s (RSA verification on every request)");
    println!("events/router_auth_disabled: {off:.0} pushes/s");
    println!("events/verification_cost: {:.1}% of throughput (goal <= 25%)", (1.0 - on / off) * 100.0);
    println!("events/verification_cost_every_signature: {:.1}% of throughput", (1.0 - full / off) * 100.0);
}
