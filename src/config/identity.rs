//! The identity probe and its canary file: every placeholder resolves,
//! every canary carries what the flow needs, and no canary's marker can be
//! mistaken for another's.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use super::document::Document;
use super::error::ConfigError;
use super::raw::{RawCanary, RawCanaryFile, RawFlowStep, RawIdentity, RawSecret};
use super::values;
use crate::plan::identity::{
    Canary, DocumentRule, Extractor, FlowStep, IdentitySpec, JsonTemplate, Marker, Piece, Secret,
    StepBody, Template, Var,
};
use crate::probe::personal_data::parse_registration_number;

/// The most canaries one file may list.
pub const MAX_CANARIES: usize = 256;
/// The most steps one flow may have.
pub const MAX_STEPS: usize = 16;
/// The most values one step may extract.
pub const MAX_EXTRACT: usize = 16;
/// The most flows an identity probe runs at once.
pub const MAX_CONCURRENCY: usize = 64;
/// The most rounds one probe run (or one `gwanje verify` level) may have.
pub const MAX_ROUNDS: u32 = 100;
/// The highest request rate an identity probe may use.
pub const MAX_REQUESTS_PER_SECOND: u32 = 1_000;
/// Defaults: 4 flows at once (the April 2024 failure needed concurrency),
/// one round a run, 50 requests a second.
const DEFAULTS: (usize, u32, u32) = (4, 1, 50);
/// A display name shorter than this would match ordinary page text.
const MIN_NAME_BYTES: usize = 4;

/// The largest response an identity probe reads: every response is judged
/// against every canary's markers.
pub const MAX_IDENTITY_BODY_BYTES: u64 = 4 << 20;

use crate::plan::identity::least_run_time;

/// Builds the identity probe at `path` (whose runs must fit in `timeout`),
/// adding every error to `errors`.
pub fn identity(
    doc: &Document,
    path: &str,
    raw: &RawIdentity,
    timeout: std::time::Duration,
    errors: &mut Vec<ConfigError>,
) -> Option<IdentitySpec> {
    let before = errors.len();
    let key = |k: &str| format!("{path}.{k}");
    let base_url = base_url(doc, &key("base_url"), &raw.base_url).map_err(|e| errors.push(e));
    let (dc, dr, drps) = DEFAULTS;
    let concurrency = keep(
        errors,
        values::in_range(
            doc,
            &key("concurrency"),
            raw.concurrency.unwrap_or(dc),
            1..=MAX_CONCURRENCY,
            "flows at once",
        ),
    );
    let rounds = keep(
        errors,
        values::in_range(
            doc,
            &key("rounds"),
            raw.rounds.unwrap_or(dr),
            1..=MAX_ROUNDS,
            "rounds",
        ),
    );
    let rps = keep(
        errors,
        values::in_range(
            doc,
            &key("max_requests_per_second"),
            raw.max_requests_per_second.unwrap_or(drps),
            1..=MAX_REQUESTS_PER_SECOND,
            "requests a second",
        ),
    );
    let max_body_bytes = keep(
        errors,
        values::in_range(
            doc,
            &key("max_body_bytes"),
            raw.max_body_bytes
                .unwrap_or(super::tls::DEFAULT_MAX_BODY_BYTES),
            1..=MAX_IDENTITY_BODY_BYTES,
            "bytes",
        ),
    );
    let tls = keep(errors, super::tls::tls(doc, &key("tls"), raw.tls.as_ref()));
    let source = keep(
        errors,
        values::source(doc, &key("source"), raw.source.as_ref()),
    );
    let (steps, needs) = steps(doc, path, &raw.steps, errors);
    let canaries = canaries(doc, &key("canaries"), &raw.canaries, &needs, errors);
    if let Ok(u) = &base_url
        && u.scheme() == "http"
        && !needs.credentials.is_empty()
        && !raw.allow_http
    {
        errors.push(doc.error_at(
            &key("base_url"),
            "the flow sends credentials over plain http; valid: an https:// base URL, or allow_http: true for a test portal on loopback",
        ));
    }
    if let (Some(c), Some(r), Some(rps), Some(list)) = (concurrency, rounds, rps, &canaries) {
        let least = least_run_time(r, list.len().max(c), steps.len(), rps);
        if least >= timeout {
            errors.push(doc.error_at(
                &key("rounds"),
                format!(
                    "a run sends {} requests, at least {} at max_requests_per_second {rps}, which the target's timeout ({}) cannot hold; valid: fewer rounds, steps or canaries, a higher rate, or a longer timeout",
                    u64::from(r) * list.len().max(c) as u64 * steps.len() as u64,
                    humantime::format_duration(least),
                    humantime::format_duration(timeout)
                ),
            ));
        }
    }
    if errors.len() > before {
        return None;
    }
    Some(IdentitySpec {
        base_url: base_url.ok()?,
        canaries: canaries?,
        steps,
        concurrency: concurrency?,
        rounds: rounds?,
        max_requests_per_second: rps?,
        max_body_bytes: max_body_bytes?,
        tls: tls?,
        source: source?,
    })
}

