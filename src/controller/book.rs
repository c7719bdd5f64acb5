//! The operator's own full record of each object's numbers, of which the API keeps an abridged
//! copy.
//!
//! A status with one entry per number cannot hold 50,000 numbers: a `PN…` and an `RA…` SID
//! are 32 random bytes together, so no encoding fits them in the 256 KiB a status may take.
//! Above [`FULL_NUMBER_LIST_MAX`] numbers the status written to the API lists only the numbers
//! that need attention and counts the rest; the full list stays here, in memory, by object UID.
//! A reconcile starts from it when the stored status is still the abridged form of it (nobody
//! else wrote since); otherwise, after a restart or a failover, from the stored status, and the
//! reconcile then lists the assignments in Trust Hub again and tells its own by
//! [`crate::api::Ownership`].

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};

use kube::Resource;
use kube::runtime::reflector::Store;
use serde::Serialize;

use super::Context;
use super::status::Conditioned;
use crate::api::{
    BusinessProfileBinding, BusinessProfileBindingStatus, FULL_NUMBER_LIST_MAX, NumberState,
    PROBLEM_NUMBERS_MAX, PhoneNumberAssignmentStatus, ShakenStirTrustProduct,
    ShakenStirTrustProductStatus, TrustProductNumberStatus,
};

/// A status with a per-number list that the API stores abridged. Each kind says where its
/// list and marks are and which of its numbers need attention; the abridging is shared.
pub trait Abridge: Conditioned {
    /// One number's entry.
    type Entry: Clone;
    /// `phoneNumbers`.
    fn entries_mut(&mut self) -> &mut Vec<Self::Entry>;
    /// `numbersAbridged` and `numbersOmitted`.
    fn marks_mut(&mut self) -> (&mut bool, &mut u32);
    /// Whether this status came from the API abridged (so its list is not the full one).
    fn is_abridged(&self) -> bool;
    /// Where an entry ranks among those an abridged list keeps (lower first), `None` for one
    /// that needs no attention.
    fn attention(entry: &Self::Entry) -> Option<u8>;
    /// A copy without the per-number list, to build the next status from (which brings its
    /// own list): copying 50,000 entries only to drop them costs as much as the rest together.
    fn shell(&self) -> Self;

    /// The status as written to the API: the whole list up to [`FULL_NUMBER_LIST_MAX`]
    /// numbers, else only the numbers needing attention, marked `numbersAbridged`. Takes the
    /// list out of `self` for the copy (cheap at any size) and puts it back.
    fn abridged(&mut self) -> Self {
        let entries = std::mem::take(self.entries_mut());
        let mut stored = self.clone();
        if entries.len() <= FULL_NUMBER_LIST_MAX {
            *stored.entries_mut() = entries.clone();
        } else {
            let (kept, omitted) = problems(&entries, Self::attention);
            *stored.entries_mut() = kept;
            let (abridged, omitted_mark) = stored.marks_mut();
            *abridged = true;
            *omitted_mark = omitted;
        }
        *self.entries_mut() = entries;
        stored
    }

    /// Clears the marks [`Abridge::abridged`] sets, on a full status built from an abridged one.
    fn mark_full(&mut self) {
        let (abridged, omitted) = self.marks_mut();
        *abridged = false;
        *omitted = 0;
    }
}

/// Keeps the first [`PROBLEM_NUMBERS_MAX`] of `entries` that need attention, in the order of
/// `rank` (lower first, `None` for those that need none), and counts the others.
fn problems<T: Clone>(entries: &[T], rank: impl Fn(&T) -> Option<u8>) -> (Vec<T>, u32) {
    let mut ranked: Vec<(u8, usize)> = entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| Some((rank(e)?, i)))
        .collect();
    ranked.sort_unstable();
    let omitted = ranked.len().saturating_sub(PROBLEM_NUMBERS_MAX);
    let kept = ranked
        .iter()
        .take(PROBLEM_NUMBERS_MAX)
        .map(|(_, i)| entries[*i].clone())
        .collect();
    (kept, u32::try_from(omitted).unwrap_or(u32::MAX))
}

impl Abridge for BusinessProfileBindingStatus {
    type Entry = PhoneNumberAssignmentStatus;

