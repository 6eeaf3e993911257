//! A certificate-issuing portal simulator on loopback, for the identity
//! probe's tests, `gwanje verify`'s tests and the demo: canaries log in,
//! request a certificate and download it.
//!
//! Its faulty modes reproduce the April 2024 failures: `Race` keeps the
//! requester in one shared slot across an await (under concurrency some
//! requests render another user's document), and `WrongField` prints the
//! resident number where the business number belongs. `ErrorPage` is an
//! overloaded portal answering some downloads with 200 and a "session
//! expired" page (nobody's data), and `Stranger` hands out the certificate
//! of someone who is not a canary. A [`Format`] writes documents as HTML,
//! as JSON with every character escaped, in EUC-KR, or with numbers spelled
//! with Unicode dashes, fullwidth digits and markup.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

/// How the portal behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// Every document is its requester's.
    Correct = 0,
    /// The requester is kept in a shared slot across an await.
    Race = 1,
    /// Tax certificates show the resident number as the business number.
    WrongField = 2,
    /// Every third download is a 200 "session expired" page.
    ErrorPage = 3,
    /// Every download is the certificate of someone who is not a canary.
    Stranger = 4,
}

/// How documents are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Format {
    /// UTF-8 HTML.
    Html = 0,
    /// `application/json`, every character of the name and number `\uXXXX`.
    JsonEscaped = 1,
    /// HTML in EUC-KR, declared in the Content-Type.
    EucKr = 2,
    /// HTML whose numbers are written with fullwidth digits, an en dash
    /// between no-break spaces, and markup between the groups.
    Spelled = 3,
}

/// `n` accounts like [`synthetic_accounts`], with Hangul names (so EUC-KR
/// documents differ from UTF-8 ones).
pub fn hangul_accounts(n: usize) -> Vec<Account> {
    const DIGITS: [&str; 10] = ["영", "일", "이", "삼", "사", "오", "육", "칠", "팔", "구"];
    synthetic_accounts(n)
        .into_iter()
        .enumerate()
        .map(|(i, a)| Account {
            name: format!("시험시민 {}", spell_in(&DIGITS, i)),
            ..a
        })
        .collect()
}

/// One synthetic citizen the portal knows.
#[derive(Clone)]
pub struct Account {
    /// The canary id.
    pub id: String,
    /// Login name.
    pub username: String,
    /// Login password.
    pub password: String,
    /// Display name.
    pub name: String,
    /// A synthetic resident registration number, 13 digits.
    pub resident_number: String,
    /// A synthetic business registration number.
    pub business_number: String,
}

/// `n` synthetic accounts with valid-looking (check digit and date) but
/// invented resident numbers.
pub fn synthetic_accounts(n: usize) -> Vec<Account> {
    (0..n)
        .map(|i| {
            let (month, day) = (1 + i % 12, 1 + (i / 12) % 28);
            let sex = 1 + i % 2;
            let first12 = format!("90{month:02}{day:02}{sex}{:05}", 10_000 + i);
            Account {
                id: format!("canary-{i:03}"),
                username: format!("canary{i:03}"),
                password: format!("pw-{i:03}-{:08x}", (i as u64 + 1) * 0x9e37_79b9),
                name: format!("Test Citizen {}", spell(i)),
                resident_number: with_check_digit(&first12),
                business_number: format!("220-81-{:05}", 10_000 + i),
            }
        })
        .collect()
}

/// A name part no other index's contains, so markers never overlap.
fn spell(i: usize) -> String {
    const WORDS: [&str; 10] = [
        "Zero", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine",
    ];
    spell_in(&WORDS, i)
}

/// `i`'s three last digits as `words`, joined by hyphens.
fn spell_in(words: &[&str; 10], i: usize) -> String {
    format!(
        "{}-{}-{}",
        words[i / 100 % 10],
        words[i / 10 % 10],
        words[i % 10]
    )
}

/// Appends the check digit of a citizen's resident registration number.
pub fn with_check_digit(first12: &str) -> String {
    const W: [u32; 12] = [2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5];
    let sum: u32 = first12
        .bytes()
        .zip(W)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    format!("{first12}{}", (11 - sum % 11) % 10)
}

/// Writes a canary file for `accounts` into `dir` (`canaries.yaml`, with
/// each credential and resident number in its own secret file) and returns
/// its path.
pub fn write_canary_file(dir: &Path, accounts: &[Account]) -> std::io::Result<std::path::PathBuf> {
    use std::fmt::Write;
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets)?;
    let mut yaml = String::from("canaries:\n");
    for a in accounts {
        for (what, value) in [
            ("username", &a.username),
            ("password", &a.password),
            ("rrn", &a.resident_number),
        ] {
            crate::config::write_secret_file(&secrets.join(format!("{}.{what}", a.id)), value)?;
        }
        let _ = write!(
            yaml,
            "  - id: {id}\n    name: {name:?}\n    resident_number: {{file: secrets/{id}.rrn}}\n    business_number: {b:?}\n    credentials:\n      username: {{file: secrets/{id}.username}}\n      password: {{file: secrets/{id}.password}}\n",
            id = a.id,
            name = a.name,
            b = a.business_number,
        );
    }
    let path = dir.join("canaries.yaml");
    std::fs::write(&path, yaml)?;
    Ok(path)
}