fn keep<T>(errors: &mut Vec<ConfigError>, r: Result<T, ConfigError>) -> Option<T> {
    r.map_err(|e| errors.push(e)).ok()
}

fn base_url(doc: &Document, path: &str, text: &str) -> Result<url::Url, ConfigError> {
    let url = url::Url::parse(text)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| {
            doc.error_at(
                path,
                "not a valid base URL; valid: an absolute http:// or https:// URL such as https://portal.example",
            )
        })?;
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
        return Err(doc.error_at(
            path,
            "the base URL carries credentials or a query; valid: scheme, host, port and an optional path prefix (credentials belong in the canary file)",
        ));
    }
    Ok(url)
}

/// What the flow's placeholders and document rules ask of every canary,
/// with the step that asks first (for the error message).
#[derive(Default)]
struct Needs {
    markers: BTreeMap<&'static str, String>,
    credentials: BTreeMap<String, String>,
}

fn steps(
    doc: &Document,
    path: &str,
    raw: &[RawFlowStep],
    errors: &mut Vec<ConfigError>,
) -> (Vec<FlowStep>, Needs) {
    let mut needs = Needs::default();
    let mut out = Vec::new();
    if raw.is_empty() || raw.len() > MAX_STEPS {
        errors.push(doc.error_at(
            &format!("{path}.steps"),
            format!(
                "{} steps; valid: 1 to {MAX_STEPS} steps, at least one with `document`",
                raw.len()
            ),
        ));
        return (out, needs);
    }
    let mut extracted: BTreeSet<String> = BTreeSet::new();
    let mut names = HashMap::new();
    for (i, s) in raw.iter().enumerate() {
        let spath = format!("{path}.steps[{i}]");
        if let Some(first) = names.insert(s.name.as_str(), i) {
            errors.push(doc.error_at(
                &format!("{spath}.name"),
                format!(
                    "duplicate step name {:?} (also steps[{first}]); valid: unique names",
                    s.name
                ),
            ));
        } else if !super::values::valid_name(&s.name) {
            errors.push(doc.error_at(
                &format!("{spath}.name"),
                format!(
                    "{:?} is not a valid step name; valid: 1-64 characters of a-z, A-Z, 0-9, '-', '_' or '.'",
                    s.name
                ),
            ));
        }
        let mut ctx = Ctx {
            doc,
            step: &s.name,
            extracted: &extracted,
            needs: &mut needs,
        };
        match step(&mut ctx, &spath, s) {
            Ok(built) => {
                extracted.extend(built.extract.iter().map(|(n, _)| n.clone()));
                out.push(built);
            }
            Err(e) => errors.push(e),
        }
    }
    if !out.is_empty() && !out.iter().any(|s| s.document.is_some()) {
        errors.push(doc.error_at(
            &format!("{path}.steps"),
            "no step is marked `document`; valid: at least one step whose response is the canary's document",
        ));
    }
    (out, needs)
}

/// What parsing one step's templates needs to know.
struct Ctx<'a> {
    doc: &'a Document,
    step: &'a str,
    extracted: &'a BTreeSet<String>,
    needs: &'a mut Needs,
}

