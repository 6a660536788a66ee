use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

fn f(s: &str) -> TopicFilter {
    TopicFilter::new(s.to_owned()).unwrap()
}

fn t(s: &str) -> TopicName {
    TopicName::new(s.to_owned()).unwrap()
}

type Tree = SubscriptionTree<&'static str, u8>;

/// Every match, ordinary and shared, as sorted `(filter, key, value)`.
fn all_matches(tree: &Tree, topic: &str) -> Vec<(String, &'static str, u8)> {
    let topic = t(topic);
    let mut out = Vec::new();
    tree.for_each_match(&topic, |k, filter, v| out.push((filter.to_string(), *k, *v)));
    tree.for_each_shared_match(&topic, |m| {
        assert!(!m.members().is_empty());
        out.extend(m.members().iter().map(|(k, v)| (m.filter().to_string(), *k, *v)));
    });
    out.sort();
    out
}

/// The filters (ordinary ones) that match `topic`, sorted.
fn matching_filters(tree: &Tree, topic: &str) -> Vec<String> {
    let mut out: Vec<String> = all_matches(tree, topic).into_iter().map(|(f, ..)| f).collect();
    out.dedup();
    out
}

fn tree_of(filters: &[&str]) -> Tree {
    let mut tree = Tree::new();
    for filter in filters {
        tree.insert(&f(filter), "c", 0);
    }
    tree
}

#[test]
fn follows_the_specification_examples() {
    // MQTT 3.1.1 section 4.7.1.2: the multi-level wildcard.
    let tree = tree_of(&["sport/tennis/player1/#", "sport/#", "#", "sport/tennis/#"]);
    assert_eq!(
        matching_filters(&tree, "sport/tennis/player1"),
        ["#", "sport/#", "sport/tennis/#", "sport/tennis/player1/#"]
    );
    assert_eq!(
        matching_filters(&tree, "sport/tennis/player1/ranking"),
        ["#", "sport/#", "sport/tennis/#", "sport/tennis/player1/#"]
    );
    assert_eq!(
        matching_filters(&tree, "sport/tennis/player1/score/wimbledon"),
        ["#", "sport/#", "sport/tennis/#", "sport/tennis/player1/#"]
    );
    // `sport/#` matches `sport` itself: `#` includes the parent level.
    assert_eq!(matching_filters(&tree, "sport"), ["#", "sport/#"]);

    // 4.7.1.3: the single-level wildcard.
    let tree = tree_of(&["sport/tennis/+", "sport/+", "+/+", "/+", "+"]);
    assert_eq!(matching_filters(&tree, "sport/tennis/player1"), ["sport/tennis/+"]);
    assert_eq!(matching_filters(&tree, "sport/tennis/player2"), ["sport/tennis/+"]);
    assert!(matching_filters(&tree, "sport/tennis/player1/ranking").is_empty());
    assert_eq!(matching_filters(&tree, "sport"), ["+"]);
    assert_eq!(matching_filters(&tree, "sport/"), ["+/+", "sport/+"]);
    assert_eq!(matching_filters(&tree, "/finance"), ["+/+", "/+"]);
}

#[test]
fn empty_levels_are_levels() {
    let tree = tree_of(&["a//b", "/a", "a/", "a/+/b", "+/a", "a/+", "/", "+", "+/+/+"]);
    assert_eq!(matching_filters(&tree, "a//b"), ["+/+/+", "a/+/b", "a//b"]);
    assert_eq!(matching_filters(&tree, "/a"), ["+/a", "/a"]);
    assert_eq!(matching_filters(&tree, "a/"), ["a/", "a/+"]);
    assert_eq!(matching_filters(&tree, "/"), ["/"]);
    assert_eq!(matching_filters(&tree, "a"), ["+"]);
    assert_eq!(matching_filters(&tree, "a/b/c"), ["+/+/+"]);
    assert_eq!(matching_filters(&tree, "//"), ["+/+/+"]);
}

