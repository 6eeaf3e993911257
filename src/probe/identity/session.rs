//! One canary's pass through the flow: its own cookie jar and extracted
//! values, a fresh connection per request, every response judged.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::judge::{Verdict, judge};
use super::{Round, USER_AGENT};
use crate::core::FailureKind;
use crate::plan::identity::{Extractor, FlowStep, JsonTemplate, Piece, StepBody, Template, Var};
use crate::probe::Failure;
use crate::probe::net;

/// The most cookies a jar keeps, and the longest value: a portal that
/// sends more is not allowed to grow gwanje's memory.
const MAX_COOKIES: usize = 32;
const MAX_COOKIE_BYTES: usize = 4096;
/// The longest value a step may extract.
const MAX_EXTRACTED_BYTES: usize = 4096;

/// How a session ended.
pub enum Ended {
    /// Every step passed.
    Passed,
    /// A response at `step` carried canary `owner`'s markers, or (`None`)
    /// was a document without the canary's own: someone else's.
    Mismatch { step: usize, owner: Option<usize> },
    /// A response at `step` carried a registration number it may not.
    PersonalData { step: usize },
    /// Step `step` failed for another reason.
    Failed { step: usize, failure: Failure },
}

/// Runs canary `own` through the flow of `round`.
pub async fn run(round: &Round<'_>, wave: &super::Wave, own: usize) -> Ended {
    /// Leaves the wave however the flow ends (or is dropped at the deadline).
    struct Member<'w>(&'w super::Wave);
    impl Drop for Member<'_> {
        fn drop(&mut self) {
            self.0.leave();
        }
    }
    let _member = Member(wave);
    let mut s = Session {
        round,
        own,
        vars: BTreeMap::new(),
        jar: BTreeMap::new(),
    };
    for (i, step) in round.spec.steps.iter().enumerate() {
        let failed = |failure| Ended::Failed { step: i, failure };
        round.pace().await;
        wave.together().await;
        let t = Instant::now();
        let response = {
            let _on_the_wire = round.request();
            s.send(step).await
        };
        round.latency(t.elapsed());
        let reply = match response {
            Ok(r) => r,
            Err(f) => return failed(f),
        };
        if let Some(ended) = decide(round.spec, step, own, i, &reply) {
            return ended;
        }
        let body = reply.body;
        if let Err(f) = s.extract(step, &body) {
            return failed(f);
        }
    }
    Ended::Passed
}

/// One response of a step.
pub struct Reply {
    /// Its status.
    pub status: u16,
    /// Its Content-Type, for the charset.
    pub content_type: Option<String>,
    /// Its body (capped).
    pub body: Vec<u8>,
}

/// What one response of step `i` means for canary `own`: the end of its
/// flow (a finding or a failed step), or `None` to go on. In this order: a
/// leak or another canary's markers, whatever the status or encoding; a
/// status the step does not accept; a body that cannot be decoded; a
/// response that is not a document of the step (its `must_match` missing,
/// or, without one, nothing of the canary's and no personal data at all: an
/// error page, not an exposure); a document without the canary's own
/// markers, which is someone else's.
pub fn decide(
    spec: &crate::plan::identity::IdentitySpec,
    step: &FlowStep,
    own: usize,
    i: usize,
    reply: &Reply,
) -> Option<Ended> {
    let failed = |failure| Some(Ended::Failed { step: i, failure });
    let text = crate::probe::body_text::decode(&reply.body, reply.content_type.as_deref());
    let verdict = judge(&text.text, own, &spec.canaries, step.document.as_ref());
    match verdict {
        Verdict::Mismatch(owner) => {
            return Some(Ended::Mismatch {
                step: i,
                owner: Some(owner),
            });
        }
        Verdict::PersonalData => return Some(Ended::PersonalData { step: i }),
        Verdict::Missing(_) | Verdict::Own => {}
    }
    let status = reply.status;
    let ok = if step.valid_status.is_empty() {
        (200..300).contains(&status)
    } else {
        step.valid_status.contains(&status)
    };
    if !ok {
        return failed(Failure::new(
            FailureKind::Status,
            format!("status {status} is not valid"),
        ));
    }
    if let Some(e) = &text.error {
        return failed(Failure::new(
            FailureKind::Protocol,
            format!("{e} (content not logged)"),
        ));
    }
    let Some(rule) = &step.document else {
        return None;
    };
    let not_a_document = || {
        failed(Failure::new(
            FailureKind::NotADocument,
            "the response is not a document of this step (content not logged)",
        ))
    };
    if rule.must_match.is_empty() {
        // Without a description of the document, a response with none of
        // the canary's markers and no personal data cannot be told from an
        // error page: it is not called an exposure.
        if let Verdict::Missing(_) = verdict {
            return not_a_document();
        }
        return None;
    }
    if !rule
        .must_match
        .iter()
        .all(|p| p.0.is_match(text.text.as_bytes()))
    {
        return not_a_document();
    }
    // A document of the step without the canary's own markers is someone
    // else's: a real citizen's, whose markers gwanje cannot know.
    if let Verdict::Missing(_) = verdict {
        return Some(Ended::Mismatch {
            step: i,
            owner: None,
        });
    }
    None
}

