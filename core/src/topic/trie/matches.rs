//! The results of matching a topic: per-client groups and shared groups, in a reusable buffer.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};

use super::SubscriptionTree;
use crate::topic::{TopicFilter, TopicName};

/// Up to this many distinct clients, [`Matches::collect`] finds a client's group by a linear
/// scan; beyond, through a hash index.
const LINEAR_CLIENTS: usize = 16;

/// One matching shared group: its filter and all its members.
///
/// The broker delivers the message to one member of its choice;
/// [`members`](Self::members) is a slice so it can pick by position.
pub struct SharedMatch<'a, K, V> {
    filter: &'a TopicFilter,
    members: &'a [(K, V)],
}

impl<'a, K, V> SharedMatch<'a, K, V> {
    pub(super) fn new(filter: &'a TopicFilter, members: &'a [(K, V)]) -> Self {
        Self { filter, members }
    }

    /// The group's name, from `$share/<group>/<pattern>`.
    #[must_use]
    pub fn group(&self) -> &'a str {
        self.filter.share_group().unwrap_or_default()
    }

    /// The whole filter, `$share/<group>/` included.
    #[must_use]
    pub fn filter(&self) -> &'a TopicFilter {
        self.filter
    }

    /// The members with their values; never empty.
    #[must_use]
    pub fn members(&self) -> &'a [(K, V)] {
        self.members
    }
}

impl<K, V> Clone for SharedMatch<'_, K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K, V> Copy for SharedMatch<'_, K, V> {}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for SharedMatch<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedMatch").field("filter", self.filter).field("members", &self.members).finish()
    }
}

/// The ordinary subscriptions of one client that match a topic: one entry per matching filter.
///
/// A broker sends the client one copy, at the highest QoS among
/// [`subscriptions`](Self::subscriptions), with all their subscription identifiers.
pub struct ClientMatches<'a, K, V> {
    key: &'a K,
    subscriptions: &'a [(TopicFilter, V)],
}

impl<'a, K, V> ClientMatches<'a, K, V> {
    /// The client.
    #[must_use]
    pub fn key(&self) -> &'a K {
        self.key
    }

    /// Its matching filters with their values; never empty, each filter once.
    #[must_use]
    pub fn subscriptions(&self) -> &'a [(TopicFilter, V)] {
        self.subscriptions
    }
}

impl<K, V> Clone for ClientMatches<'_, K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K, V> Copy for ClientMatches<'_, K, V> {}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for ClientMatches<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientMatches").field("key", self.key).field("subscriptions", &self.subscriptions).finish()
    }
}

/// A client's group in [`Matches`]: its key and its range in `Matches::subscriptions`.
#[derive(Debug)]
struct ClientSlot<K> {
    key: K,
    start: usize,
    end: usize,
    /// The next slot whose key has the same hash, or [`NO_SLOT`].
    next: usize,
}

const NO_SLOT: usize = usize::MAX;

/// Client slots by key hash, once there are many clients.
///
/// Keyed by the 64-bit SipHash of the client key (randomly seeded, so clients cannot aim for
/// collisions), with slots of equal hash chained through [`ClientSlot::next`]: this saves
/// cloning every key into the map. The hash is already well mixed, so the map uses it as is.
#[derive(Debug, Default)]
struct SlotIndex {
    hasher: RandomState,
    heads: HashMap<u64, usize, BuildHasherDefault<PassThrough>>,
}

/// A hasher for keys that are hashes already.
#[derive(Debug, Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; fold anything else in so that it would still work.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A shared group in [`Matches`]: its filter and its range in `Matches::members`.
#[derive(Debug)]
struct SharedSlot {
    filter: TopicFilter,
    start: usize,
    end: usize,
}

/// Everything that matches one topic, grouped for delivery, in a buffer meant to be reused.
///
/// [`collect`](Self::collect) walks the trie once and records
/// - the ordinary matches grouped per client ([`clients`](Self::clients)): each client once,
///   with every filter of its that matched, so the broker sends one copy at the highest QoS;
/// - the matching shared groups with all their members ([`shared`](Self::shared)), for the
///   broker to pick one member each.
///
/// It stores clones of keys, filters and values rather than borrows, so the results stay usable
/// while the caller mutates its own state (and even the trie). Reusing one `Matches` for every
/// publish keeps the vectors' capacity, so routing does not allocate once they have grown.
/// Copying out every member of a shared group costs O(group size) per match; when groups are
/// large and only one member is needed, [`SubscriptionTree::for_each_shared_match`] picks
/// without copying.
///
/// ```
/// use moat_mqtt_core::topic::{Matches, SubscriptionTree, TopicFilter, TopicName};
///
/// let mut tree = SubscriptionTree::new();
/// let f = |s: &str| TopicFilter::new(s.to_owned()).unwrap();
/// tree.insert(&f("a/+"), "alice", 1);
/// tree.insert(&f("a/#"), "alice", 2);
/// tree.insert(&f("a/b"), "bob", 0);
/// tree.insert(&f("$share/workers/a/b"), "carol", 1);
///
/// let mut matches = Matches::new();
/// matches.collect(&tree, &TopicName::new("a/b").unwrap());
/// let alice = matches.clients().find(|c| *c.key() == "alice").unwrap();
/// assert_eq!(alice.subscriptions().iter().map(|(_, qos)| *qos).max(), Some(2));
/// assert_eq!(matches.clients().len(), 2);
/// assert_eq!(matches.shared().next().unwrap().group(), "workers");
/// ```
pub struct Matches<K, V> {
    clients: Vec<ClientSlot<K>>,
    /// Client slots by key hash, once there are more than [`LINEAR_CLIENTS`] clients.
    index: SlotIndex,
    /// Ordinary matches in the order found, with their client slot.
    found: Vec<(usize, TopicFilter, V)>,
    /// Ordinary matches, grouped per client.
    subscriptions: Vec<(TopicFilter, V)>,
    shared: Vec<SharedSlot>,
    members: Vec<(K, V)>,
}

