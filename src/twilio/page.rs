//! One page of a Twilio list, decoded straight into its items: the list under its key, and
//! the link to the next page (Trust Hub's `meta.next_page_url`, API 2010's `next_page_uri`).
//!
//! Streamed rather than through a `serde_json::Value`: a page of 1,000 numbers is about 1 MiB
//! of JSON, and a `Value` of it (plus a copy of its list) took several MiB per page in flight,
//! ten pages at once during discovery.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// A decoded page.
#[derive(Debug)]
pub struct Page<T> {
    /// The items under the list key.
    pub items: Vec<T>,
    /// The next page's link, when there is one.
    pub next: Option<String>,
}

/// Decodes `body` as a page whose items are under `key`; a page without that key is an error.
pub fn decode<T: DeserializeOwned>(body: &[u8], key: &str) -> Result<Page<T>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let page = PageSeed::<T> {
        key,
        item: PhantomData,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(page)
}

struct PageSeed<'k, T> {
    key: &'k str,
    item: PhantomData<T>,
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
                items = Some(map.next_value::<Vec<T>>()?);
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
}