    fn entries_mut(&mut self) -> &mut Vec<Self::Entry> {
        &mut self.phone_numbers
    }

    fn marks_mut(&mut self) -> (&mut bool, &mut u32) {
        (&mut self.numbers_abridged, &mut self.numbers_omitted)
    }

    fn is_abridged(&self) -> bool {
        self.numbers_abridged
    }

    fn attention(n: &Self::Entry) -> Option<u8> {
        // Numbers being released first: after a restart they are how the operator knows
        // which assignments to remove.
        match n.state {
            NumberState::Releasing => Some(0),
            NumberState::Failed => Some(1),
            NumberState::Unresolvable => Some(2),
            _ => None,
        }
    }

    fn shell(&self) -> Self {
        // Every field named, so a new one cannot be forgotten here.
        let Self {
            observed_generation,
            conditions,
            business_profile,
            phone_numbers: _,
            numbers_abridged,
            numbers_omitted,
            numbers_digest,
            ownership,
            numbers_summary,
            numbers,
            coverage,
            assignments_pending,
            assignments_listed_at,
            last_sync_time,
            discovery,
        } = self;
        Self {
            observed_generation: *observed_generation,
            conditions: conditions.clone(),
            business_profile: business_profile.clone(),
            phone_numbers: Vec::new(),
            numbers_abridged: *numbers_abridged,
            numbers_omitted: *numbers_omitted,
            numbers_digest: numbers_digest.clone(),
            ownership: ownership.clone(),
            numbers_summary: numbers_summary.clone(),
            numbers: numbers.clone(),
            coverage: coverage.clone(),
            assignments_pending: assignments_pending.clone(),
            assignments_listed_at: assignments_listed_at.clone(),
            last_sync_time: last_sync_time.clone(),
            discovery: discovery.clone(),
        }
    }
}

impl Abridge for ShakenStirTrustProductStatus {
    type Entry = TrustProductNumberStatus;

    fn entries_mut(&mut self) -> &mut Vec<Self::Entry> {
        &mut self.phone_numbers
    }

    fn marks_mut(&mut self) -> (&mut bool, &mut u32) {
        (&mut self.numbers_abridged, &mut self.numbers_omitted)
    }

    fn is_abridged(&self) -> bool {
        self.numbers_abridged
    }

    fn attention(n: &Self::Entry) -> Option<u8> {
        // Not attached: refused ones (with Twilio's reason) first.
        n.assignment_sid
            .is_none()
            .then_some(if n.message.is_some() { 0 } else { 1 })
    }

    fn shell(&self) -> Self {
        // Every field named, so a new one cannot be forgotten here.
        let Self {
            observed_generation,
            conditions,
            trust_product_sid,
            trust_product_created,
            adoption,
            create_pending_since,
            twilio_status,
            valid_until,
            business_profile_sid,
            entity_assignment_sid,
            entity_assignment_created,
            phone_numbers: _,
            numbers_abridged,
            numbers_omitted,
            ownership,
            attachments_pending,
            numbers_summary,
            numbers,
            coverage,
            assignments_listed_at,
            last_evaluation,
            errors,
            submitted_at,
            approved_at,
            last_resubmit,
            rejected_generation,
            last_sync_time,
        } = self;
        Self {
            observed_generation: *observed_generation,
            conditions: conditions.clone(),
            trust_product_sid: trust_product_sid.clone(),
            trust_product_created: *trust_product_created,
            adoption: adoption.clone(),
            create_pending_since: create_pending_since.clone(),
            twilio_status: twilio_status.clone(),
            valid_until: valid_until.clone(),
            business_profile_sid: business_profile_sid.clone(),
            entity_assignment_sid: entity_assignment_sid.clone(),
            entity_assignment_created: *entity_assignment_created,
            phone_numbers: Vec::new(),
            numbers_abridged: *numbers_abridged,
            numbers_omitted: *numbers_omitted,
            ownership: ownership.clone(),
            attachments_pending: attachments_pending.clone(),
            numbers_summary: numbers_summary.clone(),
            numbers: numbers.clone(),
            coverage: coverage.clone(),
            assignments_listed_at: assignments_listed_at.clone(),
            last_evaluation: last_evaluation.clone(),
            errors: errors.clone(),
            submitted_at: submitted_at.clone(),
            approved_at: approved_at.clone(),
            last_resubmit: last_resubmit.clone(),
            rejected_generation: *rejected_generation,
            last_sync_time: last_sync_time.clone(),
        }
    }
}

