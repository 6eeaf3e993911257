//! The shipped Grafana dashboards' queries, with their variables replaced
//! the way a user's selection would, for checks against a real Prometheus.

/// `expr` with `$service` as every service, `$job` as gwanje's scrape job
/// and `$__rate_interval` as `rate`.
pub fn expand(expr: &str, rate: &str) -> String {
    expr.replace("$service", ".*")
        .replace("$job", "gwanje")
        .replace("$__rate_interval", rate)
}

/// Every panel query of `dashboards/<file>`: (panel title, expanded expr).
pub fn panel_queries(file: &str, rate: &str) -> Vec<(String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("dashboards").join(file)).expect("dashboard");
    let dash: serde_json::Value = serde_json::from_str(&text).expect("json");
    let mut out = Vec::new();
    for p in dash["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().expect("expr");
            out.push((p["title"].to_string(), expand(expr, rate)));
        }
    }
    out
}

/// Asserts that the instant query answer `r` of panel `title` holds data.
pub fn assert_has_data(title: &str, expr: &str, r: &serde_json::Value) {
    assert_eq!(r["status"], "success", "{title}: {expr}: {r}");
    assert!(
        r["data"]["result"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{title}: {expr} returned no data: {r}"
    );
}
