//! End-to-end tests of the root package (one test binary: linking dominates build time).

mod client_ops;
mod client_prism;
mod client_retry;
mod client_secrets;
mod client_sim_faults;
mod support;
mod tls_provider;
