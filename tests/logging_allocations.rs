#![cfg(feature = "logging")]
//! At most one heap allocation per event in the steady state (counted by a global allocator; the only test
//! in this binary, so nothing else allocates meanwhile on this thread's behalf).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::{Arc, Mutex};

use sea_gcp::logging::{CloudLoggingLayer, LoggingOptions};
use tracing_subscriber::layer::SubscriberExt as _;

struct Counting;

thread_local! {
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Lines go to a preallocated buffer that is cleared, never grown, in the measured loop.
#[derive(Clone)]
struct Reused(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for &Reused {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut v = self.0.lock().unwrap();
        v.clear();
        v.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Reused {
    type Writer = &'a Reused;
    fn make_writer(&'a self) -> &'a Reused {
        self
    }
}

#[test]
fn at_most_one_allocation_per_event() {
    let sink = Reused(Arc::new(Mutex::new(Vec::with_capacity(64 * 1024))));
    let layer =
        CloudLoggingLayer::new(LoggingOptions::default().with_service_context("svc", None)).with_writer(sink.clone());
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("request", user = "u-1", labels.tenant = "acme");
        let _entered = span.enter();
        let log = |i: u64| {
            tracing::info!(
                order = i,
                amount = 12.5,
                paid = true,
                customer = "Zoë",
                labels.channel = "web",
                "order placed {i}"
            );
            let e = std::io::Error::other("disk full");
            tracing::error!(error = &e as &dyn std::error::Error, order = i, "save failed");
        };
        for i in 0..100 {
            log(i);
        }
        let before = COUNT.with(Cell::get);
        let n = 1_000;
        for i in 0..n {
            log(i);
        }
        let allocations = COUNT.with(Cell::get) - before;
        // Two events per round; the io::Error itself is one allocation per round (made by the test).
        let per_event = (allocations - n) as f64 / (2 * n) as f64;
        println!("{per_event} allocations per event");
        assert!(per_event <= 1.0, "{per_event} allocations per event ({allocations} in {n} rounds)");
        let line = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert!(line.contains("\"message\":\"save failed\""), "{line}");
    });
}