impl<K, V> Matches<K, V> {
    /// An empty buffer; allocates nothing until it is used.
    #[must_use]
    pub fn new() -> Self {
        Self {
            clients: Vec::new(),
            index: SlotIndex::default(),
            found: Vec::new(),
            subscriptions: Vec::new(),
            shared: Vec::new(),
            members: Vec::new(),
        }
    }

    /// Forgets the results, keeping the capacity.
    pub fn clear(&mut self) {
        self.clients.clear();
        self.index.heads.clear();
        self.found.clear();
        self.subscriptions.clear();
        self.shared.clear();
        self.members.clear();
    }

    /// True when nothing matched: no client and no shared group.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty() && self.shared.is_empty()
    }

    /// The clients with matching ordinary subscriptions, each once, in no particular order.
    pub fn clients(&self) -> impl ExactSizeIterator<Item = ClientMatches<'_, K, V>> {
        self.clients.iter().map(|c| ClientMatches {
            key: &c.key,
            subscriptions: self.subscriptions.get(c.start..c.end).unwrap_or_default(),
        })
    }

    /// The matching shared groups, in no particular order.
    pub fn shared(&self) -> impl ExactSizeIterator<Item = SharedMatch<'_, K, V>> {
        self.shared
            .iter()
            .map(|s| SharedMatch { filter: &s.filter, members: self.members.get(s.start..s.end).unwrap_or_default() })
    }
}

impl<K: Clone + Eq + Hash, V: Clone> Matches<K, V> {
    /// Replaces the contents with the matches of `topic` in `tree`.
    pub fn collect(&mut self, tree: &SubscriptionTree<K, V>, topic: &TopicName) {
        self.clear();
        let Self { clients, index, found, shared, members, .. } = self;
        tree.walk(topic, |leaf| {
            if let Some(filter) = &leaf.filter {
                for (key, value) in leaf.plain.entries() {
                    let slot = client_slot(clients, index, key);
                    found.push((slot, filter.clone(), value.clone()));
                }
            }
            for (_, group) in leaf.shared.iter().flat_map(|s| s.entries()) {
                let start = members.len();
                members.extend_from_slice(group.members.entries());
                shared.push(SharedSlot { filter: group.filter.clone(), start, end: members.len() });
            }
        });
        // Slots are numbered in the order clients are first found, so without a client matching
        // twice `found` is in slot order already; otherwise sort it into per-client runs.
        if self.found.len() > self.clients.len() {
            self.found.sort_unstable_by_key(|(slot, ..)| *slot);
        }
        for (slot, filter, value) in self.found.drain(..) {
            let at = self.subscriptions.len();
            self.subscriptions.push((filter, value));
            if let Some(client) = self.clients.get_mut(slot) {
                if client.end == 0 {
                    client.start = at;
                }
                client.end = at + 1;
            }
        }
    }
}

/// The slot of `key` in `clients`, added if new.
fn client_slot<K: Clone + Eq + Hash>(clients: &mut Vec<ClientSlot<K>>, index: &mut SlotIndex, key: &K) -> usize {
    let mut next = NO_SLOT;
    if clients.len() < LINEAR_CLIENTS {
        if let Some(at) = clients.iter().position(|c| c.key == *key) {
            return at;
        }
    } else {
        if index.heads.is_empty() {
            for (at, slot) in clients.iter_mut().enumerate() {
                let hash = index.hasher.hash_one(&slot.key);
                slot.next = index.heads.insert(hash, at).unwrap_or(NO_SLOT);
            }
        }
        let hash = index.hasher.hash_one(key);
        let mut at = index.heads.get(&hash).copied().unwrap_or(NO_SLOT);
        while let Some(slot) = clients.get(at) {
            if slot.key == *key {
                return at;
            }
            at = slot.next;
        }
        next = index.heads.insert(hash, clients.len()).unwrap_or(NO_SLOT);
    }
    clients.push(ClientSlot { key: key.clone(), start: 0, end: 0, next });
    clients.len() - 1
}

impl<K, V> Default for Matches<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for Matches<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Matches")
            .field("clients", &self.clients().collect::<Vec<_>>())
            .field("shared", &self.shared().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_with_equal_hashes_are_chained() {
        let mut clients = Vec::new();
        let mut index = SlotIndex::default();
        for key in 0..LINEAR_CLIENTS as u32 {
            assert_eq!(client_slot(&mut clients, &mut index, &key), key as usize);
        }
        let a = client_slot(&mut clients, &mut index, &100);
        assert!(!index.heads.is_empty());
        // Make 200 collide with 100: its hash now leads to 100's slot first.
        let hash_200 = index.hasher.hash_one(200u32);
        index.heads.insert(hash_200, a);
        let b = client_slot(&mut clients, &mut index, &200);
        assert_ne!(a, b);
        assert_eq!(clients[b].next, a);
        for (key, slot) in [(100, a), (200, b), (3, 3), (0, 0)] {
            assert_eq!(client_slot(&mut clients, &mut index, &key), slot, "key {key}");
        }
        assert_eq!(clients.len(), LINEAR_CLIENTS + 2);
    }
}
