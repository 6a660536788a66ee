//! The trie's nodes: one per filter level, with the subscriptions that end there.

use std::collections::HashMap;
use std::hash::Hash;
use std::mem;

use super::keyed::Keyed;
use crate::topic::TopicFilter;

/// One step down the trie: a `+` level or a literal level (possibly empty).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step<'a> {
    Plus,
    Literal(&'a str),
}

/// The path of `filter`'s pattern through the trie: the levels before a trailing `#`, and
/// whether there is a trailing `#`.
///
/// The filter is validated, so `+` and `#` only ever fill a whole level and `#` is last.
pub(super) fn path(filter: &TopicFilter) -> (impl Iterator<Item = Step<'_>> + Clone, bool) {
    let pattern = filter.pattern();
    let (body, hash) = match pattern.strip_suffix("/#") {
        _ if pattern == "#" => (None, true),
        Some(body) => (Some(body), true),
        None => (Some(pattern), false),
    };
    let steps =
        body.into_iter().flat_map(|b| b.split('/')).map(|l| if l == "+" { Step::Plus } else { Step::Literal(l) });
    (steps, hash)
}

/// A trie node: it stands for one filter prefix (its path from the root).
pub(super) struct Node<K, V> {
    /// Children for literal levels.
    pub(super) children: Children<K, V>,
    /// The child for a `+` level.
    pub(super) plus: Option<Box<Node<K, V>>>,
    /// Subscriptions to this prefix followed by `/#` (or to `#`, at the root).
    pub(super) hash: Option<Box<Leaf<K, V>>>,
    /// Subscriptions to exactly this prefix.
    pub(super) leaf: Option<Box<Leaf<K, V>>>,
}

impl<K, V> Node<K, V> {
    pub(super) const fn new() -> Self {
        Self { children: Children::Few(Vec::new()), plus: None, hash: None, leaf: None }
    }

    /// True when nothing hangs off this node: it can be pruned.
    pub(super) fn is_empty(&self) -> bool {
        self.leaf.is_none() && self.hash.is_none() && self.plus.is_none() && self.children.is_empty()
    }

    /// True when this node holds one child and nothing else: it dies with that child.
    pub(super) fn is_bare_edge(&self) -> bool {
        self.leaf.is_none() && self.hash.is_none() && self.children.len() + usize::from(self.plus.is_some()) == 1
    }

    pub(super) fn child(&self, step: Step<'_>) -> Option<&Self> {
        match step {
            Step::Plus => self.plus.as_deref(),
            Step::Literal(level) => self.children.get(level),
        }
    }

    pub(super) fn child_mut(&mut self, step: Step<'_>) -> Option<&mut Self> {
        match step {
            Step::Plus => self.plus.as_deref_mut(),
            Step::Literal(level) => self.children.get_mut(level),
        }
    }

    pub(super) fn child_or_insert(&mut self, step: Step<'_>) -> &mut Self {
        match step {
            Step::Plus => self.plus.get_or_insert_with(|| Box::new(Node::new())),
            Step::Literal(level) => self.children.get_or_insert(level),
        }
    }

    /// Detaches the child at `step`, to be [`dismantle`]d.
    pub(super) fn take_child(&mut self, step: Step<'_>) -> Option<Self> {
        match step {
            Step::Plus => self.plus.take().map(|b| *b),
            Step::Literal(level) => self.children.remove(level),
        }
    }

    /// Pushes every child onto `out`.
    pub(super) fn push_children<'a>(&'a self, out: &mut Vec<&'a Self>) {
        match &self.children {
            Children::Few(v) => out.extend(v.iter().map(|(_, n)| n)),
            Children::Many(m) => out.extend(m.values()),
        }
        out.extend(self.plus.as_deref());
    }
}

/// Drops a subtree without recursion.
///
/// A filter may be 32,768 levels deep, and the compiler's recursive drop of a chain that long
/// would overflow the stack; the tree and every pruned subtree are taken apart here instead.
pub(super) fn dismantle<K, V>(node: Node<K, V>) {
    if node.children.is_empty() && node.plus.is_none() {
        return;
    }
    let mut stack = vec![node];
    while let Some(mut node) = stack.pop() {
        match mem::replace(&mut node.children, Children::Few(Vec::new())) {
            Children::Few(v) => stack.extend(v.into_iter().map(|(_, n)| n)),
            Children::Many(m) => stack.extend(m.into_values()),
        }
        if let Some(plus) = node.plus.take() {
            stack.push(*plus);
        }
        // `node` is now shallow and drops here.
    }
}

/// Above this many literal children a node switches to a hash map.
const MANY_ABOVE: usize = 8;
/// Below this many it switches back.
const FEW_BELOW: usize = 4;

/// A node's literal children: a short vector searched linearly (most nodes have one child), or
/// a hash map keyed by the level once there are many.
///
/// The map uses the standard library's randomly seeded SipHash: the levels come from clients,
/// and a keyed hash keeps a client from crafting levels that collide.
pub(super) enum Children<K, V> {
    Few(Vec<(Box<str>, Node<K, V>)>),
    #[allow(clippy::box_collection, reason = "boxed, the map does not make every node bigger")]
    Many(Box<HashMap<Box<str>, Node<K, V>>>),
}

