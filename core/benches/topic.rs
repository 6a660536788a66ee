//! Subscription trie benchmarks: matching cost against trie size and against topic depth.
//!
//! - `match/<size>/...`: IoT-like tries of 10,000 and 1,000,000 subscriptions, each of a distinct
//!   client: mostly `site/{s}/device/{d}/temperature`, some with `+` or `#` in them. A depth-5
//!   topic is matched with `for_each_match` (borrowing, no allocation) and with
//!   `Matches::collect` (grouped per client into a reused buffer). `probe` is a topic with one
//!   subscriber in both tries, so the two sizes compare the same work; `fanout` is a topic of a
//!   busy site that many `+` and `#` subscriptions match (the count is printed).
//! - `depth/<d>`: one 10,000-subscription trie of random filters 1-8 levels deep over a small
//!   alphabet (with `+` and `#`), matched with topics 2, 4 and 8 levels deep along a path that
//!   exists in the trie.
//! - `churn/10k`: one subscribe and one unsubscribe on the 10,000-subscription trie.
//!
//! Run with `cargo bench -p moat-mqtt-core --bench topic` (about 40 seconds, building the tries
//! included; plots are off, since rendering them took longer than measuring). Building times and
//! match counts are printed to stderr.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytestring::ByteString;
use criterion::{Criterion, criterion_group, criterion_main};
use moat_mqtt_core::codec::{QoS, SubscriptionOptions};
use moat_mqtt_core::topic::{Matches, SubscriptionTree, TopicFilter, TopicName};

type Tree = SubscriptionTree<ByteString, SubscriptionOptions>;

fn filter(s: &str) -> TopicFilter {
    TopicFilter::new(s.to_owned()).expect("valid filter")
}

fn topic(s: &str) -> TopicName {
    TopicName::new(s.to_owned()).expect("valid topic")
}

fn client(i: usize) -> ByteString {
    ByteString::from(format!("client-{i}"))
}

/// The IoT-like trie: `n` subscriptions over `sites` sites, each of a distinct client, plus the
/// single subscriber of the `probe` topic.
fn iot_tree(n: usize, sites: usize) -> Tree {
    let started = Instant::now();
    let mut tree = Tree::new();
    let options = SubscriptionOptions::qos(QoS::AtLeastOnce);
    for i in 0..n {
        let (site, device) = (i % sites, i / sites);
        // The kind of filter, mixed so that it does not follow the site or the device.
        let kind = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
        let text = match kind % 100 {
            0..90 => format!("site/{site}/device/{device}/temperature"),
            90..95 => format!("site/{site}/device/+/temperature"),
            95..98 => format!("site/{site}/device/{device}/#"),
            98 => format!("site/+/device/{device}/temperature"),
            _ => format!("site/{site}/#"),
        };
        tree.insert(&filter(&text), client(i), options);
    }
    tree.insert(&filter("probe/x/y/z/w"), client(n), options);
    eprintln!("built a trie of {} subscriptions in {:.2?}", tree.len(), started.elapsed());
    tree
}

fn count_matches(tree: &Tree, topic: &TopicName) -> usize {
    let mut n = 0;
    tree.for_each_match(topic, |_, _, _| n += 1);
    n
}

fn bench_sizes(c: &mut Criterion) {
    for (name, n, sites) in [("10k", 10_000, 100), ("1M", 1_000_000, 1_000)] {
        let tree = iot_tree(n, sites);
        let mut group = c.benchmark_group(format!("match/{name}"));
        let fanout = topic("site/7/device/5/temperature");
        let probe = topic("probe/x/y/z/w");
        eprintln!(
            "{name}: fanout topic matches {}, probe {}",
            count_matches(&tree, &fanout),
            count_matches(&tree, &probe)
        );
        for (case, t) in [("probe", &probe), ("fanout", &fanout)] {
            group.bench_function(format!("{case}/for_each_match"), |b| {
                b.iter(|| count_matches(black_box(&tree), black_box(t)));
            });
            let mut matches = Matches::new();
            group.bench_function(format!("{case}/collect"), |b| {
                b.iter(|| {
                    matches.collect(black_box(&tree), black_box(t));
                    matches.clients().len()
                });
            });
        }
        group.finish();
        if n == 10_000 {
            let mut group = c.benchmark_group("churn");
            let (f, key, options) =
                (filter("site/7/device/new/temperature"), client(n + 1), SubscriptionOptions::default());
            let mut tree = tree;
            group.bench_function("10k/insert+remove", |b| {
                b.iter(|| {
                    tree.insert(black_box(&f), key.clone(), options);
                    tree.remove(black_box(&f), &key)
                });
            });
            group.finish();
        } else {
            let started = Instant::now();
            drop(tree);
            eprintln!("dropped it in {:.2?}", started.elapsed());
        }
    }
}

/// A small deterministic generator (xorshift), so runs compare.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn bench_depth(c: &mut Criterion) {
    const SPINE: [&str; 8] = ["v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8"];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut tree = Tree::new();
    let options = SubscriptionOptions::default();
    // Filters along the spine, so that every topic below walks its full depth.
    for depth in 1..=SPINE.len() {
        tree.insert(&filter(&SPINE[..depth].join("/")), client(usize::MAX - depth), options);
    }
    let mut i = 0;
    while tree.len() < 10_000 {
        let depth = 1 + rng.below(8) as usize;
        let mut levels: Vec<String> = (0..depth)
            .map(|_| match rng.below(10) {
                0 => "+".to_owned(),
                v => format!("v{v}"),
            })
            .collect();
        if rng.below(20) == 0 {
            levels.pop();
            levels.push("#".to_owned());
        }
        tree.insert(&filter(&levels.join("/")), client(i), options);
        i += 1;
    }
    let mut group = c.benchmark_group("depth");
    for depth in [2, 4, 8] {
        let t = topic(&SPINE[..depth].join("/"));
        eprintln!("depth {depth}: topic {t} matches {}", count_matches(&tree, &t));
        group.bench_function(format!("{depth}/for_each_match"), |b| {
            b.iter(|| count_matches(black_box(&tree), black_box(&t)));
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    // Without plots: rendering them took longer than measuring (about a minute).
    config = Criterion::default()
        .without_plots()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench_sizes, bench_depth
}
criterion_main!(benches);
