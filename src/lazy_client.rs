//! An HTTP client built on first use. Building a `reqwest::Client` loads the system's root
//! certificates (hundreds of files); an application that builds several clients at start-up, most of
//! them for calls it may never make, would pay for all of them before its first answer.

use std::sync::{Arc, OnceLock};

/// A `reqwest::Client` made by `make` the first time it is needed, shared by every clone.
#[derive(Clone)]
pub(crate) struct LazyClient {
    cell: Arc<OnceLock<reqwest::Client>>,
    make: fn() -> reqwest::Client,
}

impl LazyClient {
    /// A client that `make` will build.
    pub(crate) fn new(make: fn() -> reqwest::Client) -> Self {
        Self { cell: Arc::default(), make }
    }

    /// The client, built now if it was not yet.
    pub(crate) fn get(&self) -> &reqwest::Client {
        self.cell.get_or_init(self.make)
    }
}

impl std::fmt::Debug for LazyClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyClient").field("built", &self.cell.get().is_some()).finish()
    }
}