/// The flow that fits this portal, as a catalog `identity:` block body
/// (indented for a target), with `kind` the certificate to issue and
/// `canaries` the canary file's path from the catalog's folder.
pub fn flow_yaml(base_url: &str, canaries: &str, kind: &str) -> String {
    let (allow, title) = if kind == "residence" {
        ("[resident_number]", "Certificate of residence")
    } else {
        ("[]", "Corporate tax certificate")
    };
    format!(
        r#"      base_url: {base_url}
      allow_http: true
      canaries: {canaries}
      steps:
        - name: login
          method: POST
          path: /login
          json: {{username: "${{credential.username}}", password: "${{credential.password}}"}}
        - name: request
          method: POST
          path: /certificates
          json: {{kind: {kind}}}
          extract: {{cert: {{json: /id}}}}
        - name: download
          path: /certificates/${{cert}}
          document: {{require: [name], allow_own: {allow}, must_match: ['{title}']}}
"#
    )
}

struct Portal {
    mode: AtomicU8,
    format: AtomicU8,
    delay_ms: AtomicU64,
    in_flight: AtomicU64,
    peak: AtomicU64,
    accounts: Vec<Account>,
    sessions: Mutex<HashMap<String, usize>>,
    certificates: Mutex<HashMap<String, (usize, String)>>,
    next: AtomicU64,
    // The bug of `Race`: per-request state in one place shared by all.
    slot: Mutex<Option<usize>>,
}

/// A running portal; stopped when dropped.
pub struct IdentityPortal {
    /// Where it listens.
    pub addr: SocketAddr,
    portal: Arc<Portal>,
    task: tokio::task::JoinHandle<()>,
}

impl IdentityPortal {
    /// Serves `accounts` on a kernel-chosen loopback port, in `mode`.
    pub async fn start(accounts: Vec<Account>, mode: Mode) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let portal = Arc::new(Portal {
            mode: AtomicU8::new(mode as u8),
            format: AtomicU8::new(Format::Html as u8),
            delay_ms: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            peak: AtomicU64::new(0),
            accounts,
            sessions: Mutex::default(),
            certificates: Mutex::default(),
            next: AtomicU64::new(1),
            slot: Mutex::new(None),
        });
        let app = router(portal.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(IdentityPortal { addr, portal, task })
    }

    /// Changes how it behaves from the next request on.
    pub fn set_mode(&self, mode: Mode) {
        self.portal.mode.store(mode as u8, Ordering::Relaxed);
    }

    /// Changes how documents are written from the next request on.
    pub fn set_format(&self, format: Format) {
        self.portal.format.store(format as u8, Ordering::Relaxed);
    }

    /// Holds every request this long before answering.
    pub fn set_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.portal.delay_ms.store(ms, Ordering::Relaxed);
    }

    /// The most requests the portal was handling at one moment.
    pub fn peak_in_flight(&self) -> u64 {
        self.portal.peak.load(Ordering::Relaxed)
    }

    /// The base URL for the identity probe.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for IdentityPortal {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The portal's routes, for a server of the caller's choosing.
fn router(portal: Arc<Portal>) -> Router {
    Router::new()
        .route("/login", post(login))
        .route("/certificates", post(request))
        .route("/certificates/{id}", get(download))
        .layer(axum::middleware::from_fn_with_state(portal.clone(), held))
        .with_state(portal)
}

/// Counts requests in progress (keeping the peak) and holds each for the
/// configured delay.
async fn held(
    State(p): State<Arc<Portal>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    struct Leaving<'a>(&'a AtomicU64);
    impl Drop for Leaving<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let now = p.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    p.peak.fetch_max(now, Ordering::SeqCst);
    let _leaving = Leaving(&p.in_flight);
    let delay = p.delay_ms.load(Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    next.run(req).await
}

#[derive(serde::Deserialize)]
struct Login {
    username: String,
    password: String,
}

async fn login(State(p): State<Arc<Portal>>, axum::Json(l): axum::Json<Login>) -> Response {
    let Some(i) = p
        .accounts
        .iter()
        .position(|a| a.username == l.username && a.password == l.password)
    else {
        return (StatusCode::UNAUTHORIZED, "wrong credentials").into_response();
    };
    let token = format!(
        "s{:016x}",
        p.next
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
    );
    p.sessions
        .lock()
        .expect("sessions")
        .insert(token.clone(), i);
    (
        [(
            header::SET_COOKIE,
            format!("session={token}; Path=/; HttpOnly"),
        )],
        "{\"ok\":true}",
    )
        .into_response()
}