#[test]
fn leading_wildcards_skip_dollar_topics() {
    // MQTT-4.7.2-1 and the examples of 4.7.2.
    let tree = tree_of(&["#", "+/monitor/Clients", "$SYS/#", "$SYS/monitor/+", "+", "+/#", "$SYS", "$share/g/#"]);
    assert_eq!(matching_filters(&tree, "$SYS/monitor/Clients"), ["$SYS/#", "$SYS/monitor/+"]);
    assert_eq!(matching_filters(&tree, "$SYS"), ["$SYS", "$SYS/#"]);
    assert!(matching_filters(&tree, "$other").is_empty());
    assert_eq!(matching_filters(&tree, "x/monitor/Clients"), ["#", "$share/g/#", "+/#", "+/monitor/Clients"]);
    // A `$` further down is an ordinary character.
    assert_eq!(matching_filters(&tree, "a/$SYS"), ["#", "$share/g/#", "+/#"]);
    // A shared subscription whose pattern starts with `$` does match.
    let tree = tree_of(&["$share/g/$SYS/+", "$share/g/+/x"]);
    assert_eq!(matching_filters(&tree, "$SYS/x"), ["$share/g/$SYS/+"]);
}

#[test]
fn reports_every_filter_of_a_client_and_groups_them() {
    let mut tree = Tree::new();
    tree.insert(&f("a/+"), "alice", 1);
    tree.insert(&f("a/#"), "alice", 2);
    tree.insert(&f("#"), "alice", 0);
    tree.insert(&f("a/b"), "bob", 1);
    tree.insert(&f("x"), "bob", 2);
    tree.insert(&f("a/b"), "carol", 0);
    tree.insert(&f("+/b"), "carol", 1);
    assert_eq!(tree.len(), 7);
    assert_eq!(
        all_matches(&tree, "a/b"),
        [
            ("#".into(), "alice", 0),
            ("+/b".into(), "carol", 1),
            ("a/#".into(), "alice", 2),
            ("a/+".into(), "alice", 1),
            ("a/b".into(), "bob", 1),
            ("a/b".into(), "carol", 0),
        ]
    );

    let mut matches = Matches::new();
    for _ in 0..2 {
        matches.collect(&tree, &t("a/b"));
        let mut grouped: Vec<(&str, Vec<(String, u8)>)> = matches
            .clients()
            .map(|c| {
                let mut subs: Vec<_> = c.subscriptions().iter().map(|(f, v)| (f.to_string(), *v)).collect();
                subs.sort();
                (*c.key(), subs)
            })
            .collect();
        grouped.sort();
        assert_eq!(
            grouped,
            [
                ("alice", vec![("#".into(), 0), ("a/#".into(), 2), ("a/+".into(), 1)]),
                ("bob", vec![("a/b".into(), 1)]),
                ("carol", vec![("+/b".into(), 1), ("a/b".into(), 0)]),
            ]
        );
        assert_eq!(matches.shared().len(), 0);
    }
    matches.collect(&tree, &t("$nothing/here"));
    assert!(matches.is_empty());
}

#[test]
fn groups_many_clients_through_the_index() {
    let keys: Vec<&'static str> = (0..100).map(|i| &*format!("client{i}").leak()).collect();
    let mut tree = Tree::new();
    for key in &keys {
        tree.insert(&f("a/+"), key, 1);
        tree.insert(&f("a/b"), key, 2);
    }
    tree.insert(&f("a/#"), keys[7], 0);
    let mut matches = Matches::new();
    matches.collect(&tree, &t("a/b"));
    assert_eq!(matches.clients().len(), 100);
    for client in matches.clients() {
        let want = if *client.key() == keys[7] { 3 } else { 2 };
        assert_eq!(client.subscriptions().len(), want, "{}", client.key());
    }
    matches.collect(&tree, &t("a/c"));
    assert_eq!(matches.clients().len(), 100);
    assert!(matches.clients().all(|c| c.subscriptions().len() == 1 + usize::from(*c.key() == keys[7])));
}

