//! Integration tests of trusthub-sim: one test binary, modules per topic.

mod admin;
mod auth;
mod common;
mod faults;
mod rules;
mod vetting;
mod walkthrough;
