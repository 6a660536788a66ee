//! The subscription trie: which subscriptions match a topic, in time that grows with the topic's
//! depth rather than with the number of subscriptions. See [`SubscriptionTree`] for the design.

use std::fmt;
use std::hash::Hash;
use std::mem;

use super::{TopicFilter, TopicName};

mod keyed;
mod matches;
mod node;
#[cfg(test)]
mod tests;

pub use matches::{ClientMatches, Matches, SharedMatch};
use node::{Leaf, Node, Step, dismantle, path};

/// Subscriptions by topic filter, for matching topics against all of them at once.
///
/// Generic over the subscriber key `K` (a client id or session handle) and the value `V` kept
/// per subscription (its options, perhaps a subscription identifier). A key holds at most one
/// subscription per filter: subscribing again replaces the value. Ordinary and shared
/// subscriptions are kept apart: `a/b`, `$share/g1/a/b` and `$share/g2/a/b` are three different
/// filters for the same key.
///
/// Calling contract: [`insert`](Self::insert) on SUBSCRIBE, [`remove`](Self::remove) on
/// UNSUBSCRIBE, [`remove_all`](Self::remove_all) when a session ends, and on every PUBLISH either
/// [`for_each_match`](Self::for_each_match) plus
/// [`for_each_shared_match`](Self::for_each_shared_match), or [`Matches::collect`].
///
/// Nothing here panics, whatever the filters and topics (they are validated types); very deep
/// filters (up to the 32,768 levels a 64 KiB filter can have) are handled without recursion,
/// dropping the trie included.
///
/// # Structure
/// Each node stands for one filter prefix. It holds its literal children in a per-level map (a
/// short vector while there are few, a `HashMap` with the standard, randomly seeded hasher
/// beyond eight, so clients cannot make levels collide), and separate slots for its `+` child,
/// for the subscriptions ending in `/#` there, and for those ending exactly there. Matching a
/// topic of depth `d` follows at most the literal and the `+` child at each level, so the nodes
/// it visits depend on `d` and on the `+` filters along the way, never on how many
/// subscriptions the trie holds elsewhere; it does not allocate unless the topic is deeper than
/// 32 levels and branches into `+` at more than 32 of them. Removing a subscription frees the
/// nodes it leaves empty.
///
/// Shared subscriptions (`$share/<group>/<pattern>`) are stored at their pattern's node, apart
/// from the ordinary subscriptions there, and matched as whole groups: the broker picks the one
/// member that gets a message.
///
/// # Matching, and why it is shaped this way
/// - [`for_each_match`](Self::for_each_match) calls a closure with `(key, filter, value)` for
///   every matching ordinary subscription, borrowed from the trie: no allocation, no cloning. A
///   client holding several matching filters (`a/+` and `a/#`) is reported once per filter.
/// - [`for_each_shared_match`](Self::for_each_shared_match) calls a closure once per matching
///   shared group with a [`SharedMatch`]: the group's filter and all its members as a slice, so
///   the caller can pick one by position (round robin, least loaded, ...) and clone only that.
/// - [`Matches`] is a reusable buffer that does both in one walk and groups the ordinary
///   matches per client, so a broker delivers one copy at the highest QoS granted and with
///   every subscription identifier. It holds clones (of keys, filters and values; cheap shared
///   handles in the broker) rather than borrows, so it outlives the walk and the broker can
///   change its sessions while going through the results; its vectors keep their capacity
///   between publishes, so steady-state routing does not allocate.
///
/// # Removing every subscription of a client
/// The trie keeps no per-client index, which would cost memory for every subscription and time
/// on every insert. The broker keeps each session's filters anyway (it needs them for the
/// session's state), so [`remove_all`](Self::remove_all) takes that list: O(subscriptions of
/// that client * filter depth), not O(all subscriptions).
pub struct SubscriptionTree<K, V> {
    root: Node<K, V>,
    len: usize,
}

impl<K, V> SubscriptionTree<K, V> {
    /// An empty trie.
    #[must_use]
    pub const fn new() -> Self {
        Self { root: Node::new(), len: 0 }
    }

    /// The number of subscriptions: ordinary ones plus every member of every shared group.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the trie holds no subscription.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Removes every subscription.
    pub fn clear(&mut self) {
        dismantle(mem::replace(&mut self.root, Node::new()));
        self.len = 0;
    }

