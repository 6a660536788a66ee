//! The subscription trie against the naive matcher, [`TopicFilter::matches`].
//!
//! Random subscriptions (filters over a small alphabet, so that they overlap a lot; `+`, `#`,
//! empty levels, `$` levels and shared groups; a few clients, so that one client holds several
//! matching filters) and random topics: every way of asking the trie for matches must give
//! exactly the subscriptions whose filter the naive matcher accepts, before and after removals.

use std::collections::{BTreeMap, BTreeSet};

use moat_mqtt_core::topic::{Matches, SubscriptionTree, TopicFilter, TopicName};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};

/// The levels topics and filters are made of.
const LEVELS: [&str; 4] = ["a", "b", "", "$x"];

type Tree = SubscriptionTree<u8, u32>;
type Model = BTreeMap<(TopicFilter, u8), u32>;
/// A match as `(filter, key, value)`.
type Hit = (String, u8, u32);

fn topic() -> impl Strategy<Value = TopicName> {
    vec(select(&LEVELS[..]), 1..=5)
        .prop_filter_map("a lone empty level is no topic", |levels| TopicName::new(levels.join("/")).ok())
}

fn filter() -> impl Strategy<Value = TopicFilter> {
    let level = prop_oneof![4 => select(&LEVELS[..]), 2 => Just("+")];
    let share = prop_oneof![6 => Just(""), 1 => Just("$share/g1/"), 1 => Just("$share/g2/")];
    (vec(level, 1..=5), any::<bool>(), share).prop_filter_map(
        "a lone empty level is no filter",
        |(mut levels, hash, share)| {
            if hash {
                // `#` replaces the last level, so depth stays within 1..=5 and `#` alone occurs.
                levels.pop();
                levels.push("#");
            }
            TopicFilter::new(format!("{share}{}", levels.join("/"))).ok()
        },
    )
}

/// What the naive matcher says: every subscription whose filter matches, sorted.
fn expected(model: &Model, topic: &TopicName) -> Vec<Hit> {
    model.iter().filter(|((f, _), _)| f.matches(topic)).map(|((f, k), v)| (f.to_string(), *k, *v)).collect()
}

fn check(
    tree: &Tree,
    model: &Model,
    topics: &[TopicName],
    matches: &mut Matches<u8, u32>,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(tree.len(), model.len());
    prop_assert_eq!(tree.is_empty(), model.is_empty());
    for topic in topics {
        let want = expected(model, topic);

        // The two callbacks, which keep ordinary and shared subscriptions apart.
        let mut got = Vec::new();
        tree.for_each_match(topic, |k, f, v| {
            assert!(f.share_group().is_none(), "shared {f} reported as ordinary");
            got.push((f.to_string(), *k, *v));
        });
        let mut groups = BTreeSet::new();
        tree.for_each_shared_match(topic, |m| {
            assert_eq!(m.filter().share_group(), Some(m.group()));
            assert!(!m.members().is_empty());
            assert!(groups.insert(m.filter().clone()), "group {} reported twice", m.filter());
            got.extend(m.members().iter().map(|(k, v)| (m.filter().to_string(), *k, *v)));
        });
        got.sort();
        prop_assert_eq!(&got, &want, "topic {}", topic);

        // The grouping buffer: each client once, with all its filters; each group once.
        matches.collect(tree, topic);
        let mut got = Vec::new();
        let mut keys = BTreeSet::new();
        for client in matches.clients() {
            prop_assert!(keys.insert(*client.key()), "client {} reported twice", client.key());
            prop_assert!(!client.subscriptions().is_empty());
            got.extend(client.subscriptions().iter().map(|(f, v)| (f.to_string(), *client.key(), *v)));
        }
        let mut shared = BTreeSet::new();
        for group in matches.shared() {
            prop_assert!(shared.insert(group.filter().clone()));
            got.extend(group.members().iter().map(|(k, v)| (group.filter().to_string(), *k, *v)));
        }
        got.sort();
        prop_assert_eq!(&got, &want, "topic {} through Matches", topic);
        prop_assert_eq!(shared, groups);
    }
    // And the full listing.
    let mut all = Vec::new();
    tree.for_each(|k, f, v| all.push((f.to_string(), *k, *v)));
    all.sort();
    let want: Vec<Hit> = model.iter().map(|((f, k), v)| (f.to_string(), *k, *v)).collect();
    prop_assert_eq!(all, want);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn trie_agrees_with_the_naive_matcher(
        subscriptions in vec((filter(), 0u8..4), 0..40),
        topics in vec(topic(), 1..16),
        removals in vec((any::<Index>(), any::<bool>()), 0..30),
    ) {
        let mut tree = Tree::new();
        let mut model = Model::new();
        let mut matches = Matches::new();
        for (value, (filter, key)) in (0..).zip(subscriptions) {
            let old = tree.insert(&filter, key, value);
            prop_assert_eq!(old, model.insert((filter, key), value));
        }
        check(&tree, &model, &topics, &mut matches)?;

        // Remove some that are there and some that are not (another key, same filter).
        for (index, present) in removals {
            if model.is_empty() {
                break;
            }
            let (filter, key) = model.keys().nth(index.index(model.len())).cloned().unwrap_or_else(|| unreachable!());
            let key = if present { key } else { key.wrapping_add(1) % 4 };
            prop_assert_eq!(tree.remove(&filter, &key), model.remove(&(filter.clone(), key)));
            prop_assert_eq!(tree.get(&filter, &key), model.get(&(filter.clone(), key)));
        }
        check(&tree, &model, &topics, &mut matches)?;

        // Drop one client's subscriptions the way a broker does when its session ends.
        let of_0: Vec<TopicFilter> = model.keys().filter(|(_, k)| *k == 0).map(|(f, _)| f.clone()).collect();
        prop_assert_eq!(tree.remove_all(&0, &of_0), of_0.len());
        model.retain(|(_, k), _| *k != 0);
        check(&tree, &model, &topics, &mut matches)?;

        // Everything else, which must leave the trie empty.
        let rest: Vec<(TopicFilter, u8)> = model.keys().cloned().collect();
        for (filter, key) in rest {
            prop_assert!(tree.remove(&filter, &key).is_some());
            model.remove(&(filter, key));
        }
        check(&tree, &model, &topics, &mut matches)?;
    }
}

#[test]
fn dollar_topics_and_the_hash_parent_rule() {
    let mut tree = Tree::new();
    for (value, text) in (0..).zip(["#", "+/a", "$x/#", "$x/+", "a/#", "$share/g1/#", "$share/g1/$x"]) {
        tree.insert(&TopicFilter::new(text).unwrap(), 1, value);
    }
    let hits = |topic: &str| {
        let mut got = Vec::new();
        let topic = TopicName::new(topic).unwrap();
        tree.for_each_match(&topic, |_, f, _| got.push(f.to_string()));
        tree.for_each_shared_match(&topic, |m| got.push(m.filter().to_string()));
        got.sort();
        got
    };
    assert_eq!(hits("$x"), ["$share/g1/$x", "$x/#"]);
    assert_eq!(hits("$x/a"), ["$x/#", "$x/+"]);
    assert_eq!(hits("a"), ["#", "$share/g1/#", "a/#"]);
    assert_eq!(hits("b/a"), ["#", "$share/g1/#", "+/a"]);
}