fn step(ctx: &mut Ctx<'_>, path: &str, raw: &RawFlowStep) -> Result<FlowStep, ConfigError> {
    let doc = ctx.doc;
    let key = |k: &str| format!("{path}.{k}");
    let method_text = raw.method.as_deref().unwrap_or("GET");
    let method = http::Method::from_bytes(method_text.as_bytes())
        .ok()
        .filter(|_| method_text.chars().all(|c| c.is_ascii_uppercase()))
        .ok_or_else(|| {
            doc.error_at(
                &key("method"),
                format!("{method_text:?} is not an HTTP method; valid: GET, POST, PUT, …"),
            )
        })?;
    if !raw.path.starts_with('/') {
        return Err(doc.error_at(
            &key("path"),
            format!(
                "{:?} is not a path; valid: a path below the base URL starting with '/', such as /certificates/${{cert}}",
                raw.path
            ),
        ));
    }
    let url_path = template(ctx, &key("path"), &raw.path)?;
    let mut headers = Vec::new();
    for (name, value) in &raw.headers {
        let hpath = format!("{}.{name}", key("headers"));
        let name = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| doc.error_at_key(&hpath, format!("{name:?} is not a header name")))?;
        headers.push((name, template(ctx, &hpath, value)?));
    }
    let body = match (&raw.body, &raw.json) {
        (Some(_), Some(_)) => {
            return Err(doc.error_at_key(path, "give at most one of `body` and `json`"));
        }
        (Some(b), None) => StepBody::Text(template(ctx, &key("body"), b)?),
        (None, Some(j)) => {
            let value = serde_json::to_value(j)
                .map_err(|e| doc.error_at(&key("json"), format!("not JSON-compatible: {e}")))?;
            StepBody::Json(json_template(ctx, &key("json"), &value)?)
        }
        (None, None) => StepBody::None,
    };
    for (i, s) in raw.valid_status.iter().enumerate() {
        if !(100..=599).contains(s) {
            return Err(doc.error_at(
                &format!("{}[{i}]", key("valid_status")),
                format!("{s} is not an HTTP status; valid: 100 to 599"),
            ));
        }
    }
    if raw.extract.len() > MAX_EXTRACT {
        return Err(doc.error_at(
            &key("extract"),
            format!("{} values; valid: at most {MAX_EXTRACT}", raw.extract.len()),
        ));
    }
    let mut extract = Vec::new();
    for (name, e) in &raw.extract {
        let epath = format!("{}.{name}", key("extract"));
        if !is_identifier(name) {
            return Err(doc.error_at_key(
                &epath,
                format!("{name:?} is not a variable name; valid: letters, digits and '_', not starting with a digit"),
            ));
        }
        extract.push((
            name.clone(),
            match (&e.json, &e.regex) {
                (Some(p), None) if p.starts_with('/') => Extractor::Json(p.clone()),
                (Some(p), None) => {
                    return Err(doc.error_at(
                        &format!("{epath}.json"),
                        format!("{p:?} is not a JSON pointer; valid: e.g. /token"),
                    ));
                }
                (None, Some(r)) => {
                    Extractor::Regex(values::pattern(doc, &format!("{epath}.regex"), r)?)
                }
                _ => {
                    return Err(doc.error_at_key(
                        &epath,
                        "give exactly one of `json: <pointer>` or `regex: <pattern>`",
                    ));
                }
            },
        ));
    }
    let document = match &raw.document {
        None => None,
        Some(d) => {
            let list = |name: &str, items: &[String]| -> Result<Vec<Marker>, ConfigError> {
                items
                    .iter()
                    .enumerate()
                    .map(|(i, m)| {
                        marker(m).ok_or_else(|| {
                            doc.error_at(
                                &format!("{}.{name}[{i}]", key("document")),
                                format!("{m:?} is not a marker; valid: id, name, business_number, resident_number"),
                            )
                        })
                    })
                    .collect()
            };
            let must_match = d
                .must_match
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    values::pattern(doc, &format!("{}.must_match[{i}]", key("document")), p)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let rule = DocumentRule {
                require: list("require", &d.require)?,
                allow_own: list("allow_own", &d.allow_own)?,
                must_match,
            };
            if rule.require.is_empty() {
                return Err(doc.error_at_key(
                    &key("document"),
                    "a document step requires no marker, so a stranger's document would pass; valid: require: [name] (or id, business_number, resident_number)",
                ));
            }
            // Allowing one's own number needs none; requiring it does.
            for m in &rule.require {
                ctx.needs
                    .markers
                    .entry(m.as_str())
                    .or_insert_with(|| ctx.step.to_string());
            }
            Some(rule)
        }
    };
    Ok(FlowStep {
        name: raw.name.clone(),
        method,
        path: url_path,
        headers,
        body,
        valid_status: raw.valid_status.clone(),
        extract,
        document,
    })
}

fn marker(name: &str) -> Option<Marker> {
    Marker::ALL
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(m, _)| *m)
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 64
}