struct Session<'r, 'a> {
    round: &'r Round<'a>,
    own: usize,
    vars: BTreeMap<String, String>,
    jar: BTreeMap<String, String>,
}

impl Session<'_, '_> {
    fn value(&self, var: &Var) -> &str {
        use crate::plan::identity::Marker;
        let c = &self.round.spec.canaries[self.own];
        match var {
            Var::Canary(Marker::Id) => &c.id,
            Var::Canary(Marker::Name) => &c.name,
            Var::Canary(Marker::BusinessNumber) => c.business_number.as_deref().unwrap_or(""),
            Var::Canary(Marker::ResidentNumber) => {
                c.resident_number.as_ref().map_or("", |r| r.0.as_str())
            }
            // Validated at load: every canary has every credential used.
            Var::Credential(n) => c.credentials.get(n).map_or("", |s| s.0.as_str()),
            Var::Extracted(n) => self.vars.get(n).map_or("", String::as_str),
        }
    }

    fn render(&self, t: &Template, encode: bool) -> String {
        let mut out = String::new();
        for p in &t.0 {
            match p {
                Piece::Literal(l) => out.push_str(l),
                Piece::Var(v) if encode => percent_encode(self.value(v), &mut out),
                Piece::Var(v) => out.push_str(self.value(v)),
            }
        }
        out
    }

    fn render_json(&self, t: &JsonTemplate) -> serde_json::Value {
        use serde_json::Value;
        match t {
            JsonTemplate::Text(t) => Value::String(self.render(t, false)),
            JsonTemplate::List(a) => Value::Array(a.iter().map(|x| self.render_json(x)).collect()),
            JsonTemplate::Map(o) => Value::Object(
                o.iter()
                    .map(|(k, x)| (k.clone(), self.render_json(x)))
                    .collect(),
            ),
            JsonTemplate::Value(v) => v.clone(),
        }
    }

    fn request(&self, step: &FlowStep) -> Result<http::Request<Full<Bytes>>, Failure> {
        let base = &self.round.spec.base_url;
        let prefix = base.path().trim_end_matches('/');
        let uri = format!("{prefix}{}", self.render(&step.path, true));
        let authority = match base.port() {
            Some(p) => format!("{}:{p}", base.host_str().unwrap_or_default()),
            None => base.host_str().unwrap_or_default().to_string(),
        };
        let mut b = http::Request::builder()
            .method(step.method.clone())
            .uri(uri)
            .header(http::header::HOST, authority)
            .header(http::header::USER_AGENT, USER_AGENT);
        if !self.jar.is_empty() {
            let cookies: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let mut v = http::HeaderValue::from_str(&cookies.join("; "))
                .map_err(|_| protocol("a cookie is not a valid header value"))?;
            v.set_sensitive(true);
            b = b.header(http::header::COOKIE, v);
        }
        for (name, t) in &step.headers {
            // Every rendered header may carry a credential: marked sensitive.
            let mut v = http::HeaderValue::from_str(&self.render(t, false))
                .map_err(|_| protocol("a rendered header value is not valid in HTTP"))?;
            v.set_sensitive(true);
            b = b.header(name, v);
        }
        let body = match &step.body {
            StepBody::None => Bytes::new(),
            StepBody::Text(t) => Bytes::from(self.render(t, false)),
            StepBody::Json(v) => {
                if !step
                    .headers
                    .iter()
                    .any(|(n, _)| n == http::header::CONTENT_TYPE)
                {
                    b = b.header(http::header::CONTENT_TYPE, "application/json");
                }
                Bytes::from(serde_json::to_vec(&self.render_json(v)).unwrap_or_default())
            }
        };
        b.body(Full::new(body))
            .map_err(|e| protocol(&format!("building the request: {e}")))
    }

