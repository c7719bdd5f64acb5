//! Vetting (pending-review → in-review → twilio-approved / twilio-rejected) and status
//! callbacks.
//!
//! Timers: with `review_delay` set, a submitted bundle moves to `in-review` after that
//! delay; with `approve_delay` set, an `in-review` bundle is decided after that delay. The
//! automatic decision (simulator's choice) runs the bundle's evaluation: compliant →
//! approved (`valid_until` = now + 365 days), otherwise rejected with the evaluation's
//! error codes in `errors`. With a delay unset, the bundle waits for the admin API
//! (`POST /_sim/bundles/{sid}/approve|reject`). Timers of an earlier submission are ignored
//! after a resubmit.
//!
//! Callbacks: on every status change (including the client's submit) a bundle with a
//! `status_callback` gets a form POST, delivered in order by one worker, signed with
//! `X-Twilio-Signature` = base64(HMAC-SHA1(auth token of the owning account, URL + the
//! POST parameters sorted by name, each as name+value)), as Twilio signs webhooks. The real
//! Trust Hub payload is undocumented; the simulator sends `AccountSid`, `BundleSid`,
//! `TrustProductSid` or `CustomerProfileSid`, `Status`, and on rejection `FailureReason`
//! and `ErrorCodes` (comma-separated). Failed deliveries are counted, not retried.

use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use tokio::sync::mpsc;

use crate::app::{App, lock};
use crate::error::SimError;
use crate::evaluation;
use crate::model::{Bundle, BundleKind, BundleStatus};
use crate::rules::{Decision, StatusChange, apply_decision};

/// React to a status change: queue its callback and start the next vetting timer.
pub(crate) fn on_change(app: &App, change: StatusChange) {
    let delay = match change.status {
        BundleStatus::PendingReview => app.review_delay,
        BundleStatus::InReview => app.approve_delay,
        _ => None,
    };
    if let Some(delay) = delay {
        let app = app.clone();
        let sid = change.sid.clone();
        let submission = change.submission;
        let status = change.status;
        let mut shutdown = app.shutdown.subscribe();
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.changed() => return,
            }
            let decision = if status == BundleStatus::PendingReview {
                Decision::StartReview
            } else {
                automatic_decision(&app, &sid)
            };
            step(&app, &sid, submission, &decision);
        });
    }
    if change.status_callback.is_some() {
        // The worker lives as long as the server; after shutdown nothing is delivered.
        let _ = app.callbacks.send(change);
    }
}

fn automatic_decision(app: &App, sid: &str) -> Decision {
    let state = app.state();
    let Some(bundle) = state.bundle_any(sid) else {
        return Decision::Approve;
    };
    let verdict = evaluation::evaluate(&state, bundle);
    if verdict.compliant {
        Decision::Approve
    } else {
        Decision::Reject(verdict.error_codes())
    }
}

/// Apply a timer step if the bundle is still in the same submission.
fn step(app: &App, sid: &str, submission: u64, decision: &Decision) {
    let change = {
        let mut state = app.state();
        let current = state
            .bundles
            .iter()
            .find(|b| b.sid == sid)
            .map(|b| b.submission);
        if current != Some(submission) {
            return;
        }
        apply_decision(&mut state, sid, decision, chrono::Utc::now())
    };
    if let Some(change) = change {
        on_change(app, change);
    }
}

/// Admin approve/reject: from `pending-review` the bundle passes through `in-review` first
/// (both changes are reported).
pub(crate) fn decide(
    app: &App,
    sid: &str,
    approve: bool,
    codes: &[u32],
) -> Result<Bundle, SimError> {
    let mut changes = Vec::new();
    let bundle = {
        let mut state = app.state();
        let now = chrono::Utc::now();
        let status = state
            .bundles
            .iter()
            .find(|b| b.sid == sid)
            .map(|b| b.status)
            .ok_or_else(|| SimError::UnknownBundle(sid.to_string()))?;
        if !matches!(status, BundleStatus::PendingReview | BundleStatus::InReview) {
            return Err(SimError::NotUnderReview {
                sid: sid.to_string(),
                status: status.as_str().to_string(),
            });
        }
        if status == BundleStatus::PendingReview {
            changes.extend(apply_decision(&mut state, sid, &Decision::StartReview, now));
        }
        let decision = if approve {
            Decision::Approve
        } else {
            Decision::Reject(codes.to_vec())
        };
        changes.extend(apply_decision(&mut state, sid, &decision, now));
        state
            .bundles
            .iter()
            .find(|b| b.sid == sid)
            .cloned()
            .ok_or_else(|| SimError::UnknownBundle(sid.to_string()))?
    };
    for change in changes {
        // Only callbacks: the decision is final, no timer must run for these changes.
        if change.status_callback.is_some() {
            let _ = app.callbacks.send(change);
        }
    }
    Ok(bundle)
}