fn json_template(
    ctx: &mut Ctx<'_>,
    path: &str,
    value: &serde_json::Value,
) -> Result<JsonTemplate, ConfigError> {
    use serde_json::Value;
    Ok(match value {
        Value::String(s) => JsonTemplate::Text(template(ctx, path, s)?),
        Value::Array(a) => JsonTemplate::List(
            a.iter()
                .map(|v| json_template(ctx, path, v))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => JsonTemplate::Map(
            o.iter()
                .map(|(k, v)| Ok((k.clone(), json_template(ctx, &format!("{path}.{k}"), v)?)))
                .collect::<Result<_, ConfigError>>()?,
        ),
        other => JsonTemplate::Value(other.clone()),
    })
}

/// Parses the `${…}` placeholders of `text` at `path`; each must name a
/// canary marker, a credential or a value an earlier step extracts.
fn parse_template(
    doc: &Document,
    path: &str,
    text: &str,
    extracted: &BTreeSet<String>,
) -> Result<Template, ConfigError> {
    let bad = |why: String| doc.error_at(path, why);
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        if start > 0 {
            pieces.push(Piece::Literal(rest[..start].to_string()));
        }
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| bad("a `${` is not closed by `}`".into()))?;
        let name = &after[..end];
        let var = if let Some(m) = name.strip_prefix("canary.") {
            Var::Canary(marker(m).ok_or_else(|| {
                bad(format!("canary.{m} is not a marker; valid: canary.id, canary.name, canary.business_number, canary.resident_number"))
            })?)
        } else if let Some(c) = name.strip_prefix("credential.") {
            if !is_identifier(c) {
                return Err(bad(format!("{c:?} is not a credential name")));
            }
            Var::Credential(c.to_string())
        } else if extracted.contains(name) {
            Var::Extracted(name.to_string())
        } else {
            return Err(bad(format!(
                "${{{name}}} is not extracted by an earlier step; valid: canary.<marker>, credential.<name> or a value an earlier step extracts"
            )));
        };
        pieces.push(Piece::Var(var));
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Literal(rest.to_string()));
    }
    Ok(Template(pieces))
}

fn template(ctx: &mut Ctx<'_>, path: &str, text: &str) -> Result<Template, ConfigError> {
    let t = parse_template(ctx.doc, path, text, ctx.extracted)?;
    for p in &t.0 {
        match p {
            Piece::Var(Var::Canary(m)) => {
                ctx.needs
                    .markers
                    .entry(m.as_str())
                    .or_insert_with(|| ctx.step.to_string());
            }
            Piece::Var(Var::Credential(c)) => {
                ctx.needs
                    .credentials
                    .entry(c.clone())
                    .or_insert_with(|| ctx.step.to_string());
            }
            _ => {}
        }
    }
    Ok(t)
}

fn canaries(
    doc: &Document,
    path: &str,
    file: &str,
    needs: &Needs,
    errors: &mut Vec<ConfigError>,
) -> Option<Vec<Canary>> {
    let full = doc.file.parent().unwrap_or(Path::new(".")).join(file);
    let cdoc = match Document::read(&full) {
        Ok(d) => d,
        Err(e) => {
            errors.push(doc.error_at(
                path,
                format!(
                    "cannot read the canary file {}: {}",
                    full.display(),
                    e.message
                ),
            ));
            return None;
        }
    };
    let raw: RawCanaryFile = match cdoc.decode() {
        Ok(r) => r,
        Err(e) => {
            errors.push(e);
            return None;
        }
    };
    let before = errors.len();
    if raw.canaries.len() < 2 || raw.canaries.len() > MAX_CANARIES {
        errors.push(cdoc.error_at(
            "canaries",
            format!(
                "{} canaries; valid: 2 to {MAX_CANARIES} (one cannot be given another's document)",
                raw.canaries.len()
            ),
        ));
    }
    let mut out: Vec<(usize, Canary)> = Vec::new();
    for (i, each) in raw.canaries.iter().enumerate() {
        let cpath = format!("canaries[{i}]");
        match &each.0 {
            Ok(rc) => {
                if let Some(c) = canary(&cdoc, &cpath, rc, needs, errors) {
                    out.push((i, c));
                }
            }
            Err((inner, message)) => errors.push(cdoc.locate(&cpath, inner, message)),
        }
    }
    distinct(&cdoc, &out, errors);
    (errors.len() == before).then(|| out.into_iter().map(|(_, c)| c).collect())
}

