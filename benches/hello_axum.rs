//! The floor of `scripts/bench-startup.py`: a minimal axum hello-world on `127.0.0.1:$PORT`, the same
//! runtime and server the complete example uses, with nothing else. It serves only when asked to
//! (`hello_axum serve`): `cargo test --all-targets` runs every bench target once and must not block.

use axum::Router;
use axum::routing::get;

#[tokio::main]
async fn main() {
    if std::env::args().nth(1).as_deref() != Some("serve") {
        println!("hello_axum: the start-up floor of scripts/bench-startup.py; run `hello_axum serve` to serve");
        return;
    }
    let port = std::env::var("PORT").unwrap_or_else(|_| "8000".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await.expect("bind");
    println!("open http://{}/", listener.local_addr().expect("address"));
    let app = Router::new().route("/", get(|| async { "hello" }));
    axum::serve(listener, app).await.expect("serve");
}