/// A hash of a status as JSON: the same for our abridged copy and the API's copy of it.
pub fn stored_hash<S: Serialize>(status: &S) -> u64 {
    let mut h = DefaultHasher::new();
    serde_json::to_string(status)
        .unwrap_or_default()
        .hash(&mut h);
    h.finish()
}

struct Entry<S> {
    /// The full status kept for the abridged copy the API stores; `None` while the API stores
    /// the status whole (then it is its own full record, and the informer cache holds it).
    full: Option<Kept<S>>,
    /// This process's unbroken run of status writes the informer cache has not caught up
    /// with yet, if any.
    lineage: Option<Lineage<S>>,
}

impl<S> Default for Entry<S> {
    fn default() -> Self {
        Self {
            full: None,
            lineage: None,
        }
    }
}

impl<S> Entry<S> {
    fn is_empty(&self) -> bool {
        self.full.is_none() && self.lineage.is_none()
    }
}

/// Lets `clear` drop what it will of object `uid`'s entry, and the entry itself once it holds
/// nothing: an object with neither a full record nor a lineage costs the book nothing.
fn clear_entry<S>(
    book: &mut HashMap<String, Entry<S>>,
    uid: &str,
    clear: impl FnOnce(&mut Entry<S>),
) {
    if let Some(entry) = book.get_mut(uid) {
        clear(entry);
        if entry.is_empty() {
            book.remove(uid);
        }
    }
}

struct Kept<S> {
    /// [`stored_hash`] of the abridged copy written with it.
    stored: u64,
    full: Arc<S>,
}

/// A run of status writes this process made one after the other, each carrying the
/// resourceVersion of the one before as its precondition: nobody else changed the object in
/// between, so an informer copy at any of these versions differs from the latest only by the
/// status this process wrote. Kept only until the informer cache shows the last version: from
/// then on no reconcile can start from an earlier copy, and the cache holds the status itself.
struct Lineage<S> {
    /// resourceVersions, oldest first: the copy the run started from, then each write's.
    versions: VecDeque<String>,
    /// The status as the API stores it at the last version.
    stored: Arc<S>,
}

/// How many versions a lineage keeps: a reconcile writes once per batch, and an informer copy
/// older than this many writes is simply planned from (its first write is then refused).
const LINEAGE_MAX: usize = 256;

/// The book entry of one object, as its copy at `resource_version` showed it: where a reconcile
/// of that copy starts.
pub struct CaughtUp<S> {
    /// The resourceVersion this process last wrote (the copy's own when it is the latest).
    pub resource_version: String,
    /// The status the API stores at that version.
    pub stored: Arc<S>,
}

/// A status as [`Book::recall_ref`] found it.
pub enum Recalled<'s, S> {
    /// The stored status, which is the full one.
    Stored(&'s S),
    /// The full status this process kept for the stored abridged one.
    Kept(Arc<S>),
    /// No status yet.
    Empty(S),
}

impl<S> std::ops::Deref for Recalled<'_, S> {
    type Target = S;
    fn deref(&self) -> &S {
        match self {
            Recalled::Stored(s) => s,
            Recalled::Kept(s) => s,
            Recalled::Empty(s) => s,
        }
    }
}

/// The full statuses of one kind, by object UID.
pub struct Book<S>(Mutex<HashMap<String, Entry<S>>>);

impl<S> Default for Book<S> {
    fn default() -> Self {
        Self(Mutex::new(HashMap::new()))
    }
}

