//! trusthub-operator: a Kubernetes operator that automates Twilio Trust Hub SHAKEN/STIR
//! onboarding for direct customers whose phone numbers live in subaccounts.

pub mod allocator;
pub mod api;
pub mod controller;
pub mod leader;
pub mod metrics;
pub mod planner;
pub mod preflight;
pub mod runtime;
pub mod server;
pub mod twilio;
pub mod webhook;
