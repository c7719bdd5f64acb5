//! [`Table`]: rows kept in insertion order with O(1) lookup and removal by SID.
//!
//! The state holds up to tens of thousands of numbers and channel endpoint assignments; a
//! `Vec` scanned on every request made each lookup cost the whole collection. A table keeps
//! the rows in a `Vec` of slots (iteration stays oldest first, as Twilio lists), finds a row
//! through a SID → slot map, and removes a row by emptying its slot. Empty slots are dropped
//! once they outnumber the rows (amortised O(1) per removal).

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A row with a unique SID.
pub trait Keyed {
    fn key(&self) -> &str;
}

impl Keyed for crate::model::PhoneNumber {
    fn key(&self) -> &str {
        &self.sid
    }
}

impl Keyed for crate::model::ChannelAssignment {
    fn key(&self) -> &str {
        &self.sid
    }
}

/// Rows in insertion order, indexed by SID. Serialises as a JSON array of its rows.
#[derive(Clone)]
pub struct Table<T> {
    slots: Vec<Option<T>>,
    by_sid: HashMap<String, usize>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            slots: Vec::new(),
            by_sid: HashMap::new(),
        }
    }
}

impl<T: Keyed> Table<T> {
    pub fn len(&self) -> usize {
        self.by_sid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_sid.is_empty()
    }

    /// Rows, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().flatten()
    }

    pub fn get(&self, sid: &str) -> Option<&T> {
        self.by_sid
            .get(sid)
            .and_then(|&slot| self.slots[slot].as_ref())
    }

    pub fn contains(&self, sid: &str) -> bool {
        self.by_sid.contains_key(sid)
    }

    /// The rows as a `Vec`, oldest first.
    pub fn to_vec(&self) -> Vec<T>
    where
        T: Clone,
    {
        self.iter().cloned().collect()
    }

    /// Append a row; a row with the same SID is replaced in place.
    pub(crate) fn push(&mut self, row: T) {
        if let Some(&slot) = self.by_sid.get(row.key()) {
            self.slots[slot] = Some(row);
            return;
        }
        self.by_sid.insert(row.key().to_string(), self.slots.len());
        self.slots.push(Some(row));
    }

    pub(crate) fn remove(&mut self, sid: &str) -> Option<T> {
        let slot = self.by_sid.remove(sid)?;
        let row = self.slots[slot].take();
        let holes = self.slots.len() - self.by_sid.len();
        if holes > 64 && holes > self.by_sid.len() {
            self.compact();
        }
        row
    }

    fn compact(&mut self) {
        self.slots.retain(Option::is_some);
        self.by_sid.clear();
        for (slot, row) in self.slots.iter().enumerate() {
            if let Some(row) = row {
                self.by_sid.insert(row.key().to_string(), slot);
            }
        }
    }
}

impl<T: Keyed> FromIterator<T> for Table<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut table = Table::default();
        for row in iter {
            table.push(row);
        }
        table
    }
}

impl<T: Keyed + PartialEq> PartialEq for Table<T> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<T: Keyed + fmt::Debug> fmt::Debug for Table<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: Keyed + Serialize> Serialize for Table<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de, T: Keyed + Deserialize<'de>> Deserialize<'de> for Table<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Vec::<T>::deserialize(deserializer)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct Row(String, u32);

    impl Keyed for Row {
        fn key(&self) -> &str {
            &self.0
        }
    }

    #[test]
    fn keeps_insertion_order_through_removals_and_compaction() {
        let mut table: Table<Row> = (0..200).map(|i| Row(format!("r{i}"), i)).collect();
        for i in (0..200).filter(|i| i % 3 != 0) {
            assert_eq!(table.remove(&format!("r{i}")).map(|r| r.1), Some(i));
        }
        assert!(table.remove("r1").is_none());
        let left: Vec<u32> = table.iter().map(|r| r.1).collect();
        assert_eq!(left, (0..200).filter(|i| i % 3 == 0).collect::<Vec<_>>());
        assert_eq!(table.len(), left.len());
        assert_eq!(table.get("r99").map(|r| r.1), Some(99));
        table.push(Row("new".into(), 1000));
        assert_eq!(table.iter().last().map(|r| r.1), Some(1000));
    }
}