impl<S: Abridge> Book<S> {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry<S>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The fullest status known of object `uid` whose copy (the API's, or the informer
    /// cache's) has status `stored`: the full one kept here when `stored` is its abridged form,
    /// else `stored` (which may be abridged). Checked, not assumed: a write may have failed
    /// after the book kept it, someone else may have written since, and the watch event that
    /// wakes another object's reconcile can come from a write older or newer than the one kept
    /// here; a reconcile must plan from the state its copy shows.
    pub fn recall(&self, uid: Option<&str>, stored: Option<&S>) -> Arc<S> {
        match self.recall_ref(uid, stored) {
            Recalled::Stored(stored) => Arc::new(stored.clone()),
            Recalled::Kept(full) => full,
            Recalled::Empty(empty) => Arc::new(empty),
        }
    }

    /// [`Book::recall`] without a copy of a stored status that is already full. A status the
    /// API stores whole (not abridged) is the full one: nothing is looked up or hashed. This is
    /// what the checks that read every other object of a kind at each reconcile use; hashing
    /// and copying each of 1,000 statuses there made onboarding 1,000 products quadratic.
    pub fn recall_ref<'s>(&self, uid: Option<&str>, stored: Option<&'s S>) -> Recalled<'s, S> {
        let Some(stored) = stored else {
            return Recalled::Empty(S::default());
        };
        let Some(uid) = uid.filter(|_| stored.is_abridged()) else {
            return Recalled::Stored(stored);
        };
        let book = self.lock();
        match book.get(uid).and_then(|e| e.full.as_ref()) {
            Some(kept) if kept.stored == stored_hash(stored) => Recalled::Kept(kept.full.clone()),
            _ => Recalled::Stored(stored),
        }
    }

    /// Keeps `full` as the full record of `stored`, the copy written to the API, when that copy
    /// is abridged; when it is whole, drops any full record kept before (the stored copy is
    /// its own, and a second copy of each of 1,000 small statuses is what the book must not
    /// hold).
    pub fn keep(&self, uid: Option<&str>, stored: &S, full: &Arc<S>) {
        let Some(uid) = uid else { return };
        let mut book = self.lock();
        if stored.is_abridged() {
            let kept = Kept {
                stored: stored_hash(stored),
                full: full.clone(),
            };
            // The lineage stays: it follows the API's versions, not what the book keeps.
            book.entry(uid.to_string()).or_default().full = Some(kept);
        } else {
            clear_entry(&mut book, uid, |e| e.full = None);
        }
    }

    /// Records that a status write based on the copy at `base` succeeded, storing `stored` at
    /// `written`: the lineage goes on when `base` is its last version, else starts at `base`.
    /// `cached` is the version the informer cache holds now, read under the book's lock so
    /// that [`Book::cached`] cannot run between: when it already is `written`, there is no
    /// lineage to keep.
    pub fn confirm(
        &self,
        uid: Option<&str>,
        base: &str,
        written: String,
        stored: Arc<S>,
        cached: impl FnOnce() -> Option<String>,
    ) {
        let Some(uid) = uid else { return };
        let mut book = self.lock();
        if cached().as_deref() == Some(written.as_str()) {
            clear_entry(&mut book, uid, |e| e.lineage = None);
            return;
        }
        let entry = book.entry(uid.to_string()).or_default();
        match &mut entry.lineage {
            Some(run) if run.versions.back().map(String::as_str) == Some(base) => {
                run.versions.push_back(written);
                if run.versions.len() > LINEAGE_MAX {
                    run.versions.pop_front();
                }
                run.stored = stored;
            }
            lineage => {
                let versions = VecDeque::from([base.to_string(), written]);
                *lineage = Some(Lineage { versions, stored });
            }
        }
    }

    /// Records that the informer cache now holds object `uid` at `resource_version`: once that
    /// is the last version of its lineage, the lineage has served its purpose.
    pub fn cached(&self, uid: Option<&str>, resource_version: Option<&str>) {
        let (Some(uid), Some(resource_version)) = (uid, resource_version) else {
            return;
        };
        clear_entry(&mut self.lock(), uid, |entry| {
            let last = entry.lineage.as_ref().and_then(|l| l.versions.back());
            if last.map(String::as_str) == Some(resource_version) {
                entry.lineage = None;
            }
        });
    }

    /// Where a reconcile of object `uid`'s copy at `resource_version` starts, when that copy is
    /// an earlier step of this process's lineage (the informer has not yet seen the last
    /// writes): at the last write, with its status. `None` when the copy is the latest known,
    /// or someone else wrote since (then the copy is newer, and planned from as it is).
    pub fn caught_up(
        &self,
        uid: Option<&str>,
        resource_version: Option<&str>,
    ) -> Option<CaughtUp<S>> {
        let (uid, resource_version) = (uid?, resource_version?);
        let book = self.lock();
        let lineage = book.get(uid)?.lineage.as_ref()?;
        let last = lineage.versions.back()?;
        let earlier =
            last != resource_version && lineage.versions.iter().any(|v| v == resource_version);
        earlier.then(|| CaughtUp {
            resource_version: last.clone(),
            stored: lineage.stored.clone(),
        })
    }

    fn forget(&self, uid: &str) {
        self.lock().remove(uid);
    }

    /// Objects the book holds anything for.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// The books of both kinds.
