//! A loopback TCP proxy that caps each connection's server-to-client bytes at a fixed rate, standing in
//! for the per-connection throughput of GCS over the internet. Used by `scripts/bench-sliced-download.py`.
//!
//! ```text
//! throttle_proxy UPSTREAM_PORT MIB_PER_SECOND     # prints the 127.0.0.1 port it listens on
//! ```
//! It listens on 127.0.0.1 only and connects only to 127.0.0.1:UPSTREAM_PORT. Client-to-server bytes are
//! copied as they come; server-to-client bytes are paced so that no connection goes faster than the
//! rate (measured from the connection's first byte).

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn paced(mut from: tokio::net::tcp::OwnedReadHalf, mut to: tokio::net::tcp::OwnedWriteHalf, rate: f64) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut start: Option<Instant> = None;
    let mut sent = 0u64;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let begun = *start.get_or_insert_with(Instant::now);
        sent += n as u64;
        let due = begun + Duration::from_secs_f64(sent as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(port), Some(mibs)) = (args.first(), args.get(1)) else {
        panic!("usage: throttle_proxy UPSTREAM_PORT MIB_PER_SECOND");
    };
    let upstream = format!("127.0.0.1:{}", port.parse::<u16>().expect("upstream port"));
    let rate = mibs.parse::<f64>().expect("MiB per second") * 1024.0 * 1024.0;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1");
    println!("{}", listener.local_addr().expect("address").port());
    loop {
        let Ok((client, _)) = listener.accept().await else { continue };
        let upstream = upstream.clone();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(&upstream).await else { return };
            let _ = (client.set_nodelay(true), server.set_nodelay(true));
            let (mut client_read, client_write) = client.into_split();
            let (server_read, mut server_write) = server.into_split();
            let up = tokio::spawn(async move {
                let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                let _ = server_write.shutdown().await;
            });
            paced(server_read, client_write, rate).await;
            up.abort();
        });
    }
}
