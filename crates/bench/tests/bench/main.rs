//! Regression test of the controller's Twilio call counts (counts, not times): a small
//! onboarding against the simulator and the local API, the controller in this process.

mod counts;
mod discovery;
