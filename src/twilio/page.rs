//! One page of a Twilio list, decoded straight into its items: the list under its key, and
//! the link to the next page (Trust Hub's `meta.next_page_url`, API 2010's `next_page_uri`).
//!
//! Streamed rather than through a `serde_json::Value`: a page of 1,000 numbers is about 1 MiB
//! of JSON, and a `Value` of it (plus a copy of its list) took several MiB per page in flight,
//! ten pages at once during discovery.

use std::fmt;

use serde::de::{DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// A decoded page.
#[derive(Debug)]
pub struct Page<T> {
    /// The items under the list key.
    pub items: Vec<T>,
    /// The next page's link, when there is one.
    pub next: Option<String>,
}

/// Decodes `body` as a page whose items are under `key` (a page without that key is an error),
/// keeping only the items `keep` accepts, each dropped as soon as it is decoded: a page of
/// 1,000 products of which the caller wants two never becomes a list of 1,000.
pub fn decode_where<T: DeserializeOwned>(
    body: &[u8],
    key: &str,
    keep: &dyn Fn(&T) -> bool,
) -> Result<Page<T>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let page = PageSeed { key, keep }.deserialize(&mut de)?;
    de.end()?;
    Ok(page)
}

struct PageSeed<'k, T> {
    key: &'k str,
    keep: &'k dyn Fn(&T) -> bool,
}

/// The list under the key, decoded item by item.
struct KeptItems<'k, T> {
    keep: &'k dyn Fn(&T) -> bool,
}

impl<'de, T: DeserializeOwned> DeserializeSeed<'de> for KeptItems<'_, T> {
    type Value = Vec<T>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<T>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, T: DeserializeOwned> Visitor<'de> for KeptItems<'_, T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element::<T>()? {
            if (self.keep)(&item) {
                items.push(item);
            }
        }
        Ok(items)
    }
}

#[derive(Deserialize)]
struct Meta {
    #[serde(default)]
    next_page_url: Option<String>,
}

impl<'de, T: DeserializeOwned> DeserializeSeed<'de> for PageSeed<'_, T> {
    type Value = Page<T>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Page<T>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, T: DeserializeOwned> Visitor<'de> for PageSeed<'_, T> {
    type Value = Page<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a page with a {:?} list", self.key)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Page<T>, A::Error> {
        let mut items = None;
        let mut next = None;
        while let Some(field) = map.next_key::<String>()? {
            if field == self.key {
                items = Some(map.next_value_seed(KeptItems { keep: self.keep })?);
            } else if field == "meta" {
                next = next.or(map
                    .next_value::<Option<Meta>>()?
                    .and_then(|m| m.next_page_url));
            } else if field == "next_page_uri" {
                next = next.or(map.next_value::<Option<String>>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        let items = items.ok_or_else(|| serde::de::Error::missing_field("list key"))?;
        let next = next.filter(|s| !s.is_empty());
        Ok(Page { items, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode<T: DeserializeOwned>(body: &[u8], key: &str) -> Result<Page<T>, serde_json::Error> {
        decode_where(body, key, &|_| true)
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Item {
        sid: String,
    }

    #[test]
    fn items_and_the_next_link_of_either_api() {
        let trust_hub = br#"{"results": [{"sid": "A", "big": [1, 2, {"x": 3}]}, {"sid": "B"}],
            "meta": {"page": 0, "next_page_url": "https://trusthub.twilio.com/v1/x?Page=1"}}"#;
        let page: Page<Item> = decode(trust_hub, "results").unwrap();
        assert_eq!(page.items.len(), 2);
        assert_eq!(
            page.next.as_deref(),
            Some("https://trusthub.twilio.com/v1/x?Page=1")
        );

        let api2010 = br#"{"next_page_uri": null, "incoming_phone_numbers": [{"sid": "PN1"}]}"#;
        let page: Page<Item> = decode(api2010, "incoming_phone_numbers").unwrap();
        assert_eq!(page.items, [Item { sid: "PN1".into() }]);
        assert_eq!(page.next, None);

        let last = br#"{"results": [], "meta": {"next_page_url": ""}}"#;
        assert_eq!(decode::<Item>(last, "results").unwrap().next, None);
    }

    #[test]
    fn a_page_without_its_list_or_not_json_is_an_error() {
        assert!(decode::<Item>(br#"{"meta": {}}"#, "results").is_err());
        assert!(decode::<Item>(br#"{"results": null}"#, "results").is_err());
        assert!(decode::<Item>(b"<html>", "results").is_err());
        assert!(decode::<Item>(br#"{"results": []} trailing"#, "results").is_err());
    }

    #[test]
    fn only_the_items_asked_for_are_kept_and_the_page_is_still_checked() {
        let body = br#"{"results": [{"sid": "A"}, {"sid": "B"}, {"sid": "C"}],
            "meta": {"next_page_url": "/v1/x?Page=1"}}"#;
        let keep = |i: &Item| i.sid != "B";
        let page: Page<Item> = decode_where(body, "results", &keep).unwrap();
        assert_eq!(
            page.items,
            [Item { sid: "A".into() }, Item { sid: "C".into() }]
        );
        assert_eq!(page.next.as_deref(), Some("/v1/x?Page=1"));
        let none = |_: &Item| false;
        assert!(decode_where(br#"{"results": [{"sid": 1}]}"#, "results", &none).is_err());
        assert!(decode_where(br#"{"meta": {}}"#, "results", &none).is_err());
    }
}
