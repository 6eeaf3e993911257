//! HTTP/HTTPS probe with per-phase timings, a fresh connection per probe,
//! content and JSON assertions, a capped body read and the personal-data guard.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::net::{self, SystemResolver};
use super::outcome::{Failure, HttpDetails};
use super::personal_data::contains_registration_number;
use super::tls::TlsClient;
use crate::core::FailureKind;
use crate::plan::{HttpSpec, HttpVersion, JsonExpectation};

const USER_AGENT: &str = concat!("gwanje/", env!("CARGO_PKG_VERSION"));

/// An HTTP probe prepared once per target.
#[derive(Debug)]
pub struct HttpProbe {
    spec: HttpSpec,
    alpn: &'static [&'static [u8]],
    // Built on first use: plain-http targets never need one.
    tls: OnceLock<Result<Arc<TlsClient>, super::tls::TlsSetupError>>,
}

impl HttpProbe {
    /// Prepares the probe; a bad CA file is reported by every probe run.
    pub fn new(spec: &HttpSpec) -> Self {
        let alpn: &'static [&'static [u8]] = match spec.version {
            HttpVersion::Auto => &[b"h2", b"http/1.1"],
            HttpVersion::Http1 => &[b"http/1.1"],
            HttpVersion::Http2 => &[b"h2"],
        };
        HttpProbe {
            spec: spec.clone(),
            alpn,
            tls: OnceLock::new(),
        }
    }

    /// Runs one probe, recording what it saw into `rec` as it goes, so a
    /// timeout still reports the phases that finished. `own` is gwanje's
    /// own listener, which no redirect may lead to.
    pub async fn run(
        &self,
        resolver: &SystemResolver,
        own: Option<SocketAddr>,
        rec: &mut HttpDetails,
    ) -> Result<(), Failure> {
        let spec = &self.spec;
        if !spec.all_addresses {
            return self.chain(resolver, own, None, rec).await;
        }
        let host = spec.url.host_str().unwrap_or_default();
        let t = Instant::now();
        let addrs = net::resolve_recorded(resolver, host, &mut rec.lookup).await;
        rec.phases.resolve += t.elapsed().as_secs_f64();
        let addrs = addrs?;
        // Every backend must pass: one bad address behind a name fails the probe.
        for ip in addrs {
            let mut one = HttpDetails::default();
            let result = self.chain(resolver, own, Some(ip), &mut one).await;
            let failed = result.is_err();
            let (resolve, lookup) = (rec.phases.resolve, rec.lookup);
            *rec = one;
            rec.phases.resolve += resolve;
            rec.lookup = lookup;
            if failed {
                return result
                    .map_err(|f| Failure::new(f.kind, format!("address {ip}: {}", f.detail)));
            }
        }
        Ok(())
    }

    /// Follows the redirect chain from the configured URL, the way browsers
    /// and blackbox_exporter do, without handing secrets to anyone else.
    async fn chain(
        &self,
        resolver: &SystemResolver,
        own: Option<SocketAddr>,
        pinned: Option<IpAddr>,
        rec: &mut HttpDetails,
    ) -> Result<(), Failure> {
        let spec = &self.spec;
        let mut url = spec.url.clone();
        let mut hop = Hop {
            method: spec.method.clone(),
            body: spec.body.as_deref(),
            to_origin: true,
            method_changed: false,
            guard: None,
        };
        loop {
            // With all_addresses, hops within the origin stay on the backend under test.
            let ip = pinned.filter(|_| hop.to_origin);
            let response = self.exchange(resolver, &url, &hop, ip, rec).await?;
            let status = response.status;
            let Some(location) = response
                .location
                .clone()
                .filter(|_| spec.follow_redirects && matches!(status, 301 | 302 | 303 | 307 | 308))
            else {
                return self.check(status, &response, rec);
            };
            if rec.redirects >= spec.max_redirects {
                return Err(protocol(format!(
                    "more than {} redirects",
                    spec.max_redirects
                )));
            }
            let next = url
                .join(&location)
                .map_err(|e| protocol(format!("bad redirect location: {e}")))?;
            check_redirect(&url, &next, spec.allow_https_downgrade)?;
            // 303 always, and 301/302 after a POST, become a GET without a body.
            if (status == 303 && hop.method != http::Method::HEAD)
                || (matches!(status, 301 | 302) && hop.method == http::Method::POST)
            {
                hop.method_changed |= hop.method != http::Method::GET || hop.body.is_some();
                hop.method = http::Method::GET;
                hop.body = None;
            }
            hop.to_origin = next.origin() == spec.url.origin();
            hop.guard = own;
            url = next;
            rec.redirects += 1;
        }
    }

    fn check(
        &self,
        status: u16,
        response: &Response,
        rec: &mut HttpDetails,
    ) -> Result<(), Failure> {
        let spec = &self.spec;
        let body = &response.body[..];
        let status_ok = if spec.valid_status.is_empty() {
            (200..300).contains(&status)
        } else {
            spec.valid_status.contains(&status)
        };
        // The guard comes first: a leak matters more than a wrong status.
        if spec.personal_data_guard
            && contains_registration_number(body, response.content_type.as_deref())
        {
            rec.personal_data = true;
            return Err(Failure::new(
                FailureKind::PersonalData,
                "response carries a resident registration number (content not logged)",
            ));
        }
        if !status_ok {
            return Err(Failure::new(
                FailureKind::Status,
                format!("status {status} is not valid"),
            ));
        }
        for p in &spec.body_must_match {
            if !p.0.is_match(body) {
                rec.failed_due_to_regex = true;
                return Err(Failure::new(
                    FailureKind::Assertion,
                    format!("body does not match {:?}", p.0.as_str()),
                ));
            }
        }
        for p in &spec.body_must_not_match {
            if p.0.is_match(body) {
                rec.failed_due_to_regex = true;
                return Err(Failure::new(
                    FailureKind::Assertion,
                    format!("body matches {:?}", p.0.as_str()),
                ));
            }
        }
        if !spec.json.is_empty() {
            let doc: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
                Failure::new(FailureKind::Assertion, format!("body is not JSON: {e}"))
            })?;
            for a in &spec.json {
                let found = doc.pointer(&a.pointer);
                let ok = match &a.expect {
                    JsonExpectation::Exists => found.is_some(),
                    JsonExpectation::Equals(v) => found == Some(v),
                };
                if !ok {
                    let what = match (&a.expect, found) {
                        (_, None) => "is missing".to_string(),
                        (JsonExpectation::Equals(v), Some(_)) => format!("does not equal {v}"),
                        (JsonExpectation::Exists, Some(_)) => unreachable!("exists and found"),
                    };
                    return Err(Failure::new(
                        FailureKind::Assertion,
                        format!("JSON {} {what}", a.pointer),
                    ));
                }
            }
        }
        Ok(())
    }

    /// One request on a fresh connection.
    async fn exchange(
        &self,
        resolver: &SystemResolver,
        url: &url::Url,
        hop: &Hop<'_>,
        pinned: Option<IpAddr>,
        rec: &mut HttpDetails,
    ) -> Result<Response, Failure> {
        let spec = &self.spec;
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or(80);
        let ip = match pinned {
            Some(ip) => ip,
            None => {
                let t = Instant::now();
                let addrs = net::resolve_recorded(resolver, host, &mut rec.lookup).await;
                rec.phases.resolve += t.elapsed().as_secs_f64();
                addrs?[0]
            }
        };
        let addr = SocketAddr::new(ip, port);
        if let Some(own) = hop.guard
            && is_own_listener(addr, own)
        {
            return Err(protocol(format!(
                "redirect to gwanje's own listener {addr} refused"
            )));
        }
        let t = Instant::now();
        let tcp = net::connect(addr, &spec.source).await;
        rec.phases.connect += t.elapsed().as_secs_f64();
        let tcp = tcp?;
        rec.ssl = false;
        rec.tls = None;
        if url.scheme() == "https" {
            let tls = self
                .tls
                .get_or_init(|| TlsClient::shared(&spec.tls, self.alpn))
                .as_ref()
                .map_err(|e| Failure::new(FailureKind::Tls, e.to_string()))?;
            let t = Instant::now();
            let (stream, info) = tls.handshake(tcp, host).await;
            rec.phases.tls += t.elapsed().as_secs_f64();
            rec.tls = Some(info);
            let stream = stream?;
            let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
            if spec.version == HttpVersion::Http2 && !h2 {
                return Err(Failure::new(
                    FailureKind::Protocol,
                    "server did not negotiate HTTP/2",
                ));
            }
            self.request(stream, url, hop, h2, rec).await
        } else {
            self.request(tcp, url, hop, spec.version == HttpVersion::Http2, rec)
                .await
        }
    }

    async fn request<S>(
        &self,
        io: S,
        url: &url::Url,
        hop: &Hop<'_>,
        h2: bool,
        rec: &mut HttpDetails,
    ) -> Result<Response, Failure>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let spec = &self.spec;
        let request = self.build_request(url, hop, h2)?;
        let io = TokioIo::new(io);
        let t = Instant::now();
        let response = if h2 {
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .map_err(hyper_failure)?;
            tokio::spawn(conn);
            sender.send_request(request).await
        } else {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(hyper_failure)?;
            tokio::spawn(conn);
            sender.send_request(request).await
        };
        rec.phases.processing += t.elapsed().as_secs_f64();
        let response = response.map_err(hyper_failure)?;
        rec.status = response.status().as_u16();
        rec.ssl = url.scheme() == "https";
        rec.version = match response.version() {
            http::Version::HTTP_10 => 1.0,
            http::Version::HTTP_11 => 1.1,
            http::Version::HTTP_2 => 2.0,
            _ => 0.0,
        };
        let headers = response.headers();
        let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
        let location = header(http::header::LOCATION).map(str::to_string);
        let content_type = header(http::header::CONTENT_TYPE).map(str::to_string);
        rec.content_length = header(http::header::CONTENT_LENGTH)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(-1);
        rec.last_modified = header(http::header::LAST_MODIFIED)
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64);
        let t = Instant::now();
        let body = read_capped(response.into_body(), spec.max_body_bytes, rec).await;
        rec.phases.transfer += t.elapsed().as_secs_f64();
        Ok(Response {
            status: rec.status,
            location,
            content_type,
            body: body?,
        })
    }

    fn build_request(
        &self,
        url: &url::Url,
        hop: &Hop<'_>,
        h2: bool,
    ) -> Result<http::Request<Full<Bytes>>, Failure> {
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        let authority = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_string(),
        };
        let uri = if h2 {
            format!("{}://{authority}{path}", url.scheme())
        } else {
            path
        };
        let mut b = http::Request::builder()
            .method(hop.method.clone())
            .uri(uri)
            .header(http::header::USER_AGENT, USER_AGENT);
        if !h2 {
            b = b.header(http::header::HOST, authority);
        }
        for h in &self.spec.headers {
            if h.sensitive && !hop.to_origin {
                continue;
            }
            // A body-less GET after a 303 no longer has the content it described.
            if hop.method_changed && h.name.to_ascii_lowercase().starts_with("content-") {
                continue;
            }
            let mut value = http::HeaderValue::from_str(&h.value)
                .map_err(|_| protocol("a header value is not valid".into()))?;
            value.set_sensitive(h.sensitive);
            b = b.header(h.name.as_str(), value);
        }
        let body = hop
            .body
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .unwrap_or_default();
        b.body(Full::new(body))
            .map_err(|e| Failure::new(FailureKind::Protocol, format!("building request: {e}")))
    }
}

