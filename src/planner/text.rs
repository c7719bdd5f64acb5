//! Bounds on the text the operator writes into `.status` and Events.
//!
//! Kubernetes stores an object in one etcd value (1.5 MiB by default) and refuses an Event whose
//! note is over 1 KiB; Twilio's error messages have no documented length, and a condition that
//! lists every refused number grows with the number count. Every message the operator builds
//! from a list or from Twilio's words goes through these functions, so the largest status stays
//! a fixed multiple of the number count whatever Twilio answers.

/// Longest condition message (bytes). metav1.Condition allows 32 KiB; a person reads far less.
pub const CONDITION_MESSAGE_MAX: usize = 4096;
/// Longest Event note (bytes): the events.k8s.io/v1 limit (`NoteLengthLimit`).
pub const EVENT_NOTE_MAX: usize = 1024;
/// Longest per-number message in `.status` (bytes).
pub const NUMBER_MESSAGE_MAX: usize = 512;
/// How many problem numbers carry Twilio's reason in `.status` (the rest only their state):
/// 100 reasons of 512 bytes keep a 5,000-number status under etcd's limit.
pub const NUMBER_MESSAGES_MAX: usize = 100;
/// How many items a listing message names before "… and N more".
pub const LISTED_MAX: usize = 10;
/// Longest item in a listing (bytes): ten of them, separators and the count fit in a condition.
pub const LISTED_ITEM_MAX: usize = 384;

const ELLIPSIS: &str = "…";

/// `text` cut to at most `max` bytes on a character boundary, ending in "…" when cut.
pub fn bounded(text: impl Into<String>, max: usize) -> String {
    let mut text = text.into();
    if text.len() <= max {
        return text;
    }
    let mut end = max.saturating_sub(ELLIPSIS.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(ELLIPSIS);
    text
}

/// The first [`LISTED_MAX`] items (each at most [`LISTED_ITEM_MAX`] bytes) joined by
/// `separator`, then "… and N more" for the rest: always under [`CONDITION_MESSAGE_MAX`].
pub fn listed<S: AsRef<str>>(items: &[S], separator: &str) -> String {
    let shown: Vec<String> = items
        .iter()
        .take(LISTED_MAX)
        .map(|item| bounded(item.as_ref(), LISTED_ITEM_MAX))
        .collect();
    let mut out = shown.join(separator);
    if items.len() > LISTED_MAX {
        out.push_str(&format!(
            "{separator}… and {} more",
            items.len() - LISTED_MAX
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_cuts_on_a_character_boundary() {
        let cases: Vec<(&str, String, usize, String)> = vec![
            ("short text is kept", "abc".into(), 10, "abc".into()),
            (
                "exactly the bound is kept",
                "abcde".into(),
                5,
                "abcde".into(),
            ),
            (
                "long text ends in an ellipsis",
                "abcdefghij".into(),
                6,
                "abc…".into(),
            ),
            // "é" is two bytes: a cut through it moves back to the boundary before it.
            (
                "a cut never splits a character",
                "aaééé".into(),
                6,
                "aa…".into(),
            ),
            ("a bound under the ellipsis", "abcdef".into(), 2, "…".into()),
        ];
        for (what, text, max, want) in cases {
            let got = bounded(text, max);
            assert_eq!(got, want, "{what}");
            assert!(
                got.len() <= max.max(ELLIPSIS.len()),
                "{what}: {} bytes",
                got.len()
            );
        }
    }

    #[test]
    fn listed_names_the_first_items_and_counts_the_rest() {
        let many: Vec<String> = (0..25).map(|i| format!("n{i}")).collect();
        let cases: Vec<(&str, &[String], String)> = vec![
            ("nothing", &[], String::new()),
            ("few are all named", &many[..3], "n0; n1; n2".into()),
            (
                "exactly the bound",
                &many[..LISTED_MAX],
                many[..LISTED_MAX].join("; "),
            ),
            (
                "more than the bound",
                &many[..],
                format!("{}; … and 15 more", many[..LISTED_MAX].join("; ")),
            ),
        ];
        for (what, items, want) in cases {
            assert_eq!(listed(items, "; "), want, "{what}");
        }
        let long: Vec<String> = (0..50_000).map(|_| "y".repeat(10_000)).collect();
        let message = listed(&long, "; ");
        assert!(message.len() <= CONDITION_MESSAGE_MAX, "{}", message.len());
        assert!(message.ends_with("; … and 49990 more"), "{message}");
    }
}
