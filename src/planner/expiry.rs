//! Where an approval stands against its `valid_until`: Twilio approves a Business Profile or a
//! Trust Product until a date, and a lapsed SHAKEN/STIR approval means calls lose A-level
//! attestation. Both kinds carry an `ExpiringSoon` condition so the date is visible (and
//! alertable) well before it passes, and `Ready=False` with reason `Expired` once it has,
//! until Twilio reports a new approval (a later `valid_until`, or another status).

use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::ConditionSpec;

/// The `ExpiringSoon` condition's type.
pub const CONDITION: &str = "ExpiringSoon";

/// An approval measured against its `valid_until` and the warning window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// Not approved: there is nothing to expire.
    NotApproved,
    /// Approved, and Twilio gave no `valid_until`.
    NoExpiry,
    /// Approved until this time, beyond the warning window.
    Valid(Timestamp),
    /// Approved until this time, which falls within the warning window.
    ExpiringSoon(Timestamp),
    /// Twilio still reports the approval, but its `valid_until` has passed.
    Expired(Timestamp),
}

impl Expiry {
    /// Classifies an approval (`approved`: Twilio's status is `twilio-approved`) at `now`, with
    /// `warning` the window before `valid_until` in which it counts as expiring soon.
    pub fn of(
        approved: bool,
        valid_until: Option<Timestamp>,
        now: Timestamp,
        warning: Duration,
    ) -> Self {
        let Some(until) = valid_until.filter(|_| approved) else {
            return if approved {
                Self::NoExpiry
            } else {
                Self::NotApproved
            };
        };
        if until <= now {
            return Self::Expired(until);
        }
        let left = Duration::try_from(until.duration_since(now)).unwrap_or(Duration::ZERO);
        if left <= warning {
            Self::ExpiringSoon(until)
        } else {
            Self::Valid(until)
        }
    }

    /// Whether the approval has lapsed.
    pub fn is_expired(&self) -> bool {
        matches!(self, Self::Expired(_))
    }

    /// The `ExpiringSoon` condition for `what` (e.g. "Trust Product BU…"), judged at `now`:
    /// `True` when expiring soon or expired, `False` otherwise, the reason saying which.
    pub fn condition(&self, what: &str, now: Timestamp) -> ConditionSpec {
        match *self {
            Self::NotApproved => {
                ConditionSpec::not(CONDITION, "NotApproved", format!("{what} is not approved"))
            }
            Self::NoExpiry => ConditionSpec::not(
                CONDITION,
                "NoExpiry",
                format!("{what} is approved and Twilio reports no expiry date"),
            ),
            Self::Valid(until) => ConditionSpec::not(
                CONDITION,
                "Valid",
                format!(
                    "{what} is approved until {until} ({})",
                    days_left(until, now)
                ),
            ),
            Self::ExpiringSoon(until) => ConditionSpec::ok(
                CONDITION,
                "ExpiringSoon",
                format!(
                    "the approval of {what} expires at {until} ({}); Twilio must approve it again before then (see the Trust Hub Console)",
                    days_left(until, now)
                ),
            ),
            Self::Expired(until) => {
                ConditionSpec::ok(CONDITION, "Expired", expired_message(what, until))
            }
        }
    }

    /// `Ready=False` with reason `Expired`, when the approval has lapsed.
    pub fn ready_override(&self, what: &str) -> Option<ConditionSpec> {
        match *self {
            Self::Expired(until) => Some(ConditionSpec::not(
                "Ready",
                "Expired",
                expired_message(what, until),
            )),
            _ => None,
        }
    }
}

fn expired_message(what: &str, until: Timestamp) -> String {
    format!(
        "the approval of {what} expired at {until}; waiting for Twilio to report a new approval"
    )
}