    /// Calls `f` with `(key, filter, value)` for every subscription, shared ones included (with
    /// their `$share/<group>/...` filter), in no particular order. O(size of the trie).
    pub fn for_each<'a>(&'a self, mut f: impl FnMut(&'a K, &'a TopicFilter, &'a V)) {
        let mut stack = vec![&self.root];
        while let Some(node) = stack.pop() {
            for leaf in node.leaf.iter().chain(&node.hash) {
                leaf.for_each(&mut f);
            }
            node.push_children(&mut stack);
        }
    }

    /// Calls `visit` for every leaf (subscriptions ending at one place) whose filter matches
    /// `topic`. Each leaf is visited at most once, because each node is reached by one path.
    fn walk<'a>(&'a self, topic: &TopicName, mut visit: impl FnMut(&'a Leaf<K, V>)) {
        let topic = topic.as_str();
        // MQTT-4.7.2-1: filters starting with a wildcard do not match topics starting with `$`.
        let dollar = super::is_dollar_topic(topic);
        let mut stack = WalkStack::new(&self.root);
        stack.push((&self.root, 0));
        // A state is a node and the byte offset in `topic` of the next level to match; an offset
        // past the end means every level has been matched. Literal children are followed in
        // this loop, `+` children are left on the stack for later.
        while let Some((mut node, mut at)) = stack.pop() {
            loop {
                let Some(rest) = topic.get(at..) else {
                    // The topic is used up: the filters ending here match, and so do those
                    // ending in `/#` here (`p/#` matches `p`).
                    if let Some(leaf) = &node.leaf {
                        visit(leaf);
                    }
                    if let Some(leaf) = &node.hash {
                        visit(leaf);
                    }
                    break;
                };
                let wildcards = at > 0 || !dollar;
                if wildcards && let Some(leaf) = &node.hash {
                    visit(leaf);
                }
                let (level, next) = match rest.split_once('/') {
                    Some((level, _)) => (level, at + level.len() + 1),
                    None => (rest, topic.len() + 1),
                };
                if wildcards && let Some(plus) = &node.plus {
                    stack.push((plus, next));
                }
                match node.children.get(level) {
                    Some(child) => (node, at) = (child, next),
                    None => break,
                }
            }
        }
    }
}

