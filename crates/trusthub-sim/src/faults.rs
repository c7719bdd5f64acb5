//! Fault injection, applied to every `/v1` and `/2010-04-01` request (never to `/_sim`).
//!
//! Two mechanisms, checked in this order:
//! 1. **Scripted faults** ([`ScriptedFault`]): "fail the next N requests whose method and
//!    path prefix match". Fully deterministic; consumed first-come first-served.
//! 2. **Rates**: per request one number is drawn from a [`StdRng`] seeded with
//!    [`Faults::rng_seed`] (so a run is reproducible for a given request order) and compared
//!    with the cumulative rates of 429, 500, 503 and dropped connections.
//!
//! Independently, `latency_ms` delays every request, and `max_in_flight` answers 429/20429
//! to requests beyond N in flight (Twilio's concurrency limit; no `Retry-After`, as Twilio
//! documents none). A dropped connection is closed without writing any response byte.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// What to do to a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// 429 with code 20429; `Retry-After: <secs>` when set.
    TooManyRequests {
        #[serde(default)]
        retry_after_secs: Option<u64>,
    },
    /// 500 with code 20500.
    InternalError,
    /// 503 with code 20503.
    ServiceUnavailable,
    /// Close the TCP connection without a response.
    Drop,
    /// Delay the request, then serve it normally.
    Delay { ms: u64 },
}

/// Apply `action` to the next `count` requests matching `method` (any when `None`) and
/// `path_prefix` (e.g. `/v1/TrustProducts`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptedFault {
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub path_prefix: String,
    pub count: u32,
    pub action: FaultKind,
}

/// Fault settings (CLI flags, `PUT /_sim/faults`, [`crate::SimServer::set_faults`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Probability (0..1) of a 429/20429.
    pub rate_429: f64,
    /// `Retry-After` seconds sent with rate-based 429s; `None` sends no header.
    pub retry_after_secs: Option<u64>,
    pub rate_500: f64,
    pub rate_503: f64,
    /// Probability of closing the connection without a response.
    pub rate_drop: f64,
    /// Added to every request.
    pub latency_ms: u64,
    /// Requests in flight beyond this number get 429/20429.
    pub max_in_flight: Option<usize>,
    pub rng_seed: u64,
    pub scripted: Vec<ScriptedFault>,
}

impl Faults {
    /// No faults at all.
    pub fn none() -> Faults {
        Faults::default()
    }
}

/// The decision for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultAction {
    Respond(ApiError),
    Drop,
}

/// What the engine decided: an added delay and maybe a fault.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct FaultPlan {
    pub delay_ms: u64,
    pub action: Option<FaultAction>,
    /// Counter label (`429`, `500`, `503`, `drop`, `delay`) when something was injected.
    pub label: Option<&'static str>,
}

pub struct FaultEngine {
    faults: Faults,
    rng: StdRng,
}

impl FaultEngine {
    pub fn new(faults: Faults) -> FaultEngine {
        let rng = StdRng::seed_from_u64(faults.rng_seed);
        FaultEngine { faults, rng }
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Replace the settings and re-seed the RNG.
    pub fn set(&mut self, faults: Faults) {
        *self = FaultEngine::new(faults);
    }

    pub fn push_scripted(&mut self, fault: ScriptedFault) {
        self.faults.scripted.push(fault);
    }

    pub fn max_in_flight(&self) -> Option<usize> {
        self.faults.max_in_flight
    }

    pub fn decide(&mut self, method: &str, path: &str) -> FaultPlan {
        let mut plan = FaultPlan {
            delay_ms: self.faults.latency_ms,
            ..FaultPlan::default()
        };
        if let Some(index) = self.faults.scripted.iter().position(|f| {
            f.count > 0
                && f.method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && path.starts_with(&f.path_prefix)
        }) {
            let fault = &mut self.faults.scripted[index];
            fault.count -= 1;
            let action = fault.action.clone();
            if fault.count == 0 {
                self.faults.scripted.remove(index);
            }
            apply(&mut plan, action);
            return plan;
        }
        let f = &self.faults;
        if f.rate_429 + f.rate_500 + f.rate_503 + f.rate_drop <= 0.0 {
            return plan;
        }
        let draw: f64 = self.rng.random();
        let mut edge = 0.0;
        let choices = [
            (
                f.rate_429,
                FaultKind::TooManyRequests {
                    retry_after_secs: f.retry_after_secs,
                },
            ),
            (f.rate_500, FaultKind::InternalError),
            (f.rate_503, FaultKind::ServiceUnavailable),
            (f.rate_drop, FaultKind::Drop),
        ];
        for (rate, kind) in choices {
            edge += rate;
            if draw < edge {
                apply(&mut plan, kind);
                break;
            }
        }
        plan
    }
}

fn apply(plan: &mut FaultPlan, kind: FaultKind) {
    let (label, action) = match kind {
        FaultKind::TooManyRequests { retry_after_secs } => (
            "429",
            Some(FaultAction::Respond(ApiError::too_many_requests(
                retry_after_secs,
            ))),
        ),
        FaultKind::InternalError => ("500", Some(FaultAction::Respond(ApiError::internal()))),
        FaultKind::ServiceUnavailable => {
            ("503", Some(FaultAction::Respond(ApiError::unavailable())))
        }
        FaultKind::Drop => ("drop", Some(FaultAction::Drop)),
        FaultKind::Delay { ms } => {
            plan.delay_ms += ms;
            ("delay", None)
        }
    };
    plan.label = Some(label);
    plan.action = action;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripted_faults_fire_exactly_n_times_on_matching_requests() {
        let mut engine = FaultEngine::new(Faults {
            scripted: vec![ScriptedFault {
                method: Some("POST".into()),
                path_prefix: "/v1/TrustProducts".into(),
                count: 2,
                action: FaultKind::InternalError,
            }],
            ..Faults::none()
        });
        assert_eq!(engine.decide("GET", "/v1/TrustProducts").action, None);
        assert!(
            engine
                .decide("POST", "/v1/TrustProducts/BU1")
                .action
                .is_some()
        );
        assert!(engine.decide("POST", "/v1/TrustProducts").action.is_some());
        assert_eq!(engine.decide("POST", "/v1/TrustProducts").action, None);
    }

    #[test]
    fn rates_are_reproducible_for_a_seed() {
        let faults = Faults {
            rate_429: 0.3,
            rng_seed: 7,
            ..Faults::none()
        };
        let run = |f: &Faults| {
            let mut e = FaultEngine::new(f.clone());
            (0..200)
                .map(|_| e.decide("GET", "/v1/x").label.is_some())
                .collect::<Vec<_>>()
        };
        let a = run(&faults);
        assert_eq!(a, run(&faults));
        let hits = a.iter().filter(|h| **h).count();
        assert!((30..90).contains(&hits), "{hits} hits of 200 at rate 0.3");
    }
}
