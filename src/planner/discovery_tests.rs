use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::*;
use crate::api::NumberOrSid;

const PARENT: &str = "AC00000000000000000000000000000000";

fn ac(n: u32) -> String {
    format!("AC{n:032x}")
}

fn pn(n: u32) -> String {
    format!("PN{n:032x}")
}

fn e164(n: u32) -> String {
    format!("+1415555{n:04}")
}

/// `allSubaccounts`, voice only, nothing else: the shape most bindings use.
fn spec() -> NumberDiscovery {
    NumberDiscovery {
        subaccounts: Vec::new(),
        all_subaccounts: true,
        include_parent: false,
        voice_only: true,
        phone_number_prefix: None,
        friendly_name_pattern: None,
        include: Vec::new(),
        exclude: Vec::new(),
        interval: None,
    }
}

fn named(subaccounts: &[String]) -> NumberDiscovery {
    NumberDiscovery {
        subaccounts: subaccounts.to_vec(),
        all_subaccounts: false,
        ..spec()
    }
}

fn account(sid: &str, status: Option<&str>, owner: &str) -> AccountView {
    AccountView {
        sid: sid.to_string(),
        status: status.map(str::to_string),
        owner_account_sid: Some(owner.to_string()),
    }
}

fn skipped(sid: &str, status: &str) -> Skipped {
    Skipped {
        sid: sid.to_string(),
        status: status.to_string(),
    }
}

/// The parent's account listing: the parent itself, then subaccounts 1 (active),
/// 2 (suspended), 3 (closed), 4 (no status reported).
fn parent_listing() -> Vec<AccountView> {
    vec![
        account(PARENT, Some("active"), PARENT),
        account(&ac(3), Some("closed"), PARENT),
        account(&ac(1), Some("active"), PARENT),
        account(&ac(2), Some("suspended"), PARENT),
        account(&ac(4), None, PARENT),
    ]
}

/// (case, spec, observed accounts, listed, skipped)
type AccountsCase = (
    &'static str,
    NumberDiscovery,
    Option<Vec<AccountView>>,
    Vec<String>,
    Vec<Skipped>,
);

#[test]
fn accounts_to_list_skips_and_reports_what_cannot_be_listed() {
    let reported = vec![
        skipped(&ac(2), "suspended"),
        skipped(&ac(3), "closed"),
        skipped(&ac(4), UNKNOWN_STATUS),
    ];
    let with_parent = NumberDiscovery {
        include_parent: true,
        ..spec()
    };
    let foreign = account(&ac(7), Some("active"), &ac(99));
    let mut fetched = parent_listing();
    fetched.push(foreign);
    let every = [ac(1), ac(2), ac(3), ac(7), ac(8), PARENT.to_string()];
    let table: Vec<AccountsCase> = vec![
        (
            "all subaccounts",
            spec(),
            Some(parent_listing()),
            vec![ac(1)],
            reported.clone(),
        ),
        (
            "all subaccounts and the parent, parent first",
            with_parent.clone(),
            Some(parent_listing()),
            vec![PARENT.into(), ac(1)],
            reported.clone(),
        ),
        (
            "all, no subaccounts",
            spec(),
            Some(vec![account(PARENT, Some("active"), PARENT)]),
            vec![],
            vec![],
        ),
        ("all, accounts unreadable", spec(), None, vec![], vec![]),
        (
            "all and parent, accounts unreadable",
            with_parent,
            None,
            vec![PARENT.into()],
            vec![],
        ),
        (
            "named: active, suspended, closed, foreign, missing, parent",
            named(&every),
            Some(fetched),
            vec![ac(1)],
            vec![
                skipped(PARENT, NOT_A_SUBACCOUNT),
                skipped(&ac(2), "suspended"),
                skipped(&ac(3), "closed"),
                skipped(&ac(7), NOT_A_SUBACCOUNT),
                skipped(&ac(8), NOT_FOUND),
            ],
        ),
        (
            "named, accounts unreadable: listed unchecked",
            named(&[ac(2), ac(1), PARENT.into()]),
            None,
            vec![ac(1), ac(2)],
            vec![skipped(PARENT, NOT_A_SUBACCOUNT)],
        ),
        (
            "named twice: listed once",
            named(&[ac(1), ac(1)]),
            Some(parent_listing()),
            vec![ac(1)],
            vec![],
        ),
    ];
    for (case, spec, observed, list, skipped) in table {
        let got = accounts_to_list(&spec, PARENT, observed.as_deref());
        assert_eq!(got, AccountsPlan { list, skipped }, "{case}");
    }
}

