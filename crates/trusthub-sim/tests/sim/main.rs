//! Integration tests of trusthub-sim: one test binary, modules per topic.

mod admin;
mod auth;
mod common;
mod faults;
mod numbers;
mod rules;
mod spec_coverage;
mod vetting;
mod walkthrough;
