//! A validated identity probe: synthetic citizens (canaries) run a short
//! HTTP flow at once, and every document must be their own.

use std::collections::BTreeMap;

use super::parts::{Pattern, Source, TlsSpec};

/// A value that never appears in `Debug` output, logs or the status API.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

/// One synthetic account and the markers its documents carry.
#[derive(Clone, PartialEq, Eq)]
pub struct Canary {
    /// A synthetic id (not personal data: it may be logged).
    pub id: String,
    /// The display name the portal shows on the canary's documents.
    pub name: String,
    /// A test resident registration number, as its 13 digits.
    pub resident_number: Option<Secret>,
    /// A business registration number issued for testing, as written.
    pub business_number: Option<String>,
    /// Login values by name (`${credential.NAME}` in a step).
    pub credentials: BTreeMap<String, Secret>,
}

impl std::fmt::Debug for Canary {
    // The id only: names and numbers look like a person's, even synthetic.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Canary({})", self.id)
    }
}

/// A marker a document step can require or allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Marker {
    /// The canary id.
    Id,
    /// The display name.
    Name,
    /// The business registration number.
    BusinessNumber,
    /// The resident registration number.
    ResidentNumber,
}

impl Marker {
    /// Every marker with its configuration name.
    pub const ALL: [(Marker, &'static str); 4] = [
        (Marker::Id, "id"),
        (Marker::Name, "name"),
        (Marker::BusinessNumber, "business_number"),
        (Marker::ResidentNumber, "resident_number"),
    ];

    /// The configuration name.
    pub fn as_str(self) -> &'static str {
        Marker::ALL
            .iter()
            .find(|(m, _)| *m == self)
            .map_or("", |(_, n)| n)
    }
}

/// Where a template takes a value from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Var {
    /// A canary marker (`${canary.id}`, `${canary.name}`, …).
    Canary(Marker),
    /// A login value (`${credential.password}`).
    Credential(String),
    /// A value an earlier step extracted (`${token}`).
    Extracted(String),
}

/// Text with `${…}` placeholders, parsed once at load.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template(pub Vec<Piece>);

/// A literal run or a placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Text sent as written.
    Literal(String),
    /// A value filled in per canary.
    Var(Var),
}

/// How a step takes a value out of its response.
#[derive(Debug, Clone, PartialEq)]
pub enum Extractor {
    /// The string or number at an RFC 6901 pointer of a JSON body.
    Json(String),
    /// The first capture group (or the whole match) of a regex on the body.
    Regex(Pattern),
}

/// What a document step's responses must and may carry.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DocumentRule {
    /// Markers of the canary's own that must appear.
    pub require: Vec<Marker>,
    /// Own markers that may appear (only `resident_number` needs allowing;
    /// any other registration number always fails).
    pub allow_own: Vec<Marker>,
    /// What every document of the step carries (its title, say), matched
    /// against the decoded text in canonical form: a response without it
    /// is not a document (an error page), a failed step, never a finding.
    pub must_match: Vec<Pattern>,
}

/// The request body of a step.
#[derive(Debug, Clone, PartialEq)]
pub enum StepBody {
    /// No body.
    None,
    /// Text, placeholders filled in as they are.
    Text(Template),
    /// A JSON document whose strings are templates (values JSON-escaped).
    Json(JsonTemplate),
}

/// A JSON value whose strings are templates.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonTemplate {
    /// A string with placeholders.
    Text(Template),
    /// An array.
    List(Vec<JsonTemplate>),
    /// An object, in the configured key order.
    Map(Vec<(String, JsonTemplate)>),
    /// A number, boolean or null, sent as written.
    Value(serde_json::Value),
}

/// One HTTP request of the flow.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowStep {
    /// The step's name, for results and logs.
    pub name: String,
    /// The request method.
    pub method: http::Method,
    /// The path and query below the base URL (values percent-encoded).
    pub path: Template,
    /// Extra request headers.
    pub headers: Vec<(http::HeaderName, Template)>,
    /// The body.
    pub body: StepBody,
    /// Status codes that pass (2xx when empty).
    pub valid_status: Vec<u16>,
    /// Values for later steps, by variable name.
    pub extract: Vec<(String, Extractor)>,
    /// Present when the response is a canary's document.
    pub document: Option<DocumentRule>,
}

/// An identity probe.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentitySpec {
    /// Where every step goes: requests (and credentials) never leave this origin.
    pub base_url: url::Url,
    /// The canaries, from the catalog's canary file.
    pub canaries: Vec<Canary>,
    /// The flow each canary runs, in order.
    pub steps: Vec<FlowStep>,
    /// Flows in flight at once.
    pub concurrency: usize,
    /// Rounds per probe run.
    pub rounds: u32,
    /// Requests a second, across the whole run.
    pub max_requests_per_second: u32,
    /// The most bytes read of one response.
    pub max_body_bytes: u64,
    /// TLS settings for an https base URL.
    pub tls: TlsSpec,
    /// Where requests leave from.
    pub source: Source,
}

/// The least time `rounds` of `sessions` flows of `steps` requests take at
/// `rps` requests a second (the pacing alone, before any latency).
pub fn least_run_time(rounds: u32, sessions: usize, steps: usize, rps: u32) -> std::time::Duration {
    let requests = u64::from(rounds)
        .saturating_mul(sessions as u64)
        .saturating_mul(steps as u64);
    std::time::Duration::from_millis(requests.saturating_mul(1000) / u64::from(rps.max(1)))
}

impl IdentitySpec {
    /// The least time a run of `rounds` at `concurrency` takes.
    pub fn least_run_time(&self, rounds: u32, concurrency: usize) -> std::time::Duration {
        least_run_time(
            rounds,
            self.canaries.len().max(concurrency),
            self.steps.len(),
            self.max_requests_per_second,
        )
    }
}
