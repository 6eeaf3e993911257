//! The configuration as written: serde structs, strict about unknown keys.
//!
//! Durations, addresses and patterns stay strings here; `validate` turns
//! them into typed values so its errors can point at the exact key.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `config/gwanje.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTop {
    pub listen: Option<yaml_serde::Value>,
    pub probe_files: Option<yaml_serde::Value>,
    pub defaults: Option<yaml_serde::Value>,
    pub scheduler: Option<yaml_serde::Value>,
    pub logging: Option<yaml_serde::Value>,
    pub admin: Option<yaml_serde::Value>,
    pub paths: Option<yaml_serde::Value>,
    pub failover_groups: Option<yaml_serde::Value>,
    pub alerting: Option<yaml_serde::Value>,
    pub journal: Option<yaml_serde::Value>,
    pub path_quality: Option<yaml_serde::Value>,
    pub vantage: Option<yaml_serde::Value>,
    pub peers: Option<yaml_serde::Value>,
    pub cluster: Option<yaml_serde::Value>,
}

/// The daemon config, section by section; each section is decoded on its
/// own from [`RawTop`], so one bad section does not hide the others' errors.
#[derive(Debug, Default)]
pub struct RawConfig {
    pub journal: Option<RawJournal>,
    pub path_quality: Option<RawQuality>,
    pub listen: Option<String>,
    pub probe_files: Vec<String>,
    pub defaults: RawDefaults,
    pub scheduler: RawScheduler,
    pub logging: RawLogging,
    pub admin: RawAdmin,
    pub paths: Vec<RawPath>,
    pub failover_groups: Vec<RawGroup>,
    pub alerting: RawAlerting,
    pub vantage: RawVantage,
    pub peers: Vec<RawPeer>,
    pub cluster: Option<RawCluster>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    pub name: String,
    pub replica: Option<String>,
    pub etcd: RawEtcd,
    pub lease_ttl: Option<String>,
    pub actuate: Option<bool>,
    pub fence_file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEtcd {
    pub endpoints: Vec<String>,
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVantage {
    pub name: Option<String>,
    pub site: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub controls: Vec<String>,
    pub min_vantages: Option<u32>,
    pub max_skew: Option<String>,
    pub isolation_share: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPeer {
    pub name: String,
    pub url: String,
    pub token_file: String,
    pub ca_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub health: Option<RawHealth>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealth {
    pub fall: u8,
    pub rise: u8,
    pub window: Option<u8>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScheduler {
    pub max_concurrency: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLogging {
    pub format: Option<String>,
    pub level: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub token_file: Option<String>,
    pub observer_token_file: Option<String>,
    pub max_connections: Option<usize>,
}

/// A probe catalog, `probes/<service>.yaml`. Targets are decoded one by one
/// so that one bad target does not hide the errors of the others.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCatalog {
    pub service: String,
    #[allow(dead_code, reason = "free text for people reading the catalog")]
    pub description: Option<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub health: Option<RawHealth>,
    pub quorum: Option<u32>,
    pub targets: Vec<super::document::Each<RawTarget>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub name: String,
    #[allow(dead_code, reason = "free text for people reading the catalog")]
    pub description: Option<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub health: Option<RawHealth>,
    // Boxed: a catalog of thousands of targets is held as raw targets while
    // it is validated, and inline each would carry every kind's fields.
    pub http: Option<Box<RawHttp>>,
    pub tcp: Option<Box<RawTcp>>,
    pub dns: Option<Box<RawDns>>,
    pub icmp: Option<Box<RawIcmp>>,
    pub identity: Option<Box<RawIdentity>>,
}

/// A header value given inline, or read from a file or the environment so
/// that secrets stay out of the config file.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawSecret {
    Inline(String),
    File { file: String },
    Env { env: String },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    pub address: Option<String>,
    pub interface: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub ca_file: Option<String>,
    pub server_name: Option<String>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJson {
    pub pointer: String,
    pub equals: Option<yaml_serde::Value>,
    pub exists: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    pub url: String,
    pub method: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, RawSecret>,
    pub body: Option<String>,
    #[serde(default)]
    pub valid_status: Vec<u16>,
    pub follow_redirects: Option<bool>,
    pub max_redirects: Option<u32>,
    #[serde(default)]
    pub allow_https_downgrade: bool,
    #[serde(default)]
    pub body_must_match: Vec<String>,
    #[serde(default)]
    pub body_must_not_match: Vec<String>,
    #[serde(default)]
    pub json: Vec<RawJson>,
    pub personal_data_guard: Option<bool>,
    pub max_body_bytes: Option<u64>,
    pub tls: Option<RawTls>,
    pub http_version: Option<String>,
    #[serde(default)]
    pub all_addresses: bool,
    pub source: Option<RawSource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    pub send: Option<String>,
    pub expect: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTcp {
    pub address: String,
    pub tls: Option<RawTls>,
    #[serde(default)]
    pub exchange: Vec<RawStep>,
    pub source: Option<RawSource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDns {
    pub server: String,
    pub protocol: Option<String>,
    pub name: String,
    #[serde(rename = "type")]
    pub record_type: Option<String>,
    #[serde(default)]
    pub valid_rcodes: Vec<String>,
    pub min_answers: Option<usize>,
    #[serde(default)]
    pub answers_include: Vec<String>,
    #[serde(default)]
    pub answers_match: Vec<String>,
    pub source: Option<RawSource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIcmp {
    pub host: String,
    pub packets: Option<u16>,
    pub max_loss: Option<f64>,
    pub payload_size: Option<usize>,
    #[serde(default)]
    pub dont_fragment: bool,
    pub confirm: Option<u16>,
    pub source: Option<RawSource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouterCheck {
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub packets: Option<u16>,
    pub payload_size: Option<usize>,
    pub max_loss: Option<f64>,
    pub health: Option<RawHealth>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPath {
    pub name: String,
    pub gateway: String,
    pub interface: Option<String>,
    pub source: Option<String>,
    pub fwmark: Option<u32>,
    pub table: Option<u32>,
    #[serde(default)]
    pub manage_policy_routing: bool,
    pub router_check: Option<RawRouterCheck>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFailback {
    pub mode: String,
    pub after: Option<String>,
    pub dampening: Option<RawDampening>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDampening {
    pub penalty: Option<u32>,
    pub half_life: Option<String>,
    pub reuse: Option<u32>,
    pub max_penalty: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFlapGuard {
    pub max_switches: u32,
    pub window: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExec {
    pub command: Vec<String>,
    pub timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    pub url: String,
    pub timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGroup {
    pub name: String,
    pub routes: Vec<String>,
    pub paths: Vec<String>,
    #[serde(default)]
    pub checks: Vec<String>,
    pub detection: Option<RawHealth>,
    pub min_dwell: Option<String>,
    pub hold_down: Option<String>,
    pub failback: Option<RawFailback>,
    pub flap_guard: Option<RawFlapGuard>,
    pub isolation_window: Option<String>,
    pub action: Option<String>,
    pub exec: Option<RawExec>,
    pub webhook: Option<RawWebhook>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlertWebhook {
    pub url: String,
    pub hmac_secret_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlerting {
    #[serde(default)]
    pub alertmanagers: Vec<String>,
    #[serde(default)]
    pub webhooks: Vec<RawAlertWebhook>,
    pub resend_interval: Option<String>,
    pub resolved_resend_for: Option<String>,
    pub escalate_after: Option<String>,
    pub certificate_warning: Option<String>,
    pub external_url: Option<String>,
    pub runbook_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJournal {
    pub dir: String,
    pub segment_bytes: Option<u64>,
    pub segment_age: Option<String>,
    pub retain_bytes: Option<u64>,
    pub retain_age: Option<String>,
    pub fsync: Option<String>,
    pub queue: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuality {
    pub window: Option<String>,
    pub tolerated_loss: Option<f64>,
    pub degraded_loss: Option<f64>,
    pub margin: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIdentity {
    pub base_url: String,
    pub canaries: String,
    pub concurrency: Option<usize>,
    pub rounds: Option<u32>,
    pub max_requests_per_second: Option<u32>,
    pub max_body_bytes: Option<u64>,
    pub tls: Option<RawTls>,
    pub source: Option<RawSource>,
    #[serde(default)]
    pub allow_http: bool,
    pub steps: Vec<RawFlowStep>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFlowStep {
    pub name: String,
    pub method: Option<String>,
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
    pub json: Option<yaml_serde::Value>,
    #[serde(default)]
    pub valid_status: Vec<u16>,
    #[serde(default)]
    pub extract: BTreeMap<String, RawExtract>,
    pub document: Option<RawDocumentRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExtract {
    pub json: Option<String>,
    pub regex: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDocumentRule {
    #[serde(default)]
    pub require: Vec<String>,
    #[serde(default)]
    pub allow_own: Vec<String>,
    #[serde(default)]
    pub must_match: Vec<String>,
}

/// A canary file, referenced by an identity target.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCanaryFile {
    pub canaries: Vec<super::document::Each<RawCanary>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCanary {
    pub id: String,
    pub name: String,
    pub resident_number: Option<RawSecret>,
    pub business_number: Option<String>,
    #[serde(default)]
    pub credentials: BTreeMap<String, RawSecret>,
}