fn number(n: u32, name: &str, voice: bool) -> NumberView {
    NumberView {
        sid: pn(n).into(),
        phone_number: Some(e164(n).into()),
        friendly_name: Some(name.to_string()),
        voice,
    }
}

/// Two accounts: 1 holds numbers 1–4, 2 holds 5–7.
fn listing() -> Vec<(String, Vec<NumberView>)> {
    vec![
        (
            ac(1),
            vec![
                number(1, "sales-east", true),
                number(2, "sales-west", false),
                number(3, "support", true),
                NumberView {
                    sid: pn(4).into(),
                    phone_number: Some("+14085550004".into()),
                    friendly_name: None,
                    voice: true,
                },
            ],
        ),
        (
            ac(2),
            vec![
                number(7, "sales-2", true),
                number(5, "fax", false),
                number(6, "sales-1", true),
            ],
        ),
    ]
}

fn sids(selection: &Selection) -> Vec<String> {
    selection
        .numbers
        .iter()
        .map(|t| target_sid(t).to_string())
        .collect()
}

fn n(values: &[String]) -> Vec<NumberOrSid> {
    values.iter().cloned().map(NumberOrSid).collect()
}

#[test]
fn select_applies_every_rule() {
    type Edit = fn(&mut NumberDiscovery);
    // (case, edit, selected numbers, counts: excluded, not voice, prefix, name, included)
    let table: [(&str, Edit, &[u32], [u32; 5]); 10] = [
        (
            "voice only (default)",
            |_| {},
            &[1, 3, 4, 6, 7],
            [0, 2, 0, 0, 0],
        ),
        (
            "every number",
            |s| s.voice_only = false,
            &[1, 2, 3, 4, 5, 6, 7],
            [0; 5],
        ),
        (
            "prefix",
            |s| s.phone_number_prefix = Some("+1415".into()),
            &[1, 3, 6, 7],
            [0, 2, 1, 0, 0],
        ),
        (
            "prefix matching none",
            |s| s.phone_number_prefix = Some("+44".into()),
            &[],
            [0, 2, 5, 0, 0],
        ),
        (
            "glob; a number without a name is the empty name",
            |s| s.friendly_name_pattern = Some("sales-*".into()),
            &[1, 6, 7],
            [0, 2, 0, 2, 0],
        ),
        (
            "glob with ?",
            |s| s.friendly_name_pattern = Some("sales-?".into()),
            &[6, 7],
            [0, 2, 0, 3, 0],
        ),
        (
            "prefix and glob both must match",
            |s| {
                s.phone_number_prefix = Some("+1415".into());
                s.friendly_name_pattern = Some("*east".into());
            },
            &[1],
            [0, 2, 1, 3, 0],
        ),
        (
            "exclude by SID and by number",
            |s| s.exclude = n(&[pn(1), e164(6)]),
            &[3, 4, 7],
            [2, 2, 0, 0, 0],
        ),
        (
            "include bypasses voice, prefix and glob",
            |s| {
                s.friendly_name_pattern = Some("sales-*".into());
                s.include = n(&[pn(2), e164(3)]);
            },
            &[1, 2, 3, 6, 7],
            [0, 1, 0, 1, 2],
        ),
        (
            "exclude beats include",
            |s| {
                s.include = n(&[pn(2), pn(3)]);
                s.exclude = n(&[e164(2), pn(3)]);
            },
            &[1, 4, 6, 7],
            [2, 1, 0, 0, 0],
        ),
    ];
    for (case, edit, want, [excluded, not_voice, prefix, name, included]) in table {
        let mut spec = spec();
        edit(&mut spec);
        let got = select(&spec, listing());
        assert_eq!(
            sids(&got),
            want.iter().map(|&i| pn(i)).collect::<Vec<_>>(),
            "{case}"
        );
        let c = got.counts;
        assert_eq!(
            (
                c.seen,
                c.selected,
                c.excluded,
                c.not_voice,
                c.prefix_mismatch,
                c.name_mismatch,
                c.included
            ),
            (
                7,
                want.len() as u32,
                excluded,
                not_voice,
                prefix,
                name,
                included
            ),
            "{case}"
        );
        assert!(got.include_not_found.is_empty(), "{case}");
    }
}