#[derive(Default)]
pub struct Books {
    pub bindings: Book<BusinessProfileBindingStatus>,
    pub products: Book<ShakenStirTrustProductStatus>,
}

impl Books {
    /// Records what the informer cache of a kind now holds (called once the cache has applied
    /// `event`): a copy at the last version of its lineage ends the lineage, and a deleted
    /// object is forgotten.
    pub fn cached<K: BookedObject>(&self, event: &kube::runtime::watcher::Event<K>) {
        use kube::runtime::watcher::Event;
        match event {
            Event::Apply(obj) => {
                let meta = obj.meta();
                K::Status::book(self).cached(meta.uid.as_deref(), meta.resource_version.as_deref())
            }
            Event::Delete(obj) => self.forget(obj.meta().uid.as_deref()),
            Event::Init | Event::InitApply(_) | Event::InitDone => {}
        }
    }

    /// Forgets object `uid` (it is gone).
    pub fn forget(&self, uid: Option<&str>) {
        if let Some(uid) = uid {
            self.bindings.forget(uid);
            self.products.forget(uid);
        }
    }
}

/// Which books a status type is kept in.
pub trait Booked: Abridge + Sized {
    fn book(books: &Books) -> &Book<Self>;
}

impl Booked for BusinessProfileBindingStatus {
    fn book(books: &Books) -> &Book<Self> {
        &books.bindings
    }
}

impl Booked for ShakenStirTrustProductStatus {
    fn book(books: &Books) -> &Book<Self> {
        &books.products
    }
}

/// A custom resource whose status is kept in the books.
pub trait BookedObject: Resource<DynamicType = ()> + Clone + 'static {
    /// Its status.
    type Status: Booked;
    /// `.status`.
    fn status_mut(&mut self) -> &mut Option<Self::Status>;
    /// The informer cache of its kind, once it runs.
    fn cache(ctx: &Context) -> Option<&Store<Self>>;
}

impl BookedObject for BusinessProfileBinding {
    type Status = BusinessProfileBindingStatus;
    fn status_mut(&mut self) -> &mut Option<Self::Status> {
        &mut self.status
    }
    fn cache(ctx: &Context) -> Option<&Store<Self>> {
        ctx.bindings.get()
    }
}

impl BookedObject for ShakenStirTrustProduct {
    type Status = ShakenStirTrustProductStatus;
    fn status_mut(&mut self) -> &mut Option<Self::Status> {
        &mut self.status
    }
    fn cache(ctx: &Context) -> Option<&Store<Self>> {
        ctx.products.get()
    }
}

impl Books {
    /// The object a reconcile of the informer copy `obj` plans from: the copy itself, or, when
    /// the copy is an earlier step of this process's own run of status writes (the watch has
    /// not delivered the last ones yet), the object as the last write stored it. That is what a
    /// fresh read would return, without the read: planning from the older copy would repeat
    /// Twilio look-ups its status already answers.
    pub fn caught_up<K: BookedObject>(&self, obj: Arc<K>) -> Arc<K> {
        let meta = obj.meta();
        let book = K::Status::book(self);
        let Some(at) = book.caught_up(meta.uid.as_deref(), meta.resource_version.as_deref()) else {
            return obj;
        };
        let mut latest = K::clone(&obj);
        latest.meta_mut().resource_version = Some(at.resource_version);
        *latest.status_mut() = Some(K::Status::clone(&at.stored));
        Arc::new(latest)
    }
}

#[cfg(test)]
#[path = "book_tests.rs"]
mod tests;
