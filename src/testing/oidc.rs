//! Google's OIDC signing side, local: [`TestIssuer`] mints ID tokens, [`FakeJwks`] serves their keys,
//! [`BearerProxy`] adds a token to requests that carry none. Here with what a test steers on the JWKS
//! server: its fetch count, `Cache-Control`, latency and faults ([`JwksFault`]).

use std::sync::atomic::Ordering;
use std::time::Duration;

pub use crate::local::oidc::*;

impl FakeJwks {
    /// How many times the JWKS was fetched.
    pub fn fetches(&self) -> u64 {
        self.state.fetches.load(Ordering::SeqCst)
    }

    /// Serve `value` as `Cache-Control`.
    pub fn set_cache_control(&self, value: &str) {
        *self.state.cache_control.lock().unwrap() = value.into();
    }

    /// Delay each response by `delay` (to make concurrent cold-cache requests overlap).
    pub fn set_delay(&self, delay: Duration) {
        *self.state.delay.lock().unwrap() = delay;
    }

    /// Answer 500 while `failing` (`set_fault(JwksFault::ServerError)`, or `JwksFault::None`).
    pub fn set_failing(&self, failing: bool) {
        self.set_fault(if failing { JwksFault::ServerError } else { JwksFault::None });
    }

    /// Answer every fetch from now on as `fault` says (each is still counted).
    pub fn set_fault(&self, fault: JwksFault) {
        *self.state.fault.lock().unwrap() = fault;
    }
}