fn canary(
    doc: &Document,
    path: &str,
    raw: &RawCanary,
    needs: &Needs,
    errors: &mut Vec<ConfigError>,
) -> Option<Canary> {
    let before = errors.len();
    let key = |k: &str| format!("{path}.{k}");
    if !super::values::valid_name(&raw.id) || raw.id.len() < 3 {
        errors.push(doc.error_at(
            &key("id"),
            format!(
                "{:?} is not a canary id; valid: 3-64 characters of a-z, A-Z, 0-9, '-', '_' or '.'",
                raw.id
            ),
        ));
    }
    if raw.name.len() < MIN_NAME_BYTES
        || raw.name.len() > 100
        || raw.name.chars().any(char::is_control)
    {
        errors.push(doc.error_at(
            &key("name"),
            format!("the display name is {} bytes; valid: {MIN_NAME_BYTES} to 100 bytes without control characters, distinctive enough not to appear on other pages", raw.name.len()),
        ));
    }
    let resident_number = raw.resident_number.as_ref().and_then(|r| {
        if matches!(r, RawSecret::Inline(_)) {
            errors.push(doc.error_at(
                &key("resident_number"),
                "a resident number written in the file; valid: {file: PATH} or {env: VARIABLE}, so it stays out of the configuration",
            ));
            return None;
        }
        let text = values::secret(doc, &key("resident_number"), r)
            .map_err(|e| errors.push(e))
            .ok()?;
        // Never echoed: even a test number looks like personal data.
        match parse_registration_number(&text) {
            Some(digits) => Some(Secret(String::from_utf8_lossy(&digits).into_owned())),
            None => {
                errors.push(doc.error_at(
                    &key("resident_number"),
                    "not a valid resident registration number; valid: 13 digits (a hyphen after the sixth allowed) with a valid date and check digit, issued for testing",
                ));
                None
            }
        }
    });
    if let Some(b) = &raw.business_number
        && (b.bytes().filter(u8::is_ascii_digit).count() != 10
            || b.len() > 12
            || !b.bytes().all(|c| c.is_ascii_digit() || c == b'-'))
    {
        errors.push(doc.error_at(
            &key("business_number"),
            "not a business registration number; valid: its 10 digits, hyphens allowed, such as 220-81-00001",
        ));
    }
    let mut credentials = BTreeMap::new();
    for (name, value) in &raw.credentials {
        let cpath = format!("{}.{name}", key("credentials"));
        if matches!(value, RawSecret::Inline(_)) {
            errors.push(doc.error_at(
                &cpath,
                "a credential written in the file; valid: {file: PATH} or {env: VARIABLE}, so it stays out of the configuration",
            ));
            continue;
        }
        match values::secret(doc, &cpath, value) {
            Ok(v) => {
                credentials.insert(name.clone(), Secret(v));
            }
            Err(e) => errors.push(e),
        }
    }
    let has = |m: &str| match m {
        "business_number" => raw.business_number.is_some(),
        "resident_number" => raw.resident_number.is_some(),
        _ => true,
    };
    for (m, step) in &needs.markers {
        if !has(m) {
            errors.push(doc.error_at_key(
                path,
                format!("canary {:?} has no {m}, which step {step:?} uses; valid: give every canary a {m}", raw.id),
            ));
        }
    }
    for (c, step) in &needs.credentials {
        if !raw.credentials.contains_key(c) {
            errors.push(doc.error_at_key(
                path,
                format!("canary {:?} has no credential {c:?}, which step {step:?} uses; valid: credentials: {{{c}: {{file: PATH}}}}", raw.id),
            ));
        }
    }
    (errors.len() == before).then(|| Canary {
        id: raw.id.clone(),
        name: raw.name.clone(),
        resident_number,
        business_number: raw.business_number.clone(),
        credentials,
    })
}

/// Markers must tell canaries apart: none equal to, or inside, another's.
fn distinct(doc: &Document, canaries: &[(usize, Canary)], errors: &mut Vec<ConfigError>) {
    let markers = |c: &Canary| -> Vec<(&'static str, String)> {
        let mut m = vec![("id", c.id.clone()), ("name", c.name.clone())];
        if let Some(b) = &c.business_number {
            m.push((
                "business_number",
                b.chars().filter(char::is_ascii_digit).collect(),
            ));
        }
        if let Some(r) = &c.resident_number {
            m.push(("resident_number", r.0.clone()));
        }
        m
    };
    for (x, (i, a)) in canaries.iter().enumerate() {
        for (j, b) in &canaries[x + 1..] {
            for (ka, va) in markers(a) {
                for (kb, vb) in markers(b) {
                    if ka == "id" && kb == "id" && va == vb {
                        errors.push(doc.error_at(
                            &format!("canaries[{j}].id"),
                            format!("duplicate canary id {vb:?} (also canaries[{i}]); valid: one id per canary"),
                        ));
                    } else if va.contains(&vb) || vb.contains(&va) {
                        // Names and numbers are never echoed; ids may be.
                        errors.push(doc.error_at(
                            &format!("canaries[{j}].{kb}"),
                            format!(
                                "the {kb} of canary {:?} equals or overlaps the {ka} of canaries[{i}] ({:?}); valid: markers unique to one canary, none inside another",
                                b.id, a.id
                            ),
                        ));
                    }
                }
            }
        }
    }
}