/// What one request of a redirect chain sends.
struct Hop<'a> {
    method: http::Method,
    body: Option<&'a str>,
    /// The URL has the configured URL's origin, so sensitive headers may go.
    to_origin: bool,
    /// A 301/302/303 turned the request into a body-less GET.
    method_changed: bool,
    /// On redirect hops: gwanje's own listener, which the hop must not reach.
    guard: Option<SocketAddr>,
}

/// Refuses redirects that leave http(s) or downgrade https to http.
fn check_redirect(from: &url::Url, to: &url::Url, allow_downgrade: bool) -> Result<(), Failure> {
    match (from.scheme(), to.scheme()) {
        (_, "https") | ("http", "http") => Ok(()),
        ("https", "http") if allow_downgrade => Ok(()),
        ("https", "http") => Err(protocol(format!(
            "redirect from https to plain http ({}) refused; set allow_https_downgrade: true to follow it",
            to.host_str().unwrap_or_default()
        ))),
        (_, other) => Err(protocol(format!(
            "redirect to a {other}: URL not followed; valid: http or https"
        ))),
    }
}

/// Whether `addr` is gwanje's own listener `own` (any local address when
/// it listens on the wildcard).
fn is_own_listener(addr: SocketAddr, own: SocketAddr) -> bool {
    // An IPv4-mapped IPv6 address is the IPv4 address.
    let canonical = |ip: std::net::IpAddr| match ip {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
        v4 => v4,
    };
    if addr.port() != own.port() {
        return false;
    }
    let (a, o) = (canonical(addr.ip()), canonical(own.ip()));
    // Connecting to 0.0.0.0 or :: reaches this host.
    if a == o || a.is_unspecified() {
        return true;
    }
    // Binding succeeds only for an address of this host.
    o.is_unspecified() && std::net::UdpSocket::bind((a, 0)).is_ok()
}