impl<K, V> Children<K, V> {
    pub(super) fn len(&self) -> usize {
        match self {
            Self::Few(v) => v.len(),
            Self::Many(m) => m.len(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(super) fn get(&self, level: &str) -> Option<&Node<K, V>> {
        match self {
            Self::Few(v) => v.iter().find(|(l, _)| **l == *level).map(|(_, n)| n),
            Self::Many(m) => m.get(level),
        }
    }

    fn get_mut(&mut self, level: &str) -> Option<&mut Node<K, V>> {
        match self {
            Self::Few(v) => v.iter_mut().find(|(l, _)| **l == *level).map(|(_, n)| n),
            Self::Many(m) => m.get_mut(level),
        }
    }

    fn get_or_insert(&mut self, level: &str) -> &mut Node<K, V> {
        if let Self::Few(v) = self
            && v.len() >= MANY_ABOVE
            && !v.iter().any(|(l, _)| **l == *level)
        {
            let map = mem::take(v).into_iter().collect();
            *self = Self::Many(Box::new(map));
        }
        match self {
            Self::Few(v) => {
                let at = match v.iter().position(|(l, _)| **l == *level) {
                    Some(at) => at,
                    None => {
                        if v.capacity() == 0 {
                            v.reserve_exact(1);
                        }
                        v.push((level.into(), Node::new()));
                        v.len() - 1
                    }
                };
                &mut v[at].1
            }
            Self::Many(m) => m.entry(level.into()).or_insert_with(Node::new),
        }
    }

    fn remove(&mut self, level: &str) -> Option<Node<K, V>> {
        match self {
            Self::Few(v) => {
                let at = v.iter().position(|(l, _)| **l == *level)?;
                let (_, node) = v.swap_remove(at);
                if v.is_empty() {
                    *v = Vec::new();
                }
                Some(node)
            }
            Self::Many(m) => {
                let node = m.remove(level)?;
                if m.len() < FEW_BELOW {
                    let few = mem::take(&mut **m).into_iter().collect();
                    *self = Self::Few(few);
                }
                Some(node)
            }
        }
    }
}

/// The subscriptions that end at one place in the trie: ordinary ones, and shared groups.
pub(super) struct Leaf<K, V> {
    /// The filter of the ordinary subscriptions here (they all have the same text); set while
    /// `plain` is not empty.
    pub(super) filter: Option<TopicFilter>,
    /// Ordinary subscriptions by subscriber.
    pub(super) plain: Keyed<K, V>,
    /// Shared subscriptions by group name.
    pub(super) shared: Option<Box<Groups<K, V>>>,
}

/// Shared groups by name.
pub(super) type Groups<K, V> = Keyed<Box<str>, Group<K, V>>;

/// The members of one shared group `$share/<group>/<pattern>`.
pub(super) struct Group<K, V> {
    /// The whole filter, `$share/<group>/` included.
    pub(super) filter: TopicFilter,
    pub(super) members: Keyed<K, V>,
}

impl<K, V> Leaf<K, V> {
    pub(super) const fn new() -> Self {
        Self { filter: None, plain: Keyed::new(), shared: None }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.plain.is_empty() && self.shared.is_none()
    }

    /// Every subscription here, with its filter.
    pub(super) fn for_each<'a>(&'a self, f: &mut impl FnMut(&'a K, &'a TopicFilter, &'a V)) {
        if let Some(filter) = &self.filter {
            for (key, value) in self.plain.entries() {
                f(key, filter, value);
            }
        }
        for (_, group) in self.shared.iter().flat_map(|s| s.entries()) {
            for (key, value) in group.members.entries() {
                f(key, &group.filter, value);
            }
        }
    }
}

impl<K: Clone + Eq + Hash, V> Leaf<K, V> {
    pub(super) fn get(&self, group: Option<&str>, key: &K) -> Option<&V> {
        match group {
            None => self.plain.get(key),
            Some(group) => self.shared.as_ref()?.get(group)?.members.get(key),
        }
    }

    /// Inserts or replaces the subscription of `key` to `filter`, which leads here.
    pub(super) fn insert(&mut self, filter: &TopicFilter, key: K, value: V) -> Option<V> {
        match filter.share_group() {
            None => {
                if self.filter.is_none() {
                    self.filter = Some(filter.clone());
                }
                self.plain.insert(key, value)
            }
            Some(name) => {
                let groups = self.shared.get_or_insert_with(|| Box::new(Keyed::new()));
                if let Some(group) = groups.get_mut(name) {
                    return group.members.insert(key, value);
                }
                let mut members = Keyed::new();
                members.insert(key, value);
                groups.insert(name.into(), Group { filter: filter.clone(), members });
                None
            }
        }
    }

    pub(super) fn remove(&mut self, group: Option<&str>, key: &K) -> Option<V> {
        match group {
            None => {
                let value = self.plain.remove(key)?;
                if self.plain.is_empty() {
                    self.filter = None;
                }
                Some(value)
            }
            Some(name) => {
                let groups = self.shared.as_mut()?;
                let members = &mut groups.get_mut(name)?.members;
                let value = members.remove(key)?;
                if members.is_empty() {
                    groups.remove(name);
                    if groups.is_empty() {
                        self.shared = None;
                    }
                }
                Some(value)
            }
        }
    }
}
