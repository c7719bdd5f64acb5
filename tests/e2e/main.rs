//! The root package's integration tests, in one binary (each tests/*.rs file would link
//! separately, and linking dominates the build on small machines).

mod api_crds;
mod api_manifests;
mod chart;
mod chart_image;
mod chart_values;
mod client_ops;
mod client_prism;
mod client_retry;
mod client_secrets;
mod client_sim_faults;
mod client_support;
mod cluster;
mod controller_bad_input;
mod controller_evaluation;
mod controller_events;
mod controller_expiry;
mod controller_happy;
mod controller_lifecycle;
mod controller_resilience;
mod object_size;
mod operator_failover;
mod operator_leader;
mod operator_metrics;
mod operator_support;
mod operator_webhook;
mod preflight;
mod real_chart;
mod real_crds;
mod real_kubectl;
mod real_object_size;
mod real_rbac;
mod support;
mod tls_provider;
