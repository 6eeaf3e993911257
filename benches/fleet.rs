//! Probing cost on a loopback fleet: gwanje vs blackbox_exporter.
//!
//!   cargo bench --bench fleet -- [--targets 1000,5000] [--intervals 10s,5s] [--seconds 90]
//!                                 [--setups gwanje,journal,blackbox]
//!
//! For each (targets, interval) it serves N HTTP targets on 127.0.0.1, runs
//! gwanje on them with a Prometheus scraping gwanje, then (when Debian's
//! prometheus-blackbox-exporter and prometheus are installed) runs
//! blackbox_exporter the way it is deployed: Prometheus scraping `/probe`
//! once per target. It prints probes/s achieved vs intended, CPU ms per probe
//! of the exporter and of Prometheus (from /proc), peak RSS, and lateness.
//! The `journal` setup is gwanje with its flight recorder on, and also
//! prints the bytes it writes per probe outcome and per day.
//! Traffic stays on loopback; every process started is ended by its PID.

#[path = "../tests/integration/common/mod.rs"]
#[allow(
    dead_code,
    unused_imports,
    reason = "a benchmark uses part of the test helpers"
)]
mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::companions::{self, Proc};
use common::daemon::Daemon;
use common::{client, expo};

/// Ports the fleet listens on (targets are spread over them).
const FLEET_PORTS: usize = 8;

struct Args {
    targets: Vec<usize>,
    intervals: Vec<Duration>,
    seconds: u64,
    gwanje: bool,
    journal: bool,
    blackbox: bool,
}

fn args() -> Args {
    let mut a = Args {
        targets: vec![1000, 5000],
        intervals: vec![Duration::from_secs(10), Duration::from_secs(5)],
        seconds: 90,
        gwanje: true,
        journal: false,
        blackbox: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--targets" => {
                a.targets = value()
                    .split(',')
                    .map(|s| s.parse().expect("number of targets"))
                    .collect()
            }
            "--intervals" => {
                a.intervals = value()
                    .split(',')
                    .map(|s| humantime::parse_duration(s).expect("interval like 10s"))
                    .collect()
            }
            "--seconds" => a.seconds = value().parse().expect("seconds"),
            "--setups" => {
                let v = value();
                let has = |name: &str| v.split(',').any(|s| s == name);
                (a.gwanje, a.journal, a.blackbox) =
                    (has("gwanje"), has("journal"), has("blackbox"));
            }
            "--bench" => {}
            other => {
                panic!("unknown argument {other}; use --targets, --intervals, --seconds, --setups")
            }
        }
    }
    a
}

/// CPU seconds (user + system) a process has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime), counted after the comm field.
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// Peak resident set size, MB.
fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmHWM");
    kb / 1024.0
}

async fn serve_fleet() -> (Vec<common::Server>, Vec<u16>) {
    let app = axum::Router::new().route(
        "/t/{i}",
        axum::routing::get(|| async {
            "<html><title>Citizen Portal</title><body>ok</body></html>"
        }),
    );
    let mut servers = Vec::new();
    for _ in 0..FLEET_PORTS {
        servers.push(common::fleet::http(app.clone()).await);
    }
    let ports = servers.iter().map(|s| s.addr.port()).collect();
    (servers, ports)
}

fn target_url(ports: &[u16], i: usize) -> String {
    format!("http://127.0.0.1:{}/t/{i}", ports[i % ports.len()])
}

struct Row {
    setup: &'static str,
    probes_per_s: f64,
    intended_per_s: f64,
    exporter_cpu_ms: f64,
    prometheus_cpu_ms: f64,
    peak_rss_mb: f64,
    on_time: String,
}