fn protocol(detail: String) -> Failure {
    Failure::new(FailureKind::Protocol, detail)
}

struct Response {
    status: u16,
    location: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
}

/// Reads at most `cap` bytes; more fails the probe and stops the read, so an
/// endless body costs at most `cap` bytes of memory.
async fn read_capped(
    mut body: Incoming,
    cap: u64,
    rec: &mut HttpDetails,
) -> Result<Vec<u8>, Failure> {
    let mut buf = Vec::new();
    rec.body_length = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(hyper_failure)?;
        if let Ok(data) = frame.into_data() {
            rec.body_length += data.len() as i64;
            if rec.body_length as u64 > cap {
                return Err(Failure::new(
                    FailureKind::BodyTooLarge,
                    format!("body exceeds max_body_bytes ({cap})"),
                ));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf)
}

/// Classifies a hyper error by the I/O error beneath it, if any.
pub(super) fn hyper_failure(e: hyper::Error) -> Failure {
    use std::error::Error as _;
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return Failure::new(net::classify_io(io), format!("HTTP: {e}: {io}"));
        }
        source = s.source();
    }
    let kind = if e.is_incomplete_message() || e.is_canceled() {
        FailureKind::Reset
    } else if e.is_timeout() {
        FailureKind::Timeout
    } else {
        FailureKind::Protocol
    };
    Failure::new(kind, format!("HTTP: {e}"))
}

#[cfg(test)]
mod tests {
    use super::is_own_listener;

    #[test]
    fn the_own_listener_is_recognised_however_it_is_spelled() {
        let own = "127.0.0.1:9469".parse().unwrap();
        for addr in [
            "127.0.0.1:9469",
            "0.0.0.0:9469",
            "[::ffff:127.0.0.1]:9469",
            "[::]:9469",
        ] {
            assert!(is_own_listener(addr.parse().unwrap(), own), "{addr}");
        }
        for addr in [
            "127.0.0.1:9470",
            "127.0.0.2:9469",
            "[::ffff:127.0.0.2]:9469",
        ] {
            assert!(!is_own_listener(addr.parse().unwrap(), own), "{addr}");
        }
        // Listening on the wildcard: any address of this host.
        let any = "0.0.0.0:9469".parse().unwrap();
        assert!(is_own_listener("127.0.0.2:9469".parse().unwrap(), any));
        assert!(is_own_listener(
            "[::ffff:127.0.0.1]:9469".parse().unwrap(),
            any
        ));
    }
}