/// Admin "set valid_until": moves an approval's expiry (to the past to model a lapsed
/// approval, later to model Twilio's renewal, `None` to remove it). Changes nothing else and
/// sends no callback: Twilio documents none for an expiry.
pub(crate) fn set_valid_until(
    app: &App,
    sid: &str,
    valid_until: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Bundle, SimError> {
    let mut state = app.state();
    let bundle = state
        .bundles
        .iter_mut()
        .find(|b| b.sid == sid)
        .ok_or_else(|| SimError::UnknownBundle(sid.to_string()))?;
    bundle.valid_until = valid_until;
    Ok(bundle.clone())
}

/// Admin "start review": `pending-review` → `in-review` (callback and, with an
/// `approve_delay`, the decision timer follow as for a timed review).
pub(crate) fn start_review(app: &App, sid: &str) -> Result<Bundle, SimError> {
    let (bundle, change) = {
        let mut state = app.state();
        let status = state
            .bundles
            .iter()
            .find(|b| b.sid == sid)
            .map(|b| b.status)
            .ok_or_else(|| SimError::UnknownBundle(sid.to_string()))?;
        let change = apply_decision(&mut state, sid, &Decision::StartReview, chrono::Utc::now())
            .ok_or_else(|| SimError::NotUnderReview {
                sid: sid.to_string(),
                status: status.as_str().to_string(),
            })?;
        let bundle = state.bundle_any(sid).cloned();
        (
            bundle.ok_or_else(|| SimError::UnknownBundle(sid.to_string()))?,
            change,
        )
    };
    on_change(app, change);
    Ok(bundle)
}

/// Start timers for bundles that the seed put under review.
pub(crate) fn resume_seeded(app: &App) {
    let pending: Vec<StatusChange> = app
        .state()
        .bundles
        .iter()
        .filter(|b| {
            matches!(
                b.status,
                BundleStatus::PendingReview | BundleStatus::InReview
            )
        })
        .map(StatusChange::of)
        .collect();
    for change in pending {
        on_change(app, change);
    }
}

/// The form parameters of a status callback.
pub fn callback_params(change: &StatusChange) -> Vec<(String, String)> {
    let mut params = vec![
        ("AccountSid".to_string(), change.account_sid.clone()),
        ("BundleSid".to_string(), change.sid.clone()),
        (
            match change.kind {
                BundleKind::TrustProduct => "TrustProductSid",
                BundleKind::CustomerProfile => "CustomerProfileSid",
            }
            .to_string(),
            change.sid.clone(),
        ),
        ("Status".to_string(), change.status.as_str().to_string()),
    ];
    if let Some(codes) = change
        .errors
        .as_ref()
        .filter(|_| change.status == BundleStatus::TwilioRejected)
    {
        let list: Vec<String> = codes.iter().map(u32::to_string).collect();
        params.push((
            "FailureReason".into(),
            format!(
                "Rejected during vetting with error codes {}",
                list.join(", ")
            ),
        ));
        params.push(("ErrorCodes".into(), list.join(",")));
    }
    params
}

/// `X-Twilio-Signature` for a form POST to `url`.
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut data = url.to_string();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac =
        Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key length");
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The callback URL without user info (a URL may carry Basic credentials).
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => "<unparsable url>".to_string(),
    }
}

/// Deliver queued callbacks one at a time.
pub(crate) async fn callback_worker(app: App, mut rx: mpsc::UnboundedReceiver<StatusChange>) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the callback HTTP client; callbacks disabled");
            return;
        }
    };
    while let Some(change) = rx.recv().await {
        let Some(url) = change.status_callback.clone() else {
            continue;
        };
        let token = app
            .state()
            .account(&change.account_sid)
            .map(|a| a.auth_token.clone());
        let Some(token) = token else { continue };
        let params = callback_params(&change);
        let signature = twilio_signature(token.expose(), &url, &params);
        let result = client
            .post(&url)
            .header("X-Twilio-Signature", signature)
            .form(&params)
            .send()
            .await;
        let ok = matches!(&result, Ok(r) if r.status().is_success());
        if !ok {
            tracing::warn!(url = %redacted(&url), sid = %change.sid, "status callback failed");
        }
        let mut counters = lock(&app.counters);
        if ok {
            counters.callbacks_delivered += 1;
        } else {
            counters.callbacks_failed += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_twilio_documented_example() {
        // Example from Twilio's "Webhooks security" docs (auth token 12345).
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let sig = twilio_signature(
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=2",
            &params,
        );
        assert_eq!(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    }
}
