//! Misbehaving TCP servers: they hang, reset, speak garbage, never end a
//! body, or answer a line protocol. Every loop is bounded in bytes and time.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::Server;

/// What the server does with each connection.
#[derive(Debug, Clone, Copy)]
pub enum Behaviour {
    /// Accept, read, never answer (held for 60 s at most).
    Hang,
    /// Read the request, then reset the connection.
    Reset,
    /// Read the request, answer bytes that are not HTTP.
    Garbage,
    /// Answer an HTTP response whose chunked body never ends (capped at 256 MiB / 30 s).
    EndlessBody,
    /// Answer `+PONG` to each `PING` line.
    Pong,
    /// Greet with one line, then close.
    Farewell,
}

/// Starts a server with `behaviour` on 127.0.0.1.
pub async fn serve(behaviour: Behaviour) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        loop {
            let Ok((conn, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(handle(conn, behaviour));
        }
    });
    Server::new(addr, task)
}

async fn read_some(conn: &mut TcpStream) -> Vec<u8> {
    let mut buf = vec![0u8; 8192];
    let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or(0);
    buf.truncate(n);
    buf
}

async fn handle(mut conn: TcpStream, behaviour: Behaviour) {
    match behaviour {
        Behaviour::Hang => {
            let _ = read_some(&mut conn).await;
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        Behaviour::Reset => {
            let _ = read_some(&mut conn).await;
            let _ = socket2::SockRef::from(&conn).set_linger(Some(Duration::ZERO));
            drop(conn);
        }
        Behaviour::Garbage => {
            let _ = read_some(&mut conn).await;
            let _ = conn
                .write_all(b"\x00\x01 this is not HTTP at all \xff\r\n\r\n")
                .await;
        }
        Behaviour::EndlessBody => {
            let _ = read_some(&mut conn).await;
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await;
            let chunk = format!("{:x}\r\n{}\r\n", 65536, "y".repeat(65536));
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            for _ in 0..4096 {
                if tokio::time::Instant::now() > deadline
                    || conn.write_all(chunk.as_bytes()).await.is_err()
                {
                    return;
                }
            }
        }
        Behaviour::Farewell => {
            let _ = conn.write_all(b"+OK bye\r\n").await;
        }
        Behaviour::Pong => {
            for _ in 0..100 {
                let got = read_some(&mut conn).await;
                if got.is_empty() {
                    return;
                }
                if got.windows(4).any(|w| w == b"PING")
                    && conn.write_all(b"+PONG\r\n").await.is_err()
                {
                    return;
                }
            }
        }
    }
}