    async fn send(&mut self, step: &FlowStep) -> Result<Reply, Failure> {
        let request = self.request(step)?;
        let spec = self.round.spec;
        let host = spec.base_url.host_str().unwrap_or_default();
        let port = spec.base_url.port_or_known_default().unwrap_or(80);
        let ip = net::resolve(self.round.resolver, host).await?[0];
        let tcp = net::connect(SocketAddr::new(ip, port), &spec.source).await?;
        let response = if spec.base_url.scheme() == "https" {
            let tls = self.round.tls()?;
            let (stream, _) = tls.handshake(tcp, host).await;
            exchange(stream?, request).await?
        } else {
            exchange(tcp, request).await?
        };
        let status = response.status().as_u16();
        for v in response.headers().get_all(http::header::SET_COOKIE) {
            self.keep_cookie(v.as_bytes());
        }
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = read_capped(response.into_body(), spec.max_body_bytes).await?;
        Ok(Reply {
            status,
            content_type,
            body,
        })
    }

    fn keep_cookie(&mut self, header: &[u8]) {
        let Ok(text) = std::str::from_utf8(header) else {
            return;
        };
        let pair = text.split(';').next().unwrap_or_default();
        let Some((name, value)) = pair.split_once('=') else {
            return;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() || value.len() > MAX_COOKIE_BYTES {
            return;
        }
        if self.jar.len() < MAX_COOKIES || self.jar.contains_key(name) {
            self.jar.insert(name.to_string(), value.to_string());
        }
    }

    fn extract(&mut self, step: &FlowStep, body: &[u8]) -> Result<(), Failure> {
        if step.extract.is_empty() {
            return Ok(());
        }
        let json: Option<serde_json::Value> = step
            .extract
            .iter()
            .any(|(_, e)| matches!(e, Extractor::Json(_)))
            .then(|| serde_json::from_slice(body).ok())
            .flatten();
        for (name, e) in &step.extract {
            let value = match e {
                Extractor::Json(p) => {
                    json.as_ref()
                        .and_then(|j| j.pointer(p))
                        .and_then(|v| match v {
                            serde_json::Value::String(s) => Some(s.clone()),
                            serde_json::Value::Number(n) => Some(n.to_string()),
                            _ => None,
                        })
                }
                Extractor::Regex(r) => r.0.captures(body).and_then(|c| {
                    let m = c.get(1).or_else(|| c.get(0))?;
                    std::str::from_utf8(m.as_bytes()).ok().map(str::to_string)
                }),
            };
            match value.filter(|v| v.len() <= MAX_EXTRACTED_BYTES) {
                Some(v) => {
                    self.vars.insert(name.clone(), v);
                }
                None => {
                    return Err(Failure::new(
                        FailureKind::Assertion,
                        format!("the response has no value for {name} (content not logged)"),
                    ));
                }
            }
        }
        Ok(())
    }
}

async fn exchange<S>(
    io: S,
    request: http::Request<Full<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, Failure>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(crate::probe::http::hyper_failure)?;
    tokio::spawn(conn);
    sender
        .send_request(request)
        .await
        .map_err(crate::probe::http::hyper_failure)
}

/// Reads at most `cap` bytes; a longer body fails the step.
async fn read_capped(mut body: hyper::body::Incoming, cap: u64) -> Result<Vec<u8>, Failure> {
    let mut buf = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(crate::probe::http::hyper_failure)?;
        if let Ok(data) = frame.into_data() {
            if (buf.len() + data.len()) as u64 > cap {
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

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(value: &str, out: &mut String) {
    use std::fmt::Write;
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

fn protocol(detail: &str) -> Failure {
    Failure::new(FailureKind::Protocol, detail)
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_in_paths_are_percent_encoded() {
        let mut out = String::new();
        super::percent_encode("a b/ü?x", &mut out);
        assert_eq!(out, "a%20b%2F%C3%BC%3Fx");
    }
}
