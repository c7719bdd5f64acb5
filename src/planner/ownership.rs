//! Who owns a contested Twilio object (a Trust Product, a number's assignment) when several
//! custom resources of the cluster point at it: exactly one does, and the others get a terminal
//! condition naming it, rather than fighting over the product's name, e-mail or numbers.

use k8s_openapi::jiff::Timestamp;

/// An object that uses, or is about to use, the contested Twilio object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimant<'a> {
    /// Namespace.
    pub namespace: &'a str,
    /// Name.
    pub name: &'a str,
    /// `metadata.creationTimestamp`.
    pub created: Option<Timestamp>,
    /// Whether its status already records the Twilio object as its own.
    pub recorded: bool,
}

impl Claimant<'_> {
    /// Older first; equal times by namespace and name, so every reconcile agrees.
    fn precedes(&self, other: &Claimant<'_>) -> bool {
        (
            self.created.is_none(),
            self.created,
            self.namespace,
            self.name,
        ) < (
            other.created.is_none(),
            other.created,
            other.namespace,
            other.name,
        )
    }
}

/// The other object that owns what `me` wants, if any; `None` when `me` may use it.
///
/// `others` are the objects (not being deleted) that record it in their status. An object that
/// recorded it first owns it: a newcomer (`me` has not recorded it) always yields. When both
/// recorded it (two reconciles raced), the older object keeps it.
pub fn owner_other_than_me<'a, 'b>(
    me: &Claimant<'_>,
    others: &'b [Claimant<'a>],
) -> Option<&'b Claimant<'a>> {
    let first = others
        .iter()
        .filter(|o| o.recorded)
        .reduce(|a, b| if b.precedes(a) { b } else { a })?;
    (!me.recorded || first.precedes(me)).then_some(first)
}

/// The `BU…` SID in Twilio's refusal to attach a number that already is on another SHAKEN/STIR
/// Trust Product (error 20409, "… is already assigned to SHAKEN/STIR Trust Product BU…").
pub fn shaken_stir_product_in(message: &str) -> Option<&str> {
    const MARK: &str = "SHAKEN/STIR Trust Product ";
    let rest = &message[message.find(MARK)? + MARK.len()..];
    let sid: &str = rest
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or_default();
    (sid.len() == 34 && sid.starts_with("BU")).then_some(sid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Option<Timestamp> {
        Some(Timestamp::from_second(1_800_000_000 + secs).unwrap())
    }

    fn c(name: &'static str, created: Option<Timestamp>, recorded: bool) -> Claimant<'static> {
        Claimant {
            namespace: "ns",
            name,
            created,
            recorded,
        }
    }

    /// Finding K3: the second object to adopt a product yields to the first.
    #[test]
    fn exactly_one_object_owns_a_contested_product() {
        // (me, others, owner expected)
        let table: Vec<(Claimant, Vec<Claimant>, Option<&str>)> = vec![
            (c("me", at(0), false), vec![], None),
            (c("me", at(0), true), vec![], None),
            // A newcomer yields to whoever recorded it, even a younger object.
            (
                c("me", at(0), false),
                vec![c("first", at(50), true)],
                Some("first"),
            ),
            // Objects that merely want it (not recorded) own nothing.
            (c("me", at(50), false), vec![c("other", at(0), false)], None),
            // Both recorded it (a race): the older keeps it.
            (
                c("me", at(50), true),
                vec![c("first", at(0), true)],
                Some("first"),
            ),
            (c("me", at(0), true), vec![c("second", at(50), true)], None),
            // Same time: by name, so both reconciles agree.
            (c("b", at(0), true), vec![c("a", at(0), true)], Some("a")),
            (c("a", at(0), true), vec![c("b", at(0), true)], None),
            // Several: the oldest recorder is named.
            (
                c("me", at(99), false),
                vec![c("late", at(60), true), c("early", at(10), true)],
                Some("early"),
            ),
        ];
        for (me, others, want) in table {
            let got = owner_other_than_me(&me, &others).map(|o| o.name);
            assert_eq!(got, want, "me {me:?}, others {others:?}");
        }
    }

    #[test]
    fn the_other_product_is_read_from_twilios_refusal() {
        let sid = "BUffffffffffffffffffffffffffffff01";
        let table = [
            (
                format!("Phone Number PN1 is already assigned to SHAKEN/STIR Trust Product {sid}"),
                Some(sid),
            ),
            (format!("… SHAKEN/STIR Trust Product {sid}."), Some(sid)),
            (
                "Phone Number PN1 is already assigned to BU1".to_string(),
                None,
            ),
            ("SHAKEN/STIR Trust Product BUshort".to_string(), None),
            (String::new(), None),
        ];
        for (message, want) in table {
            assert_eq!(shaken_stir_product_in(&message), want, "{message}");
        }
    }
}
