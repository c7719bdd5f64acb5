//! Integration tests of trusthub-sim: one test binary, modules per topic.

mod common;
mod walkthrough;
