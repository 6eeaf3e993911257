//! A minimal HTTP/1.1 client for talking to gwanje's API in tests.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

/// A response: status and body text.
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Body as text.
    pub body: String,
}

/// Sends `method` to `http://addr{path}` with optional headers.
pub async fn request(
    method: &str,
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<Reply> {
    request_with_body(method, addr, path, headers, "").await
}

/// Like [`request`], with a body (sent with its Content-Length).
pub async fn request_with_body(
    method: &str,
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<Reply> {
    let resp = request_raw(method, addr, path, headers, body).await?;
    Ok(Reply {
        status: resp.status().as_u16(),
        body: String::from_utf8_lossy(resp.body()).into_owned(),
    })
}

/// The whole response, headers and body bytes as sent (e.g. still gzipped).
pub async fn request_raw(
    method: &str,
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<http::Response<Bytes>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(conn);
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = sender
        .send_request(
            req.body(Full::new(Bytes::copy_from_slice(body.as_bytes())))
                .expect("request"),
        )
        .await
        .map_err(std::io::Error::other)?;
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    Ok(http::Response::from_parts(parts, body))
}

/// `GET http://addr{path}`.
pub async fn get(addr: std::net::SocketAddr, path: &str) -> std::io::Result<Reply> {
    request("GET", addr, path, &[]).await
}