impl<K: Clone + Eq + Hash, V> SubscriptionTree<K, V> {
    /// Subscribes `key` to `filter` with `value`; returns the value replaced if `key` was
    /// subscribed to this very filter already (then [`len`](Self::len) does not change).
    ///
    /// A `$share/<group>/<pattern>` filter makes `key` a member of that group.
    pub fn insert(&mut self, filter: &TopicFilter, key: K, value: V) -> Option<V> {
        let (steps, hash) = path(filter);
        let mut node = &mut self.root;
        for step in steps {
            node = node.child_or_insert(step);
        }
        let slot = if hash { &mut node.hash } else { &mut node.leaf };
        let old = slot.get_or_insert_with(|| Box::new(Leaf::new())).insert(filter, key, value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Unsubscribes `key` from `filter`; returns its value, or `None` if there was no such
    /// subscription. Nodes left empty are freed.
    pub fn remove(&mut self, filter: &TopicFilter, key: &K) -> Option<V> {
        let (steps, hash) = path(filter);
        let mut node = &mut self.root;
        for step in steps.clone() {
            node = node.child_mut(step)?;
        }
        let slot = if hash { &mut node.hash } else { &mut node.leaf };
        let leaf = slot.as_deref_mut()?;
        let old = leaf.remove(filter.share_group(), key)?;
        if leaf.is_empty() {
            *slot = None;
        }
        let emptied = node.is_empty();
        self.len = self.len.saturating_sub(1);
        if emptied {
            self.prune(steps);
        }
        Some(old)
    }

    /// Removes the subscriptions of `key` to each of `filters` (the list a session keeps);
    /// returns how many there were. Filters `key` does not hold are skipped.
    ///
    /// Costs O(filters * depth): the trie has no per-key index (see the
    /// [type's documentation](Self) for why).
    pub fn remove_all<'f>(&mut self, key: &K, filters: impl IntoIterator<Item = &'f TopicFilter>) -> usize {
        filters.into_iter().filter(|filter| self.remove(filter, key).is_some()).count()
    }

    /// The value of `key`'s subscription to `filter`, if it has one.
    #[must_use]
    pub fn get(&self, filter: &TopicFilter, key: &K) -> Option<&V> {
        let (steps, hash) = path(filter);
        let mut node = &self.root;
        for step in steps {
            node = node.child(step)?;
        }
        let leaf = if hash { &node.hash } else { &node.leaf };
        leaf.as_deref()?.get(filter.share_group(), key)
    }

    /// Calls `f` with `(key, filter, value)` for every ordinary (not shared) subscription whose
    /// filter matches `topic`, in no particular order, borrowing from the trie.
    ///
    /// A key with several matching filters is reported once for each; group them (or use
    /// [`Matches`]) to deliver one copy. Shared subscriptions are reported by
    /// [`for_each_shared_match`](Self::for_each_shared_match) instead.
    pub fn for_each_match<'a>(&'a self, topic: &TopicName, mut f: impl FnMut(&'a K, &'a TopicFilter, &'a V)) {
        self.walk(topic, |leaf| {
            if let Some(filter) = &leaf.filter {
                for (key, value) in leaf.plain.entries() {
                    f(key, filter, value);
                }
            }
        });
    }

    /// Calls `f` once for every shared group `$share/<group>/<pattern>` whose pattern matches
    /// `topic`, with all its members; the caller picks the member that gets the message.
    ///
    /// Groups of the same name with different patterns are different groups, each reported on
    /// its own.
    pub fn for_each_shared_match<'a>(&'a self, topic: &TopicName, mut f: impl FnMut(SharedMatch<'a, K, V>)) {
        self.walk(topic, |leaf| {
            for (_, group) in leaf.shared.iter().flat_map(|s| s.entries()) {
                f(SharedMatch::new(&group.filter, group.members.entries()));
            }
        });
    }

    /// Removes the nodes on `steps` that the last removal left without a purpose: cuts the edge
    /// below the deepest node on the path that holds something besides the path (or the root).
    fn prune<'f>(&mut self, steps: impl Iterator<Item = Step<'f>> + Clone) {
        let mut cut = None;
        let mut node = &self.root;
        for (depth, step) in steps.clone().enumerate() {
            if depth == 0 || !node.is_bare_edge() {
                cut = Some((depth, step));
            }
            match node.child(step) {
                Some(child) => node = child,
                None => return,
            }
        }
        let Some((depth, edge)) = cut else { return };
        let mut node = &mut self.root;
        for step in steps.take(depth) {
            match node.child_mut(step) {
                Some(child) => node = child,
                None => return,
            }
        }
        if let Some(dead) = node.take_child(edge) {
            dismantle(dead);
        }
    }

    #[cfg(test)]
    fn node_count(&self) -> usize {
        let mut stack = vec![&self.root];
        let mut count = 0;
        while let Some(node) = stack.pop() {
            count += 1;
            node.push_children(&mut stack);
        }
        count
    }
}

impl<K, V> Default for SubscriptionTree<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> Drop for SubscriptionTree<K, V> {
    fn drop(&mut self) {
        self.clear();
    }
}

impl<K, V> fmt::Debug for SubscriptionTree<K, V> {
    /// Shows the size only: a broker's trie may hold millions of subscriptions.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriptionTree").field("len", &self.len).finish_non_exhaustive()
    }
}

/// How many walk states live on the call stack before [`WalkStack`] spills to the heap.
const INLINE_STATES: usize = 32;

/// The pending states of [`SubscriptionTree::walk`]: `+` branches still to follow.
///
/// Each topic level adds at most one state, so topics up to [`INLINE_STATES`] levels deep are
/// walked without allocating.
struct WalkStack<'a, K, V> {
    inline: [(&'a Node<K, V>, usize); INLINE_STATES],
    len: usize,
    spill: Vec<(&'a Node<K, V>, usize)>,
}

impl<'a, K, V> WalkStack<'a, K, V> {
    fn new(filler: &'a Node<K, V>) -> Self {
        Self { inline: [(filler, 0); INLINE_STATES], len: 0, spill: Vec::new() }
    }

    fn push(&mut self, state: (&'a Node<K, V>, usize)) {
        match self.inline.get_mut(self.len) {
            Some(slot) => {
                *slot = state;
                self.len += 1;
            }
            None => self.spill.push(state),
        }
    }

    fn pop(&mut self) -> Option<(&'a Node<K, V>, usize)> {
        if let Some(state) = self.spill.pop() {
            return Some(state);
        }
        self.len = self.len.checked_sub(1)?;
        self.inline.get(self.len).copied()
    }
}