#[test]
fn keeps_shared_groups_apart_from_ordinary_subscriptions() {
    let mut tree = Tree::new();
    tree.insert(&f("a/+"), "alice", 1);
    tree.insert(&f("$share/g1/a/+"), "alice", 2);
    tree.insert(&f("$share/g1/a/+"), "bob", 0);
    tree.insert(&f("$share/g2/a/+"), "carol", 1);
    tree.insert(&f("$share/g1/a/b"), "dave", 1);
    tree.insert(&f("$share/g1/#"), "erin", 1);
    assert_eq!(tree.len(), 6);

    let mut ordinary = Vec::new();
    tree.for_each_match(&t("a/b"), |k, filter, v| ordinary.push((*k, filter.to_string(), *v)));
    assert_eq!(ordinary, [("alice", "a/+".to_string(), 1)]);

    let mut groups = Vec::new();
    tree.for_each_shared_match(&t("a/b"), |m| {
        let mut members: Vec<_> = m.members().to_vec();
        members.sort();
        groups.push((m.group().to_string(), m.filter().to_string(), members));
    });
    groups.sort();
    assert_eq!(
        groups,
        [
            ("g1".into(), "$share/g1/#".into(), vec![("erin", 1)]),
            ("g1".into(), "$share/g1/a/+".into(), vec![("alice", 2), ("bob", 0)]),
            ("g1".into(), "$share/g1/a/b".into(), vec![("dave", 1)]),
            ("g2".into(), "$share/g2/a/+".into(), vec![("carol", 1)]),
        ]
    );

    let mut matches = Matches::new();
    matches.collect(&tree, &t("a/b"));
    assert_eq!(matches.clients().len(), 1);
    assert_eq!(matches.shared().len(), 4);
    assert_eq!(matches.shared().map(|s| s.members().len()).sum::<usize>(), 5);

    // Removing the ordinary subscription leaves the shared one of the same key and pattern.
    assert_eq!(tree.remove(&f("a/+"), &"alice"), Some(1));
    assert_eq!(tree.get(&f("$share/g1/a/+"), &"alice"), Some(&2));
    assert_eq!(tree.remove(&f("a/+"), &"alice"), None);
    assert_eq!(tree.remove(&f("$share/g2/a/+"), &"alice"), None);
    assert_eq!(tree.remove(&f("$share/g1/a/+"), &"alice"), Some(2));
    assert_eq!(tree.remove(&f("$share/g1/a/+"), &"bob"), Some(0));
    assert_eq!(tree.len(), 3);
    let mut left = Vec::new();
    tree.for_each_shared_match(&t("a/b"), |m| left.push(m.filter().to_string()));
    left.sort();
    assert_eq!(left, ["$share/g1/#", "$share/g1/a/b", "$share/g2/a/+"]);
}

#[test]
fn replacing_returns_the_old_value() {
    let mut tree = Tree::new();
    assert_eq!(tree.insert(&f("a/b"), "c", 1), None);
    assert_eq!(tree.insert(&f("a/b"), "c", 2), Some(1));
    assert_eq!(tree.insert(&f("$share/g/a/b"), "c", 3), None);
    assert_eq!(tree.insert(&f("$share/g/a/b"), "c", 4), Some(3));
    assert_eq!(tree.len(), 2);
    assert_eq!(tree.get(&f("a/b"), &"c"), Some(&2));
    assert_eq!(tree.get(&f("$share/g/a/b"), &"c"), Some(&4));
    assert_eq!(tree.get(&f("$share/h/a/b"), &"c"), None);
    assert_eq!(tree.get(&f("a/b"), &"d"), None);
    assert_eq!(all_matches(&tree, "a/b"), [("$share/g/a/b".into(), "c", 4), ("a/b".into(), "c", 2)]);
}

