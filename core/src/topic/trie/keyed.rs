//! A small keyed collection: a vector searched linearly while short, with a hash index once long.
//!
//! Most trie slots hold one or a few subscribers, where a linear scan beats hashing and costs no
//! extra memory; a slot that many clients share (a popular filter, a large shared group) gets an
//! index so that inserting and removing stay O(1). The entries stay in one contiguous slice either
//! way, which makes iterating them during matching cheap and lets a broker pick a member of a
//! shared group by position.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

/// Above this many entries, an index is built.
const INDEX_ABOVE: usize = 16;
/// Below this many entries, the index is dropped again (a gap, so that one client going back and
/// forth across the limit does not rebuild it each time).
const UNINDEX_BELOW: usize = 8;

/// Entries with distinct keys, in a slice; see the module documentation.
pub(super) struct Keyed<Q, T> {
    entries: Vec<(Q, T)>,
    /// Position of each key in `entries`, present while there are many entries.
    #[allow(clippy::box_collection, reason = "boxed, the absent index costs one word, not six")]
    index: Option<Box<HashMap<Q, usize>>>,
}

impl<Q, T> Keyed<Q, T> {
    /// An empty collection; allocates nothing.
    pub(super) const fn new() -> Self {
        Self { entries: Vec::new(), index: None }
    }

    /// The entries, in no particular order.
    pub(super) fn entries(&self) -> &[(Q, T)] {
        &self.entries
    }

    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<Q: Clone + Eq + Hash, T> Keyed<Q, T> {
    fn position<B>(&self, key: &B) -> Option<usize>
    where
        Q: Borrow<B>,
        B: ?Sized + Hash + Eq,
    {
        match &self.index {
            Some(index) => index.get(key).copied(),
            None => self.entries.iter().position(|(q, _)| q.borrow() == key),
        }
    }

    pub(super) fn get<B>(&self, key: &B) -> Option<&T>
    where
        Q: Borrow<B>,
        B: ?Sized + Hash + Eq,
    {
        let at = self.position(key)?;
        self.entries.get(at).map(|(_, t)| t)
    }

    pub(super) fn get_mut<B>(&mut self, key: &B) -> Option<&mut T>
    where
        Q: Borrow<B>,
        B: ?Sized + Hash + Eq,
    {
        let at = self.position(key)?;
        self.entries.get_mut(at).map(|(_, t)| t)
    }

    /// Inserts or replaces; returns the value replaced.
    pub(super) fn insert(&mut self, key: Q, value: T) -> Option<T> {
        if let Some(at) = self.position(&key)
            && let Some((_, old)) = self.entries.get_mut(at)
        {
            return Some(std::mem::replace(old, value));
        }
        if self.entries.capacity() == 0 {
            // Most slots keep a single entry: do not let the first push reserve room for four.
            self.entries.reserve_exact(1);
        }
        if let Some(index) = &mut self.index {
            index.insert(key.clone(), self.entries.len());
        }
        self.entries.push((key, value));
        if self.index.is_none() && self.entries.len() > INDEX_ABOVE {
            let index = self.entries.iter().enumerate().map(|(at, (q, _))| (q.clone(), at)).collect();
            self.index = Some(Box::new(index));
        }
        None
    }

    /// Removes the entry for `key` and returns its value; the last entry takes its place.
    pub(super) fn remove<B>(&mut self, key: &B) -> Option<T>
    where
        Q: Borrow<B>,
        B: ?Sized + Hash + Eq,
    {
        let at = self.position(key)?;
        if at >= self.entries.len() {
            return None;
        }
        let (_, value) = self.entries.swap_remove(at);
        if let Some(index) = &mut self.index {
            index.remove(key);
            if let Some((moved, _)) = self.entries.get(at)
                && let Some(slot) = index.get_mut::<Q>(moved)
            {
                *slot = at;
            }
        }
        if self.entries.len() < UNINDEX_BELOW {
            self.index = None;
        }
        if self.entries.is_empty() {
            self.entries = Vec::new();
        } else if self.entries.capacity() > 4 && self.entries.len() * 4 <= self.entries.capacity() {
            self.entries.shrink_to(self.entries.len() * 2);
        }
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_consistent_across_the_index_threshold() {
        let mut k: Keyed<u32, u32> = Keyed::new();
        for round in 0..3 {
            for i in 0..40 {
                assert_eq!(k.insert(i, i + round), if round == 0 { None } else { Some(i + round - 1) });
            }
            assert!(k.index.is_some());
            // Remove from the front, the middle and the back, checking every key each time.
            for i in (0..40).filter(|i| i % 3 == 0) {
                assert_eq!(k.remove(&i), Some(i + round));
                assert_eq!(k.remove(&i), None);
                for j in 0..40 {
                    let present = j % 3 != 0 || j > i;
                    assert_eq!(k.get(&j).is_some(), present, "key {j} after removing {i}");
                }
            }
            for i in 0..40 {
                if i % 3 != 0 {
                    assert_eq!(k.remove(&i), Some(i + round));
                }
            }
            assert!(k.is_empty());
            assert!(k.index.is_none());
            assert_eq!(k.entries.capacity(), 0);
            // Put the removed ones back so the next round starts from a full set.
            for i in 0..40 {
                k.insert(i, i + round);
            }
            assert_eq!(k.entries().len(), 40);
        }
    }
}