#[test]
fn selected_numbers_carry_their_account_and_number() {
    let got = select(&spec(), listing());
    assert_eq!(
        got.numbers[3],
        NumberTarget::Resolved {
            number_sid: pn(6).into(),
            phone_number: Some(e164(6).into()),
            subaccount_sid: Some(ac(2).into()),
        }
    );
}

#[test]
fn includes_no_listed_account_owns_are_reported() {
    let mut spec = spec();
    spec.include = n(&[pn(9), e164(1), "+15005550000".to_string(), pn(3)]);
    let got = select(&spec, listing());
    assert_eq!(
        got.include_not_found,
        vec![pn(9), "+15005550000".to_string()]
    );
    assert_eq!(got.counts.selected, 5);
    // An excluded include was found: it is not reported as missing.
    spec.exclude = n(&[pn(3)]);
    let got = select(&spec, listing());
    assert_eq!(
        got.include_not_found,
        vec![pn(9), "+15005550000".to_string()]
    );
    assert_eq!(got.counts.selected, 4);
}

#[test]
fn a_number_listed_by_two_accounts_is_selected_once_under_the_first() {
    let listed = vec![
        (ac(1), vec![number(1, "a", true), number(2, "b", true)]),
        (ac(2), vec![number(2, "b", true), number(3, "c", true)]),
    ];
    let got = select(&spec(), listed);
    assert_eq!(sids(&got), vec![pn(1), pn(2), pn(3)]);
    assert_eq!((got.counts.seen, got.counts.duplicates), (3, 1));
    let NumberTarget::Resolved { subaccount_sid, .. } = &got.numbers[1] else {
        panic!("resolved");
    };
    assert_eq!(subaccount_sid.as_deref(), Some(ac(1).as_str()));
}

#[test]
fn no_numbers_select_nothing() {
    for listed in [vec![], vec![(ac(1), vec![]), (ac(2), vec![])]] {
        let got = select(&spec(), listed);
        assert_eq!(got, Selection::default());
    }
    let mut spec = spec();
    spec.include = n(&[pn(1)]);
    assert_eq!(select(&spec, Vec::new()).include_not_found, vec![pn(1)]);
}

#[test]
fn fifty_thousand_numbers_over_500_accounts_are_selected_in_linear_time() {
    // 100 numbers in each of 500 accounts; every fifth is not voice, every tenth excluded.
    let listed: Vec<(String, Vec<NumberView>)> = (0..500u32)
        .map(|a| {
            let numbers = (0..100u32)
                .map(|i| {
                    let id = a * 100 + i;
                    NumberView {
                        sid: pn(id).into(),
                        phone_number: Some(format!("+1{:010}", id).into()),
                        friendly_name: Some(format!("line-{id}")),
                        voice: id % 5 != 0,
                    }
                })
                .collect();
            (ac(a + 1), numbers)
        })
        .collect();
    let mut spec = spec();
    spec.friendly_name_pattern = Some("line-*".into());
    spec.exclude = (0..1000u32).map(|i| NumberOrSid(pn(i * 10 + 1))).collect();
    spec.include = (0..1000u32).map(|i| NumberOrSid(pn(i * 5))).collect();
    let started = Instant::now();
    let got = select(&spec, listed);
    let elapsed = started.elapsed();
    let c = got.counts;
    assert_eq!(c.seen, 50_000);
    // Includes 0, 5, …, 4995 are not voice but selected; non-voice numbers from 5000 on are not.
    assert_eq!(c.not_voice, 10_000 - 1000);
    assert_eq!(c.excluded, 1000);
    assert_eq!(c.included, 1000);
    assert_eq!(c.selected, 50_000 - 9000 - 1000);
    assert_eq!(got.numbers.len(), c.selected as usize);
    assert!(got.include_not_found.is_empty());
    assert!(
        got.numbers
            .windows(2)
            .all(|w| target_sid(&w[0]) < target_sid(&w[1])),
        "sorted by SID, each once"
    );
    // Quadratic work would take minutes here; linear takes milliseconds even unoptimised.
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
}

