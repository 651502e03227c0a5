//! The wiring of an authenticated Pub/Sub push handler (`scripts/count-wiring.py` counts what lies
//! outside the `// app {` ... `// }` blocks). Tokens are verified against `[events] invoker_emails`
//! and `base_url` from the settings.

use sea_gcp::Gcp;
use sea_gcp::events::{Event, HandlerError};

async fn record_order(event: Event) -> Result<(), HandlerError> {
    // app {
    println!("order {}: {}", event.reference, event.payload);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), sea_gcp::BoxError> {
    let db = sea_orm::Database::connect("sqlite::memory:").await?;
    // }
    let gcp = Gcp::load(db)?.on_event("orders", record_order).build().await?;
    let app = axum::Router::new().merge(gcp.router());
    // app {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
    axum::serve(listener, app).await?;
    Ok(())
}
// }
