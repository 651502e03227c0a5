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
pub(crate) use settings::canonical_store_key;
pub use settings::{Settings, SettingsBuilder};
pub(crate) use store_config::CHUNK_GRANULARITY;
pub use store_config::{BackendConfig, RetryConfig, SigningConfig, StoreConfig};