#[test]
fn removal_prunes_empty_nodes() {
    let mut tree = Tree::new();
    assert_eq!(tree.node_count(), 1);
    tree.insert(&f("a/b/c/d"), "x", 0);
    tree.insert(&f("a/b/+/#"), "x", 0);
    tree.insert(&f("a/b"), "y", 0);
    // root, a, b, c, d, +
    assert_eq!(tree.node_count(), 6);
    assert_eq!(tree.remove(&f("a/b/c/d"), &"y"), None);
    assert_eq!(tree.remove(&f("a/b/c/d"), &"x"), Some(0));
    assert_eq!(tree.node_count(), 4);
    assert_eq!(tree.remove(&f("a/b/+/#"), &"x"), Some(0));
    assert_eq!(tree.node_count(), 3);
    assert_eq!(matching_filters(&tree, "a/b"), ["a/b"]);
    assert_eq!(tree.remove(&f("a/b"), &"y"), Some(0));
    assert_eq!(tree.node_count(), 1);
    assert!(tree.is_empty());
    // Removing what is not there changes nothing.
    assert_eq!(tree.remove(&f("a/b"), &"y"), None);
    assert_eq!(tree.remove(&f("#"), &"y"), None);

    // `#` at the root, and a node kept because a `#` hangs off it.
    tree.insert(&f("#"), "x", 0);
    tree.insert(&f("p/#"), "x", 0);
    tree.insert(&f("p/q"), "x", 0);
    assert_eq!(tree.node_count(), 3);
    tree.remove(&f("p/q"), &"x");
    assert_eq!(tree.node_count(), 2);
    tree.remove(&f("#"), &"x");
    tree.remove(&f("p/#"), &"x");
    assert_eq!(tree.node_count(), 1);
    assert!(tree.is_empty());
}

#[test]
fn many_children_switch_to_a_map_and_back() {
    let mut tree = SubscriptionTree::<u32, u32>::new();
    let filters: Vec<TopicFilter> = (0..50).map(|i| f(&format!("s/{i}/t"))).collect();
    for (i, filter) in (0..).zip(&filters) {
        tree.insert(filter, i, i);
    }
    for (i, filter) in (0..).zip(&filters) {
        let mut seen = Vec::new();
        tree.for_each_match(&t(filter.as_str()), |k, _, v| seen.push((*k, *v)));
        assert_eq!(seen, [(i, i)]);
    }
    for (i, filter) in (0..).zip(&filters).skip(2) {
        assert_eq!(tree.remove(filter, &i), Some(i));
    }
    assert_eq!(tree.len(), 2);
    assert_eq!(tree.node_count(), 1 + 1 + 2 * 2);
    let mut seen = Vec::new();
    tree.for_each_match(&t("s/1/t"), |k, _, _| seen.push(*k));
    assert_eq!(seen, [1]);
}

#[test]
fn remove_all_drops_one_clients_subscriptions() {
    let mut tree = Tree::new();
    let mine = [f("a/b"), f("a/#"), f("$share/g/a/b"), f("+")];
    for filter in &mine {
        tree.insert(filter, "me", 1);
        tree.insert(filter, "you", 2);
    }
    assert_eq!(tree.remove_all(&"me", mine.iter().chain([&f("not/mine")])), 4);
    assert_eq!(tree.len(), 4);
    let mut keys = BTreeSet::new();
    tree.for_each(|k, _, _| {
        keys.insert(*k);
    });
    assert_eq!(keys, BTreeSet::from(["you"]));
    assert_eq!(tree.remove_all(&"you", &mine), 4);
    assert!(tree.is_empty());
    assert_eq!(tree.node_count(), 1);
}