/// "in 12 days", "in 5 hours", "in 40 minutes": whole units, rounded down.
fn days_left(until: Timestamp, now: Timestamp) -> String {
    let left = until.duration_since(now).max(SignedDuration::ZERO);
    let secs = left.as_secs();
    let (n, unit) = if secs >= 2 * 86_400 {
        (secs / 86_400, "days")
    } else if secs >= 2 * 3600 {
        (secs / 3600, "hours")
    } else {
        (secs / 60, "minutes")
    };
    format!("in {n} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    #[test]
    fn approvals_are_classified_against_valid_until_and_the_window() {
        let window = Duration::from_secs(30 * DAY as u64);
        // (approved, valid_until, now, expected)
        let table = [
            (false, None, 0, Expiry::NotApproved),
            (false, Some(10), 0, Expiry::NotApproved),
            (false, Some(-10), 0, Expiry::NotApproved),
            (true, None, 0, Expiry::NoExpiry),
            (true, Some(31 * DAY), 0, Expiry::Valid(at(31 * DAY))),
            (true, Some(30 * DAY + 1), 0, Expiry::Valid(at(30 * DAY + 1))),
            (true, Some(30 * DAY), 0, Expiry::ExpiringSoon(at(30 * DAY))),
            (true, Some(1), 0, Expiry::ExpiringSoon(at(1))),
            (true, Some(0), 0, Expiry::Expired(at(0))),
            (true, Some(-DAY), 0, Expiry::Expired(at(-DAY))),
        ];
        for (approved, until, now, want) in table {
            assert_eq!(
                Expiry::of(approved, until.map(at), at(now), window),
                want,
                "approved {approved}, valid_until {until:?}, now {now}"
            );
        }
    }

    #[test]
    fn the_condition_names_the_date_and_what_to_expect() {
        let what = "Trust Product BUx";
        // (expiry, now, status, reason, message fragment)
        let table = [
            (
                Expiry::NotApproved,
                0,
                "False",
                "NotApproved",
                "is not approved",
            ),
            (Expiry::NoExpiry, 0, "False", "NoExpiry", "no expiry date"),
            (
                Expiry::Valid(at(90 * DAY)),
                0,
                "False",
                "Valid",
                "approved until 2027-04-15T08:00:00Z (in 90 days)",
            ),
            (
                Expiry::ExpiringSoon(at(12 * DAY + 5)),
                0,
                "True",
                "ExpiringSoon",
                "expires at 2027-01-27T08:00:05Z (in 12 days)",
            ),
            (
                Expiry::ExpiringSoon(at(5 * 3600)),
                0,
                "True",
                "ExpiringSoon",
                "(in 5 hours)",
            ),
            (
                Expiry::ExpiringSoon(at(40 * 60)),
                0,
                "True",
                "ExpiringSoon",
                "(in 40 minutes)",
            ),
            (
                Expiry::Expired(at(-DAY)),
                0,
                "True",
                "Expired",
                "expired at 2027-01-14T08:00:00Z; waiting for Twilio",
            ),
        ];
        for (expiry, now, status, reason, fragment) in table {
            let c = expiry.condition(what, at(now));
            assert_eq!(c.type_, CONDITION);
            assert_eq!((c.status, c.reason), (status, reason), "{expiry:?}");
            assert!(c.message.contains(what), "{}", c.message);
            assert!(c.message.contains(fragment), "{expiry:?}: {}", c.message);
        }
    }

    #[test]
    fn only_a_lapsed_approval_overrides_ready() {
        for expiry in [
            Expiry::NotApproved,
            Expiry::NoExpiry,
            Expiry::Valid(at(1)),
            Expiry::ExpiringSoon(at(1)),
        ] {
            assert_eq!(expiry.ready_override("x"), None, "{expiry:?}");
            assert!(!expiry.is_expired());
        }
        let ready = Expiry::Expired(at(0))
            .ready_override("Business Profile BUp")
            .unwrap();
        assert_eq!(
            (ready.type_, ready.status, ready.reason),
            ("Ready", "False", "Expired")
        );
        assert!(ready.message.contains("Business Profile BUp"));
    }
}
