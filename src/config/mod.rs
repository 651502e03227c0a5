//! Configuration: one [`StoreConfig`] per store (django-gcp's options, names and defaults) and
//! [`Settings`], the named stores (`media`/`default`, `static`/`staticfiles`, and extras) loaded from a
//! TOML file, environment variables or a builder.

mod duration;
mod object_parameters;
pub(crate) mod settings;
mod store_config;

pub use duration::{duration_serde, parse_duration};
pub use object_parameters::ObjectParameters;
pub use settings::{Settings, SettingsBuilder, canonical_store_key};
pub use store_config::{
    BackendConfig, CHUNK_GRANULARITY, DEFAULT_GZIP_CONTENT_TYPES, PREDEFINED_ACLS, RetryConfig, SigningConfig,
    StoreConfig,
};