#[test]
fn for_each_lists_everything() {
    let mut tree = Tree::new();
    let filters = ["a", "a/+", "#", "$share/g/a", "$share/h/a", "/"];
    for (v, filter) in (0..).zip(filters) {
        tree.insert(&f(filter), "k", v);
    }
    let mut all = Vec::new();
    tree.for_each(|k, filter, v| all.push((filter.to_string(), *k, *v)));
    all.sort();
    let mut want: Vec<_> = (0..).zip(filters).map(|(v, filter)| (filter.to_string(), "k", v)).collect();
    want.sort();
    assert_eq!(all, want);
    tree.clear();
    assert!(tree.is_empty());
    assert_eq!(tree.node_count(), 1);
    assert_eq!(format!("{tree:?}"), "SubscriptionTree { len: 0, .. }");
}

#[test]
fn deep_filters_and_topics_do_not_exhaust_the_stack() {
    // The deepest a filter can be: 65,535 bytes of `/` make 65,536 empty levels.
    let deepest = "/".repeat(crate::topic::MAX_TOPIC_LEN);
    let plus = vec!["+"; 32_768].join("/");
    let literal = vec!["a"; 32_768].join("/");
    let mut tree = Tree::new();
    tree.insert(&f(&deepest), "x", 0);
    tree.insert(&f(&plus), "x", 1);
    tree.insert(&f(&literal), "x", 2);
    tree.insert(&f(&format!("{}/#", &literal[..literal.len() - 2])), "x", 3);
    assert_eq!(all_matches(&tree, &deepest), [(deepest.clone(), "x", 0)]);
    assert_eq!(all_matches(&tree, &literal).len(), 3);
    let mut matches = Matches::new();
    matches.collect(&tree, &t(&literal));
    assert_eq!(matches.clients().next().map(|c| c.subscriptions().len()), Some(3));
    assert_eq!(tree.remove(&f(&plus), &"x"), Some(1));
    assert_eq!(tree.remove(&f(&deepest), &"x"), Some(0));
    drop(tree);

    // Many `+` levels make the walk keep many states: past the inline stack.
    let mut tree = Tree::new();
    tree.insert(&f(&vec!["+"; 100].join("/")), "p", 0);
    tree.insert(&f(&vec!["b"; 100].join("/")), "b", 0);
    assert_eq!(all_matches(&tree, &vec!["b"; 100].join("/")).len(), 2);
}

/// The filters of a small alphabet, for the property below.
fn filter_text() -> impl Strategy<Value = String> {
    let level = prop::sample::select(vec!["a", "b", "", "+"]);
    (prop::collection::vec(level, 1..5), any::<bool>(), any::<bool>()).prop_map(|(levels, hash, shared)| {
        let mut text = levels.join("/");
        if text.is_empty() {
            // A single empty level is no filter at all.
            text.push('/');
        }
        if hash {
            text.push_str("/#");
        }
        if shared { format!("$share/g/{text}") } else { text }
    })
}

proptest! {
    /// After any inserts and removals the trie holds exactly one node per distinct filter
    /// prefix of the subscriptions it still holds: nothing leaks.
    #[test]
    fn pruning_leaves_exactly_the_needed_nodes(
        ops in prop::collection::vec((filter_text(), 0u8..3, any::<bool>()), 1..60),
    ) {
        let mut tree = SubscriptionTree::<u8, ()>::new();
        let mut held = BTreeSet::new();
        for (text, key, insert) in ops {
            let filter = f(&text);
            if insert {
                prop_assert_eq!(tree.insert(&filter, key, ()).is_none(), held.insert((text, key)));
            } else {
                prop_assert_eq!(tree.remove(&filter, &key).is_some(), held.remove(&(text, key)));
            }
            let mut prefixes = BTreeSet::new();
            for (text, _) in &held {
                let filter = f(text);
                let (steps, _) = path(&filter);
                let steps: Vec<_> = steps.map(|s| format!("{s:?}")).collect();
                for depth in 1..=steps.len() {
                    prefixes.insert(steps[..depth].to_vec());
                }
            }
            prop_assert_eq!(tree.node_count(), 1 + prefixes.len());
            prop_assert_eq!(tree.len(), held.len());
        }
    }
}
