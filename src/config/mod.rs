//! Configuration: one [`StoreConfig`] per store (django-gcp's options, names and defaults) and
//! [`Settings`], the named stores (`media`/`default`, `static`/`staticfiles`, and extras) loaded from a
//! TOML file, environment variables or a builder.

mod duration;
mod load;
mod object_parameters;
mod sections;
pub(crate) mod settings;
mod store_config;

pub use duration::{duration_serde, parse_duration};
pub use load::Origin;
pub use object_parameters::ObjectParameters;
pub use sections::{EventSettings, LogSettings, TaskSettings, UploadSettings};
pub use settings::{DEFAULT_FILE, DEFAULT_PREFIX, Settings, SettingsBuilder, canonical_store_key};
pub use store_config::{
    BackendConfig, CHUNK_GRANULARITY, DEFAULT_GZIP_CONTENT_TYPES, PREDEFINED_ACLS, RetryConfig, SigningConfig,
    StoreConfig,
};
