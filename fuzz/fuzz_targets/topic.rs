//! Placeholder until the subscription trie lands; replaced by the topic-engine work.
#![no_main]
use libfuzzer_sys::fuzz_target;
fuzz_target!(|data: &[u8]| {
    let _ = std::str::from_utf8(data).map(moat_mqtt_core::topic::TopicFilter::new);
});
