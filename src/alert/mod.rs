//! Delivering alerts: Alertmanager API v2 (to every replica) and generic
//! webhooks (optionally HMAC-signed). Each receiver has a bounded queue and
//! its own task; a full queue drops the batch and counts it, a failed POST is
//! retried with backoff and counted. Nothing here decides what fires: that is
//! `core::AlertBook`.

mod payload;

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::mpsc;

pub use payload::{AlertmanagerAlert, to_alertmanager};

use crate::metrics::Metrics;
pub use crate::plan::Receiver;

/// Batches a receiver can hold before new ones are dropped.
const QUEUE: usize = 64;
/// Tries per batch.
const TRIES: u32 = 3;

/// The HTTP client for gwanje's outgoing calls (alerts, webhooks): system
/// roots, the same TLS provider as the probes, and no redirects: a delivery
/// (and its signature) goes where it is configured, or fails.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(crate::probe::tls::api_client_config())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client with a preconfigured TLS backend builds")
}

/// Where the engine hands the alerts the core decided to send: [`Sinks`]
/// in production, a recorder in paused-time tests.
pub trait AlertSink: Send {
    /// Queues `alerts` for delivery; never waits.
    fn send(&self, alerts: Vec<AlertmanagerAlert>);
    /// Delivers to `receivers` from now on (a reload changed them).
    fn reconfigure(&mut self, receivers: &[Receiver]);
}

impl AlertSink for Sinks {
    fn send(&self, alerts: Vec<AlertmanagerAlert>) {
        Sinks::send(self, alerts);
    }

    fn reconfigure(&mut self, receivers: &[Receiver]) {
        // Dropping the old queues ends their delivery tasks.
        let http = self.http.clone().unwrap_or_else(http_client);
        if let Some(metrics) = self.metrics.clone() {
            *self = Sinks::start(receivers, http, metrics);
        }
    }
}

/// The running receivers.
#[derive(Clone, Default)]
pub struct Sinks {
    queues: Vec<(String, mpsc::Sender<Arc<Vec<AlertmanagerAlert>>>)>,
    metrics: Option<Arc<Metrics>>,
    http: Option<reqwest::Client>,
}

impl Sinks {
    /// Starts one task per receiver.
    pub fn start(receivers: &[Receiver], http: reqwest::Client, metrics: Arc<Metrics>) -> Self {
        let mut queues = Vec::new();
        for r in receivers {
            let (tx, rx) = mpsc::channel(QUEUE);
            let label = r.label();
            tokio::spawn(deliver(
                r.clone(),
                label.clone(),
                rx,
                http.clone(),
                metrics.clone(),
            ));
            queues.push((label, tx));
        }
        Sinks {
            queues,
            metrics: Some(metrics),
            http: Some(http),
        }
    }

    /// Queues `alerts` for every receiver; a full queue drops and counts.
    pub fn send(&self, alerts: Vec<AlertmanagerAlert>) {
        if alerts.is_empty() {
            return;
        }
        let batch = Arc::new(alerts);
        for (label, tx) in &self.queues {
            if tx.try_send(batch.clone()).is_err()
                && let Some(m) = &self.metrics
            {
                m.alert_queue_dropped_total
                    .with_label_values(&[label])
                    .inc();
            }
        }
    }
}

async fn deliver(
    receiver: Receiver,
    label: String,
    mut rx: mpsc::Receiver<Arc<Vec<AlertmanagerAlert>>>,
    http: reqwest::Client,
    metrics: Arc<Metrics>,
) {
    while let Some(batch) = rx.recv().await {
        let mut delay = Duration::from_millis(500);
        for attempt in 1..=TRIES {
            match post(&receiver, &http, &batch).await {
                Ok(()) => {
                    metrics
                        .alert_deliveries_total
                        .with_label_values(&[&label, "success"])
                        .inc();
                    break;
                }
                Err(e) => {
                    metrics
                        .alert_deliveries_total
                        .with_label_values(&[&label, "failure"])
                        .inc();
                    tracing::warn!(receiver = %label, attempt, "alert delivery failed: {e}");
                    if attempt < TRIES {
                        tokio::time::sleep(delay).await;
                        delay *= 2;
                    }
                }
            }
        }
    }
}

async fn post(
    receiver: &Receiver,
    http: &reqwest::Client,
    alerts: &[AlertmanagerAlert],
) -> Result<(), DeliveryError> {
    let request = match receiver {
        Receiver::Alertmanager(base) => {
            let url = base.join("api/v2/alerts")?;
            http.post(url).json(alerts)
        }
        Receiver::Webhook {
            url,
            hmac_secret_file,
        } => {
            let body = serde_json::to_vec(
                &serde_json::json!({ "version": "gwanje/1", "alerts": alerts }),
            )?;
            let mut req = http
                .post(url.clone())
                .header("content-type", "application/json");
            if let Some(file) = hmac_secret_file {
                // Read at each delivery so a rotated secret takes effect.
                let secret =
                    crate::config::read_secret_file(file, crate::config::MAX_SECRET_FILE_BYTES)?;
                let secret = secret.as_bytes();
                req = req.header(
                    "x-gwanje-signature",
                    format!("sha256={}", sign(trim(secret), &body)),
                );
            }
            req.body(body)
        }
    };
    let resp = request
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| DeliveryError::Http(e.without_url()))?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(DeliveryError::Status(resp.status()))
    }
}

/// Why one delivery of a batch failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The receiver's URL could not be extended with the API path.
    #[error("bad receiver URL: {0}")]
    Url(#[from] url::ParseError),
    /// The secret file could not be read.
    #[error("reading the HMAC secret: {0}")]
    Secret(#[from] std::io::Error),
    /// The request failed (its URL left out: it may carry credentials).
    #[error(transparent)]
    Http(reqwest::Error),
    /// The body could not be encoded.
    #[error("encoding the alerts: {0}")]
    Encode(#[from] serde_json::Error),
    /// The receiver answered with a failure status.
    #[error("answered {0}")]
    Status(reqwest::StatusCode),
}

fn trim(secret: &[u8]) -> &[u8] {
    let end = secret
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &secret[..end]
}

/// HMAC-SHA256 of `body` with `secret`, lowercase hex.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_rfc_4231_test_case_2() {
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn receiver_labels_hide_credentials_and_paths() {
        let r = Receiver::Webhook {
            url: "https://user:pw@chat.example:8443/hook?token=x"
                .parse()
                .unwrap(),
            hmac_secret_file: None,
        };
        assert_eq!(r.label(), "https://chat.example:8443");
    }
}
