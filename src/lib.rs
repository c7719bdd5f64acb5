//! trusthub-operator: a Kubernetes operator that automates Twilio Trust Hub SHAKEN/STIR
//! onboarding for direct customers whose phone numbers live in subaccounts.

pub mod api;
pub mod planner;
pub mod twilio;
pub mod controller;