fn prometheus_available() -> bool {
    Command::new("prometheus")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn blackbox_available() -> bool {
    Command::new("prometheus-blackbox-exporter")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn start_prometheus(dir: &Path, scrape: &str, interval: Duration) -> Proc {
    let secs = interval.as_secs().max(1);
    let timeout = (secs / 2).max(1);
    let config = format!(
        "global: {{scrape_interval: {secs}s, scrape_timeout: {timeout}s}}\nscrape_configs:\n{scrape}"
    );
    companions::prometheus(dir, &config).expect("prometheus is installed")
}

async fn run_gwanje(
    n: usize,
    interval: Duration,
    seconds: u64,
    ports: &[u16],
    journal: bool,
) -> Row {
    let dir = tempfile::tempdir().unwrap();
    let timeout = (interval / 2).min(Duration::from_secs(5));
    let mut catalog = format!(
        "service: fleet\ninterval: {}\ntimeout: {}\ntargets:\n",
        humantime::format_duration(interval),
        humantime::format_duration(timeout)
    );
    for i in 0..n {
        writeln!(
            catalog,
            "  - {{name: t{i}, http: {{url: '{}'}}}}",
            target_url(ports, i)
        )
        .unwrap();
    }
    std::fs::create_dir(dir.path().join("probes")).unwrap();
    std::fs::write(dir.path().join("probes/fleet.yaml"), catalog).unwrap();
    let config = dir.path().join("gwanje.yaml");
    let recorder = if journal {
        "journal: {dir: journal, retain_bytes: 4294967296}\n"
    } else {
        ""
    };
    std::fs::write(&config, format!("listen: 127.0.0.1:0\nprobe_files: [probes/*.yaml]\nscheduler: {{max_concurrency: 4000}}\nlogging: {{level: \"warn,gwanje::daemon=info\"}}\n{recorder}")).unwrap();
    let mut d = Daemon::start(&config, dir.path().join("gwanje.log"));
    let addr = d.addr;
    let port = addr.port();
    d.wait_ready(Duration::from_secs(30)).await;
    let pid = d.pid();
    let prom = prometheus_available().then(|| {
        start_prometheus(
            dir.path(),
            &format!(
                "  - job_name: gwanje\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
            ),
            interval,
        )
    });
    // Warm up for one interval so every target has started.
    tokio::time::sleep(interval + Duration::from_secs(2)).await;
    let probes = |text: &str| expo::sum(&expo::parse(text), "gwanje_probes_total", &[]);
    let start_text = client::get(addr, "/metrics").await.unwrap().body;
    let (cpu0, pcpu0) = (
        cpu_seconds(pid),
        prom.as_ref().map_or(0.0, |p| cpu_seconds(p.pid())),
    );
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let end_text = client::get(addr, "/metrics").await.unwrap().body;
    let (cpu1, pcpu1) = (
        cpu_seconds(pid),
        prom.as_ref().map_or(0.0, |p| cpu_seconds(p.pid())),
    );
    let rss = peak_rss_mb(pid);
    let done = probes(&end_text) - probes(&start_text);
    let s = expo::parse(&end_text);
    let count = expo::value(&s, "gwanje_scheduler_lateness_seconds_count", &[]).unwrap_or(0.0);
    let bucket = |le: &str| {
        expo::value(
            &s,
            "gwanje_scheduler_lateness_seconds_bucket",
            &[("le", le)],
        )
        .unwrap_or(0.0)
    };
    let (within, within_50ms) = (bucket("0.1"), bucket("0.05"));
    let written = |text: &str| {
        expo::value(
            &expo::parse(text),
            "gwanje_journal_written_bytes_total",
            &[],
        )
        .unwrap_or(0.0)
    };
    let bytes = written(&end_text) - written(&start_text);
    let dropped = expo::value(&s, "gwanje_journal_dropped_records_total", &[]).unwrap_or(0.0);
    let overruns = expo::value(&s, "gwanje_scheduler_overruns_total", &[]).unwrap_or(0.0);
    let failed = done
        - (expo::sum(&s, "gwanje_probes_total", &[("result", "success")])
            - expo::sum(
                &expo::parse(&start_text),
                "gwanje_probes_total",
                &[("result", "success")],
            ));
    drop(prom);
    let _ = d.stop();
    let journal_note = if journal {
        format!(
            "; journal {:.0} B/probe, {:.1} GB/day, {dropped} dropped",
            bytes / done,
            bytes / seconds as f64 * 86_400.0 / 1e9
        )
    } else {
        String::new()
    };
    Row {
        setup: if journal { "journal" } else { "gwanje" },
        probes_per_s: done / seconds as f64,
        intended_per_s: n as f64 / interval.as_secs_f64(),
        exporter_cpu_ms: (cpu1 - cpu0) * 1000.0 / done,
        prometheus_cpu_ms: (pcpu1 - pcpu0) * 1000.0 / done,
        peak_rss_mb: rss,
        on_time: format!(
            "{:.2}% <100ms late ({:.2}% <50ms), {overruns} overruns, {failed} failed{journal_note}",
            100.0 * within / count.max(1.0),
            100.0 * within_50ms / count.max(1.0)
        ),
    }
}

async fn run_blackbox(n: usize, interval: Duration, seconds: u64, ports: &[u16]) -> Row {
    let dir = tempfile::tempdir().unwrap();
    let timeout = (interval / 2).min(Duration::from_secs(5));
    let modules = format!(
        "modules:\n  http_2xx:\n    prober: http\n    timeout: {}s\n    http: {{preferred_ip_protocol: ip4}}\n",
        timeout.as_secs().max(1)
    );
    let bb = companions::blackbox(dir.path(), &modules).expect("blackbox_exporter is installed");
    let bb_port = bb.addr.port();
    let mut scrape = String::from(
        "  - job_name: blackbox\n    metrics_path: /probe\n    params: {module: [http_2xx]}\n    static_configs:\n      - targets:\n",
    );
    for i in 0..n {
        writeln!(scrape, "        - '{}'", target_url(ports, i)).unwrap();
    }
    writeln!(
        scrape,
        "    relabel_configs:\n      - {{source_labels: [__address__], target_label: __param_target}}\n      - {{source_labels: [__param_target], target_label: instance}}\n      - {{target_label: __address__, replacement: '127.0.0.1:{bb_port}'}}"
    )
    .unwrap();
    let prom = start_prometheus(dir.path(), &scrape, interval);
    let prom_addr = prom.addr;
    tokio::time::sleep(interval + Duration::from_secs(5)).await;
    let scrapes = || async {
        let text = client::get(prom_addr, "/metrics")
            .await
            .map(|r| r.body)
            .unwrap_or_default();
        expo::sum(
            &expo::parse(&text),
            "prometheus_target_interval_length_seconds_count",
            &[],
        )
    };
    let s0 = scrapes().await;
    let (cpu0, pcpu0) = (cpu_seconds(bb.pid()), cpu_seconds(prom.pid()));
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let s1 = scrapes().await;
    let (cpu1, pcpu1) = (cpu_seconds(bb.pid()), cpu_seconds(prom.pid()));
    let rss = peak_rss_mb(bb.pid());
    let text = client::get(prom_addr, "/metrics")
        .await
        .map(|r| r.body)
        .unwrap_or_default();
    let p99 = expo::value(
        &expo::parse(&text),
        "prometheus_target_interval_length_seconds",
        &[("quantile", "0.99")],
    )
    .unwrap_or(f64::NAN);
    drop(prom);
    drop(bb);
    let done = s1 - s0;
    Row {
        setup: "blackbox",
        probes_per_s: done / seconds as f64,
        intended_per_s: n as f64 / interval.as_secs_f64(),
        exporter_cpu_ms: (cpu1 - cpu0) * 1000.0 / done,
        prometheus_cpu_ms: (pcpu1 - pcpu0) * 1000.0 / done,
        peak_rss_mb: rss,
        on_time: format!("scrape interval p99 {p99:.3}s"),
    }
}

fn print(n: usize, interval: Duration, r: &Row) {
    println!(
        "{:<9} {:>6} {:>5} {:>9.1} {:>9.1} {:>10.3} {:>10.3} {:>10.3} {:>8.1}  {}",
        r.setup,
        n,
        humantime::format_duration(interval).to_string(),
        r.probes_per_s,
        r.intended_per_s,
        r.exporter_cpu_ms,
        r.prometheus_cpu_ms,
        r.exporter_cpu_ms + r.prometheus_cpu_ms,
        r.peak_rss_mb,
        r.on_time
    );
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (_servers, ports) = serve_fleet().await;
        let compare = a.blackbox && blackbox_available() && prometheus_available();
        if a.blackbox && !compare {
            println!("note: install Debian's prometheus-blackbox-exporter and prometheus to compare side by side");
        }
        println!("setup     targets every probes/s  intended  cpu ms/probe      +prom      total  peakRSS  timeliness");
        println!("                                            (exporter)                        MB");
        for &n in &a.targets {
            for &interval in &a.intervals {
                let mut g = None;
                if a.gwanje {
                    let row = run_gwanje(n, interval, a.seconds, &ports, false).await;
                    print(n, interval, &row);
                    g = Some(row);
                }
                if a.journal {
                    let j = run_gwanje(n, interval, a.seconds, &ports, true).await;
                    print(n, interval, &j);
                    if let Some(g) = &g {
                        println!(
                            "journal on/off: cpu/probe {:.2}, peak RSS {:.2}",
                            j.exporter_cpu_ms / g.exporter_cpu_ms,
                            j.peak_rss_mb / g.peak_rss_mb
                        );
                    }
                }
                let Some(g) = g else { continue };
                if compare {
                    let b = run_blackbox(n, interval, a.seconds, &ports).await;
                    print(n, interval, &b);
                    println!(
                        "ratio gwanje/blackbox: cpu/probe {:.2} (with Prometheus {:.2}), peak RSS {:.2}",
                        g.exporter_cpu_ms / b.exporter_cpu_ms,
                        (g.exporter_cpu_ms + g.prometheus_cpu_ms) / (b.exporter_cpu_ms + b.prometheus_cpu_ms),
                        g.peak_rss_mb / b.peak_rss_mb
                    );
                }
            }
        }
    });
}
