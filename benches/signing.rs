//! Signing throughput: RSA URLs on one core, a batch on all cores, HMAC URLs, cached repeated URLs, the
//! raw RSA signature of aws-lc-rs (used) against ring (measured for the choice), and the raw HMAC-SHA256
//! rate over 256-byte inputs with the crates the HMAC signer uses (`hmac` + `sha2`), the yardstick of
//! the HMAC URL rate.
//!
//! A hand-rolled timer (harness = false): each figure runs for `SIGNING_BENCH_SECS` seconds (default 5)
//! after a short warm-up and prints `RESULT <name> <per-second>` lines that `scripts/bench-signing.sh`
//! turns into BENCHMARKS.md.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_gcp::signing::{
    HmacSigner, ServiceAccountKey, ServiceAccountKeySigner, Signer, UrlCache, V4Request, sign_url_blocking,
    sign_urls_parallel_with,
};

/// `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it, and then every
/// figure runs briefly as a smoke test (the code paths work) rather than as a measurement.
fn smoke_test() -> bool {
    !std::env::args().any(|a| a == "--bench")
}

fn seconds() -> f64 {
    if smoke_test() {
        return 0.05;
    }
    std::env::var("SIGNING_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(5.0)
}

/// CPU time (user + system) of the calling thread, from /proc (Linux; None elsewhere).
fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let after_comm = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // Fields 14 and 15 of stat(5) (utime, stime) are at 11 and 12 after the command name; 100 ticks/s.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Run `f` (which does `per_call` operations) repeatedly for the configured time and print operations per
/// wall-clock second and, for single-threaded figures, per CPU second of this thread (what one core does
/// when it is ours alone; `openssl speed` also divides by CPU time).
fn measure(name: &str, per_call: u64, single_threaded: bool, mut f: impl FnMut()) -> f64 {
    let warm = Instant::now();
    let warm_up = if smoke_test() { Duration::ZERO } else { Duration::from_millis(300) };
    while warm.elapsed() < warm_up {
        f();
    }
    let budget = Duration::from_secs_f64(seconds());
    let cpu_start = thread_cpu();
    let start = Instant::now();
    let mut ops = 0u64;
    while start.elapsed() < budget {
        f();
        ops += per_call;
    }
    let rate = ops as f64 / start.elapsed().as_secs_f64();
    println!("RESULT {name} {rate:.1}");
    if single_threaded
        && let (Some(a), Some(b)) = (cpu_start, thread_cpu())
        && b > a
    {
        println!("RESULT {name}_cpu {:.1}", ops as f64 / (b - a).as_secs_f64());
    }
    rate
}

fn key_file() -> PathBuf {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/conformance/test_service_account.not-a-test.json");
    assert!(p.is_file(), "dummy key missing at {}", p.display());
    p
}

fn request(i: usize) -> V4Request {
    V4Request {
        bucket: "my-app-media".into(),
        object: Some(format!("uploads/2026/11/photo-{i:06}.jpg")),
        expiration: Duration::from_secs(3600),
        headers: [("x-goog-if-generation-match".to_string(), "0".to_string())].into(),
        ..Default::default()
    }
}

fn main() {
    let now: DateTime<Utc> = Utc::now();
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("RESULT threads {threads}");
    let key = ServiceAccountKey::from_file(key_file()).unwrap();
    let rsa = ServiceAccountKeySigner::new(&key).unwrap();
    let message = b"GOOG4-RSA-SHA256\n20261127T000000Z\n20261127/auto/storage/goog4_request\n\
                    00e2fb794ea93d7adb703edaebdd509821fcc7d4f1a79ac5c8d2b394df109320";

    // Raw RSA-2048 PKCS#1 v1.5 SHA-256 signatures: aws-lc-rs (what we use) and ring (the alternative).
    measure("rsa_sign_aws_lc_rs", 1, true, || {
        black_box(rsa.sign_blocking(black_box(message)).unwrap());
    });
    {
        use base64::Engine as _;
        let body: String = key.private_key.lines().filter(|l| !l.starts_with("-----")).collect::<Vec<_>>().concat();
        let der = base64::engine::general_purpose::STANDARD.decode(body).unwrap();
        let ring_key = ring::signature::RsaKeyPair::from_pkcs8(&der).unwrap();
        let rng = ring::rand::SystemRandom::new();
        let mut sig = vec![0u8; ring_key.public().modulus_len()];
        measure("rsa_sign_ring", 1, true, || {
            ring_key.sign(&ring::signature::RSA_PKCS1_SHA256, &rng, black_box(message), &mut sig).unwrap();
            black_box(&sig);
        });
    }

    // Whole signed URLs (canonical request, string to sign, signature, URL), one core.
    let requests: Vec<V4Request> = (0..1024).map(request).collect();
    let mut i = 0usize;
    measure("rsa_url_one_core", 1, true, || {
        i = (i + 1) % requests.len();
        black_box(sign_url_blocking(&rsa, &requests[i], now).unwrap());
    });

    // A list page: 64 URLs per batch, on all cores and (for the ratio) on one.
    let batch = &requests[..64];
    measure("rsa_batch64_one_thread", 64, true, || {
        black_box(sign_urls_parallel_with(&rsa, batch, now, 1).unwrap());
    });
    measure("rsa_batch64_all_cores", 64, false, || {
        black_box(sign_urls_parallel_with(&rsa, batch, now, threads).unwrap());
    });

    // Raw HMAC-SHA256 over 256-byte inputs, a fresh 32-byte key each time (key setup included), with the
    // same crates the HMAC signer uses.
    {
        use hmac::{Hmac, Mac};
        let key = [7u8; 32];
        let input = [0x5au8; 256];
        measure("hmac_sha256_256b_one_core", 1, true, || {
            let mut m = Hmac::<sha2::Sha256>::new_from_slice(black_box(&key)).unwrap();
            m.update(black_box(&input));
            black_box(m.finalize().into_bytes());
        });
    }

    let hmac = HmacSigner::new(
        "GOOG1EXAMPLEACCESSIDEXAMPLEACCESSIDEXAMPLEACCESSIDEXAMPLE",
        "bm90LWEtcmVhbC1zZWNyZXQtYXQtYWxsLW5vdC1hdC1hbGw",
    )
    .unwrap();
    let mut i = 0usize;
    measure("hmac_url_one_core", 1, true, || {
        i = (i + 1) % requests.len();
        black_box(sign_url_blocking(&hmac, &requests[i], now).unwrap());
    });
    let big: Vec<V4Request> = (0..4096).map(request).collect();
    measure("hmac_batch4096_one_thread", big.len() as u64, true, || {
        black_box(sign_urls_parallel_with(&hmac, &big, now, 1).unwrap());
    });
    measure("hmac_batch4096_all_cores", big.len() as u64, false, || {
        black_box(sign_urls_parallel_with(&hmac, &big, now, threads).unwrap());
    });
    // Around the one-thread threshold: below it a batch stays on one thread, above it uses all cores.
    for n in [128usize, 256, 1024, 2048] {
        let batch = &big[..n];
        measure(&format!("hmac_batch{n}_one_thread"), n as u64, true, || {
            black_box(sign_urls_parallel_with(&hmac, batch, now, 1).unwrap());
        });
        measure(&format!("hmac_batch{n}_all_cores"), n as u64, false, || {
            black_box(sign_urls_parallel_with(&hmac, batch, now, threads).unwrap());
        });
    }

    // Batches against one-by-one signing, interleaved: the machine's speed drifts during a run (other
    // tenants of the host), so each round measures one-by-one signing right before the batch, the
    // ratios are taken per round, and the median of the rounds is printed.
    let rounds = if smoke_test() { 1 } else { 5 };
    let slice = Duration::from_secs_f64((seconds() / 3.0).max(0.05));
    let timed = |per_call: u64, f: &mut dyn FnMut()| {
        let start = Instant::now();
        let mut ops = 0u64;
        while start.elapsed() < slice {
            f();
            ops += per_call;
        }
        ops as f64 / start.elapsed().as_secs_f64()
    };
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    for n in [128usize, 256, 1024, 2048, 4096] {
        let batch = &big[..n];
        let (mut all, mut single) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let mut i = 0usize;
            let one = timed(1, &mut || {
                i = (i + 1) % requests.len();
                black_box(sign_url_blocking(&hmac, &requests[i], now).unwrap());
            });
            all.push(
                timed(n as u64, &mut || {
                    black_box(sign_urls_parallel_with(&hmac, batch, now, threads).unwrap());
                }) / one,
            );
            single.push(
                timed(n as u64, &mut || {
                    black_box(sign_urls_parallel_with(&hmac, batch, now, 1).unwrap());
                }) / one,
            );
        }
        println!("RESULT hmac_batch{n}_vs_one_by_one {:.3}", median(all));
        println!("RESULT hmac_batch{n}_one_thread_vs_one_by_one {:.3}", median(single));
    }

    // The same URL for the same object again (cache hit), one core.
    let signer: Arc<dyn Signer> = Arc::new(ServiceAccountKeySigner::new(&key).unwrap());
    let cache = UrlCache::new(signer, Duration::from_secs(900)).unwrap();
    for r in &requests {
        cache.url_blocking(r, Some(1_764_201_600_123_456), now).unwrap();
    }
    let mut i = 0usize;
    measure("cached_url_one_core", 1, true, || {
        i = (i + 1) % requests.len();
        black_box(cache.url_blocking(&requests[i], Some(1_764_201_600_123_456), now).unwrap());
    });
}
