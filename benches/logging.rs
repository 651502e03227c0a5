//! Cost per event of `CloudLoggingLayer` against tracing-subscriber's own JSON formatter, both writing the
//! same events (inside the same span) to `io::sink`, in one run; then heap allocations per event in the
//! steady state, counted by a global allocator.
//!
//! `cargo bench --bench logging --features logging`

use std::alloc::{GlobalAlloc, Layout, System};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use sea_gcp::logging::{CloudLoggingLayer, LoggingOptions};
use tracing_subscriber::layer::SubscriberExt as _;

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn event(i: u64) {
    tracing::info!(order = i, amount = 12.5, paid = true, customer = "Zoë", labels.channel = "web", "order placed");
}

fn ours() -> impl tracing::Subscriber + Send + Sync {
    let options = LoggingOptions::default().with_service_context("bench", None);
    tracing_subscriber::registry().with(CloudLoggingLayer::new(options).with_writer(io::sink))
}

fn theirs() -> impl tracing::Subscriber + Send + Sync {
    tracing_subscriber::registry().with(
        tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_file(true)
            .with_line_number(true)
            .with_writer(io::sink),
    )
}

fn allocations_per_event(subscriber: impl tracing::Subscriber + Send + Sync) -> f64 {
    const N: u64 = 10_000;
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("request", user = "u-1", route = "/orders");
        let _entered = span.enter();
        for i in 0..1_000 {
            event(i);
        }
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        for i in 0..N {
            event(i);
        }
        (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / N as f64
    })
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("logging_event");
    for (name, subscriber) in [
        ("cloud_logging_layer", Box::new(ours()) as Box<dyn tracing::Subscriber + Send + Sync>),
        ("fmt_json_layer", Box::new(theirs())),
    ] {
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", user = "u-1", route = "/orders");
            let _entered = span.enter();
            let mut i = 0u64;
            group.bench_function(name, |b| {
                b.iter(|| {
                    i += 1;
                    event(i)
                })
            });
        });
    }
    group.finish();
    println!("allocations per event, steady state: cloud_logging_layer {:.2}", allocations_per_event(ours()));
    println!("allocations per event, steady state: fmt_json_layer {:.2}", allocations_per_event(theirs()));
}

criterion_group!(benches, bench);
criterion_main!(benches);
