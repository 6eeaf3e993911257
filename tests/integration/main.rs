//! gwanje's integration tests, one binary with a module per area, so the
//! shared helpers in `common` compile once and unused ones show as dead code.
#![allow(clippy::disallowed_methods, reason = "tests measure real elapsed time")]

mod common;

mod alertmanager;
mod blackbox_parity;
mod cluster_faults;
mod cluster_netns;
mod config_errors;
mod daemon;
mod dashboards;
mod demo;
mod deploy_configs;
mod doc_claims;
mod engine_paused;
mod failover_netns;
mod hostile_clients;
mod identity;
mod journal;
mod package;
mod probe_dns_tcp_icmp;
mod probe_http;
mod quorum_rule;
mod redirects;
mod scheduler;
mod structure;
mod vantages;
mod vantages_netns;