fn user(p: &Portal, headers: &HeaderMap) -> Option<usize> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    let token = cookies
        .split(';')
        .find_map(|c| c.trim().strip_prefix("session="))?;
    p.sessions.lock().expect("sessions").get(token).copied()
}

#[derive(serde::Deserialize)]
struct Request {
    kind: String,
}

async fn request(
    State(p): State<Arc<Portal>>,
    headers: HeaderMap,
    axum::Json(r): axum::Json<Request>,
) -> Response {
    let Some(u) = user(&p, &headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    if !matches!(r.kind.as_str(), "residence" | "tax") {
        return StatusCode::BAD_REQUEST.into_response();
    }
    let id = p.next.fetch_add(1, Ordering::Relaxed).to_string();
    p.certificates
        .lock()
        .expect("certificates")
        .insert(id.clone(), (u, r.kind));
    axum::Json(serde_json::json!({ "id": id })).into_response()
}

async fn download(
    State(p): State<Arc<Portal>>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Response {
    let Some(u) = user(&p, &headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let Some((owner, kind)) = p
        .certificates
        .lock()
        .expect("certificates")
        .get(&id)
        .cloned()
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if owner != u {
        return StatusCode::FORBIDDEN.into_response();
    }
    let mode = p.mode.load(Ordering::Relaxed);
    let holder = if mode == Mode::Race as u8 {
        *p.slot.lock().expect("slot") = Some(u);
        // Rendering "loads a template": long enough for others to overwrite the slot.
        tokio::time::sleep(Duration::from_millis(10)).await;
        p.slot.lock().expect("slot").unwrap_or(u)
    } else {
        u
    };
    if mode == Mode::ErrorPage as u8 && p.next.fetch_add(1, Ordering::Relaxed) % 3 == 0 {
        return (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<html><h1>Session expired</h1><p>Please sign in again.</p></html>",
        )
            .into_response();
    }
    let stranger = Account {
        id: "stranger".into(),
        username: String::new(),
        password: String::new(),
        name: "Unknown Resident".into(),
        resident_number: with_check_digit("850315100003"),
        business_number: "220-81-99999".into(),
    };
    let a = if mode == Mode::Stranger as u8 {
        &stranger
    } else {
        &p.accounts[holder]
    };
    let format = p.format.load(Ordering::Relaxed);
    let spelled = |digits: &str| -> String {
        let (x, y) = digits.split_at(6);
        let fw = |s: &str| -> String {
            s.chars()
                .map(|c| char::from_u32(u32::from(c) + 0xFEE0).unwrap_or(c))
                .collect()
        };
        format!("{}&nbsp;&ndash;&nbsp;<span>{y}</span>", fw(x))
    };
    let rrn = if format == Format::Spelled as u8 {
        spelled(&a.resident_number)
    } else {
        format!("{}-{}", &a.resident_number[..6], &a.resident_number[6..])
    };
    let (title, label, number) = if kind == "residence" {
        (
            "Certificate of residence",
            "Resident registration number",
            rrn,
        )
    } else {
        let number = if mode == Mode::WrongField as u8 {
            rrn
        } else {
            a.business_number.clone()
        };
        (
            "Corporate tax certificate",
            "Business registration number",
            number,
        )
    };
    let who = if kind == "residence" {
        "Name"
    } else {
        "Representative"
    };
    if format == Format::JsonEscaped as u8 {
        let esc = |s: &str| -> String {
            s.chars()
                .map(|c| format!("\\u{:04x}", u32::from(c)))
                .collect()
        };
        let body = format!(
            r#"{{"title":"{title}","{}":"{}","{}":"{}"}}"#,
            who.to_lowercase(),
            esc(&a.name),
            label.to_lowercase().replace(' ', "_"),
            esc(&number)
        );
        return ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    }
    let html = format!(
        "<html><h1>{title}</h1><p>{who}: {}</p><p>{label}: {number}</p></html>",
        a.name
    );
    if format == Format::EucKr as u8 {
        let (bytes, _, _) = encoding_rs::EUC_KR.encode(&html);
        return (
            [(header::CONTENT_TYPE, "text/html; charset=euc-kr")],
            bytes.into_owned(),
        )
            .into_response();
    }
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_numbers_are_valid_and_markers_never_overlap() {
        let a = synthetic_accounts(300);
        for x in &a {
            assert!(
                crate::probe::personal_data::parse_registration_number(&x.resident_number)
                    .is_some(),
                "{}",
                x.id
            );
        }
        for (i, x) in a.iter().enumerate() {
            for y in &a[i + 1..] {
                assert!(!x.name.contains(&y.name) && !y.name.contains(&x.name));
                assert_ne!(x.resident_number, y.resident_number);
            }
        }
    }
}
