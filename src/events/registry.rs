//! Which handler an event kind goes to: an exact kind, else the longest matching kind prefix.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;

use super::{Event, HandlerError};

/// Handles events of the kinds it is registered for.
#[async_trait]
pub trait EventHandler: Send + Sync + 'static {
    /// Handle one event. `Ok(())` acknowledges it (201).
    async fn handle(&self, event: Event) -> Result<(), HandlerError>;
}

#[async_trait]
impl<F, Fut> EventHandler for F
where
    F: Fn(Event) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    async fn handle(&self, event: Event) -> Result<(), HandlerError> {
        (self)(event).await
    }
}

/// Exact kinds and kind prefixes, each with its handler.
#[derive(Clone, Default)]
pub(super) struct Registry {
    exact: HashMap<String, Arc<dyn EventHandler>>,
    prefixes: Vec<(String, Arc<dyn EventHandler>)>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("exact", &self.exact.keys().collect::<Vec<_>>())
            .field("prefixes", &self.prefixes.iter().map(|(p, _)| p).collect::<Vec<_>>())
            .finish()
    }
}

impl Registry {
    /// Register `handler` for exactly `kind` (replacing an earlier one).
    pub(super) fn exact(&mut self, kind: impl Into<String>, handler: Arc<dyn EventHandler>) {
        self.exact.insert(kind.into(), handler);
    }

    /// Register `handler` for every kind starting with `prefix`.
    pub(super) fn prefix(&mut self, prefix: impl Into<String>, handler: Arc<dyn EventHandler>) {
        let prefix = prefix.into();
        self.prefixes.retain(|(p, _)| *p != prefix);
        self.prefixes.push((prefix, handler));
        self.prefixes.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
    }

    /// The handler for `kind`: exact match first, then the longest prefix.
    pub(super) fn find(&self, kind: &str) -> Option<&Arc<dyn EventHandler>> {
        self.exact
            .get(kind)
            .or_else(|| self.prefixes.iter().find(|(p, _)| kind.starts_with(p.as_str())).map(|(_, h)| h))
    }
}
