//! What one password verification costs, per stored-hash format (run it in release mode):
//! `cargo run --release -p moat-mqtt-core --example hash_cost`.
#![allow(clippy::print_stdout)]

use std::time::Instant;

use moat_mqtt_core::auth::{HashScheme, StoredHash, hash_password};

fn main() {
    let formats: Vec<(&str, String)> = vec![
        ("argon2id (m=47104 KiB, t=1, p=1)", hash_password(HashScheme::Argon2id, b"secret").expect("hash")),
        ("$7$ PBKDF2-SHA512, 101 iterations (mosquitto 2.0)", hash_password(HashScheme::Sha512Pbkdf2, b"secret").expect("hash")),
        (
            "$7$ PBKDF2-SHA512, 1000 iterations (mosquitto 2.1)",
            "$7$1000$AAAAAAAAAAAAAAAA$".to_owned() + &"A".repeat(86) + "==",
        ),
        ("$6$ SHA-512 crypt, 5000 rounds", hash_password(HashScheme::Sha512, b"secret").expect("hash")),
        (
            "$6$ mosquitto salted SHA-512",
            "$6$PusM+wfY4sb5s5EA$izCpcCs2JpA59yxv2Q2Lipc6BHTOj20h9PODEl/gzKqmu7ARek+nrEAb/NDpytC9HC5Soz3aDfpqdDbQKDaL6Q==".to_owned(),
        ),
    ];
    for (name, text) in formats {
        let hash = StoredHash::parse(&text).expect("parse");
        let runs = 20;
        let start = Instant::now();
        for _ in 0..runs {
            std::hint::black_box(hash.verify(b"secret"));
        }
        println!("{name}: {:.3} ms per verification", start.elapsed().as_secs_f64() * 1000.0 / f64::from(runs));
    }
}