#[test]
fn globs_match_star_and_question_mark() {
    let table = [
        ("*", "", true),
        ("*", "anything", true),
        ("", "", true),
        ("", "x", false),
        ("sales-*", "sales-", true),
        ("sales-*", "sales-east", true),
        ("sales-*", "Sales-east", false),
        ("*-east", "sales-east", true),
        ("*-east", "sales-west", false),
        ("s?les", "sales", true),
        ("s?les", "sles", false),
        ("a*b*c", "aXXbYYc", true),
        ("a*b*c", "aXXbYY", false),
        (
            "a*a*a*a*b",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            false,
        ),
        ("*?", "", false),
        ("??", "né", true),
    ];
    for (pattern, text, want) in table {
        let p: Vec<char> = pattern.chars().collect();
        assert_eq!(glob_match(&p, text), want, "{pattern:?} on {text:?}");
    }
}

#[test]
fn interval_defaults_to_ten_minutes_and_is_at_least_ten_seconds() {
    let table = [
        (None, Some(600)),
        (Some("10m"), Some(600)),
        (Some("10s"), Some(10)),
        (Some("1h30m"), Some(5400)),
        (Some("9s"), None),
        (Some("500ms"), None),
        (Some("0s"), None),
        (Some("ten"), None),
        (Some(""), None),
        (Some("99999999999999999999h"), None),
    ];
    for (value, want) in table {
        let spec = NumberDiscovery {
            interval: value.map(str::to_string),
            ..spec()
        };
        let got = interval(&spec);
        match want {
            Some(secs) => assert_eq!(got, Ok(Duration::from_secs(secs)), "{value:?}"),
            None => assert!(
                matches!(&got, Err(DiscoveryError::Interval { value: v, .. }) if Some(v.as_str()) == value),
                "{value:?}: {got:?}"
            ),
        }
    }
}

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

#[test]
fn listing_is_due_each_interval_and_on_a_new_annotation() {
    let every = Duration::from_secs(600);
    // (listed at, now, annotation, last annotation, due)
    let table = [
        (None, 0, None, None, true),
        (Some(0), 10, None, None, false),
        (Some(0), 539, None, None, false),
        (Some(0), 540, None, None, true),
        (Some(0), 10, Some("1"), None, true),
        (Some(0), 10, Some("1"), Some("1"), false),
        (Some(0), 10, Some("2"), Some("1"), true),
        // Removing the annotation asks for nothing.
        (Some(0), 10, None, Some("1"), false),
        // A clock step back lists rather than trusting the old time for ever.
        (Some(100), 0, None, None, true),
    ];
    for (listed, now, annotation, last, due) in table {
        assert_eq!(
            listing_due(every, listed.map(at), at(now), annotation, last),
            due,
            "listed {listed:?}, now {now}, annotation {annotation:?}, last {last:?}"
        );
    }
}

#[test]
fn the_report_lists_the_first_skipped_accounts_and_counts_the_rest() {
    let selection = select(&spec(), listing());
    // (skipped accounts, shown, omitted)
    for (total, shown, omitted) in [(0, 0, 0), (3, 3, 0), (20, 20, 0), (500, 20, 480)] {
        let skipped: Vec<Skipped> = (0..total).map(|i| skipped(&ac(i), "closed")).collect();
        let got = report(&selection, &skipped, 2, at(5), Some("now"));
        assert_eq!(got.skipped_accounts.len(), shown, "{total}");
        assert_eq!(got.skipped_accounts_omitted, omitted, "{total}");
        assert_eq!(
            (got.accounts_listed, got.numbers_seen, got.selected),
            (2, 7, 5)
        );
        assert_eq!(got.listed_at, Some(Time(at(5))));
        assert_eq!(got.last_annotation.as_deref(), Some("now"));
        if total > 0 {
            assert_eq!(got.skipped_accounts[0].sid, ac(0));
        }
    }
}
