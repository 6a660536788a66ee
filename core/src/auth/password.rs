//! Password hashes as password files store them: reading, verifying and making them.
//!
//! Read (each line of a password file is `user:hash`):
//! - `$6$[rounds=N$]salt$hash`: SHA-512 crypt (glibc, passlib's `sha512_crypt`, the original
//!   MoaT-MQTT), 5000 rounds unless `rounds=` says otherwise;
//! - `$6$<base64 salt>$<base64 hash>`: mosquitto's `-H sha512`, one SHA-512 over password and
//!   salt, standard base64 with padding; told apart from SHA-512 crypt by its 88-character hash;
//! - `$7$<iterations>$<base64 salt>$<base64 hash>`: mosquitto's PBKDF2-HMAC-SHA512 (2.0: 101
//!   iterations and a 12-byte salt; 2.1: 1000 iterations and a 64-byte salt);
//! - `$argon2id$v=19$m=..,t=..,p=..$salt$hash`: argon2id as a PHC string, which is what
//!   mosquitto 2.1 writes for its hash type 8; `$8$v=19$m=..` is read as the same.
//!
//! Every comparison of a computed hash with a stored one takes constant time.

use std::fmt;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64ct::{Base64, Encoding};
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

/// How [`hash_password`] hashes a new password (`moat mqtt passwd -H`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashScheme {
    /// argon2id as a PHC string, with mosquitto 2.1's parameters (t=1, m=47104 KiB, p=1):
    /// the strongest, read by mosquitto 2.1 and later.
    #[default]
    Argon2id,
    /// `$7$`: PBKDF2-HMAC-SHA512 with mosquitto 2.0's parameters (101 iterations, 12-byte salt),
    /// so that mosquitto 2.0 reads the file too.
    Sha512Pbkdf2,
    /// `$6$rounds=5000$`: SHA-512 crypt, as the original MoaT-MQTT (passlib) and glibc write it.
    Sha512,
}

impl HashScheme {
    /// The name `-H` takes: `argon2id`, `sha512-pbkdf2` or `sha512`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Argon2id => "argon2id",
            Self::Sha512Pbkdf2 => "sha512-pbkdf2",
            Self::Sha512 => "sha512",
        }
    }

    /// The scheme called `name` (see [`name`](Self::name)).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Argon2id, Self::Sha512Pbkdf2, Self::Sha512].into_iter().find(|s| s.name() == name)
    }
}

/// mosquitto 2.0's PBKDF2 iteration count (2.1 uses 1000).
pub const MOSQUITTO_PBKDF2_ITERATIONS: u32 = 101;
/// mosquitto's argon2id memory cost in KiB (2.1).
pub const ARGON2_M_COST: u32 = 47_104;
/// mosquitto's argon2id time cost (2.1).
pub const ARGON2_T_COST: u32 = 1;
/// The most PBKDF2 iterations or SHA-crypt rounds a stored hash may ask for: a typo of a few
/// zeros should not turn every login into a minute of work.
const MAX_ITERATIONS: u32 = 10_000_000;

/// Why a stored hash cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// The value does not start with `$`: most likely a plaintext password.
    #[error("not a password hash (a plaintext password?)")]
    Plaintext,
    /// A `$id$` this broker does not know.
    #[error(
        "unknown hash format `${0}$`; known: $6$ (SHA-512 crypt or mosquitto sha512), $7$ (PBKDF2-SHA512), $argon2id$ / $8$"
    )]
    UnknownFormat(String),
    /// A known format whose fields are malformed.
    #[error("malformed {scheme} hash: {problem}")]
    Malformed {
        /// Which format it claimed to be.
        scheme: &'static str,
        /// What is wrong.
        problem: String,
    },
}

/// A password hash read from a password file, ready to verify passwords against.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredHash {
    kind: Kind,
}

#[derive(Clone, PartialEq, Eq)]
enum Kind {
    /// SHA-512 crypt, kept as text: the crate verifies its own format.
    ShaCrypt(String),
    /// mosquitto's salted SHA-512.
    MosquittoSha512 { salt: Vec<u8>, hash: Vec<u8> },
    /// mosquitto's PBKDF2-HMAC-SHA512.
    Pbkdf2 { iterations: u32, salt: Vec<u8>, hash: Vec<u8> },
    /// argon2id as a PHC string.
    Argon2(String),
}

impl fmt::Debug for StoredHash {
    /// Names the scheme only: hashes stay out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoredHash({})", self.scheme())
    }
}

impl StoredHash {
    /// Reads a hash as a password file stores it (the part after `user:`).
    ///
    /// # Errors
    /// [`HashError`] when it is plaintext, of an unknown format, or malformed.
    pub fn parse(text: &str) -> Result<Self, HashError> {
        let text = text.trim();
        let Some(rest) = text.strip_prefix('$') else { return Err(HashError::Plaintext) };
        let (id, body) = rest.split_once('$').unwrap_or((rest, ""));
        let kind = match id {
            "6" => parse_six(text, body)?,
            "7" => parse_pbkdf2(body)?,
            "argon2id" => parse_argon2(text.to_owned())?,
            "8" => parse_argon2(format!("$argon2id${body}"))?,
            other => return Err(HashError::UnknownFormat(other.chars().take(20).collect())),
        };
        Ok(Self { kind })
    }

    /// The scheme's name, for messages.
    #[must_use]
    pub fn scheme(&self) -> &'static str {
        match self.kind {
            Kind::ShaCrypt(_) => "SHA-512 crypt",
            Kind::MosquittoSha512 { .. } => "mosquitto sha512",
            Kind::Pbkdf2 { .. } => "PBKDF2-SHA512",
            Kind::Argon2(_) => "argon2id",
        }
    }

    /// Whether `password` matches. Takes the hash's full cost whatever the answer, and compares
    /// in constant time.
    #[must_use]
    pub fn verify(&self, password: &[u8]) -> bool {
        match &self.kind {
            Kind::ShaCrypt(text) => {
                sha_crypt::PasswordVerifier::<str>::verify_password(&sha_crypt::ShaCrypt::SHA512, password, text)
                    .is_ok()
            }
            Kind::MosquittoSha512 { salt, hash } => {
                let mut digest = Sha512::new();
                digest.update(password);
                digest.update(salt);
                bool::from(digest.finalize().as_slice().ct_eq(hash))
            }
            Kind::Pbkdf2 { iterations, salt, hash } => {
                let mut out = vec![0u8; hash.len()];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, *iterations, &mut out);
                bool::from(out.ct_eq(hash))
            }
            Kind::Argon2(text) => argon2::Argon2::default().verify_password(password, text.as_str()).is_ok(),
        }
    }
}

fn malformed(scheme: &'static str, problem: impl Into<String>) -> HashError {
    HashError::Malformed { scheme, problem: problem.into() }
}

/// `$6$`: SHA-512 crypt, or mosquitto's salted SHA-512 (base64 with padding, 64-byte hash).
fn parse_six(text: &str, body: &str) -> Result<Kind, HashError> {
    let fields: Vec<&str> = body.split('$').collect();
    if let [salt, hash] = fields.as_slice()
        && hash.len() == 88
        && hash.ends_with("==")
    {
        let scheme = "mosquitto sha512";
        let salt = Base64::decode_vec(salt).map_err(|e| malformed(scheme, format!("salt: {e}")))?;
        let hash = Base64::decode_vec(hash).map_err(|e| malformed(scheme, format!("hash: {e}")))?;
        if hash.len() != 64 {
            return Err(malformed(scheme, "the hash is not 64 bytes"));
        }
        return Ok(Kind::MosquittoSha512 { salt, hash });
    }
    let scheme = "SHA-512 crypt";
    let (salt, hash) = match fields.as_slice() {
        [rounds, salt, hash] => {
            let n = rounds
                .strip_prefix("rounds=")
                .and_then(|n| n.parse::<u32>().ok())
                .ok_or_else(|| malformed(scheme, format!("expected rounds=N, found {rounds:?}")))?;
            if !(1000..=MAX_ITERATIONS).contains(&n) {
                return Err(malformed(scheme, format!("rounds={n} is outside 1000..={MAX_ITERATIONS}")));
            }
            (salt, hash)
        }
        [salt, hash] => (salt, hash),
        _ => return Err(malformed(scheme, "expected $6$[rounds=N$]salt$hash")),
    };
    if salt.len() > 16 || salt.contains([':', '\n']) {
        return Err(malformed(scheme, "the salt must be at most 16 characters"));
    }
    if hash.len() != 86 || !hash.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/') {
        return Err(malformed(scheme, "the hash must be 86 characters of ./0-9A-Za-z"));
    }
    Ok(Kind::ShaCrypt(text.to_owned()))
}

/// `$7$iterations$salt$hash`: mosquitto's PBKDF2-HMAC-SHA512.
fn parse_pbkdf2(body: &str) -> Result<Kind, HashError> {
    let scheme = "PBKDF2-SHA512";
    let [iterations, salt, hash] = body.split('$').collect::<Vec<_>>()[..] else {
        return Err(malformed(scheme, "expected $7$iterations$salt$hash"));
    };
    let iterations: u32 =
        iterations.parse().map_err(|_| malformed(scheme, format!("iterations {iterations:?} is not a number")))?;
    if !(1..=MAX_ITERATIONS).contains(&iterations) {
        return Err(malformed(scheme, format!("{iterations} iterations is outside 1..={MAX_ITERATIONS}")));
    }
    let salt = Base64::decode_vec(salt).map_err(|e| malformed(scheme, format!("salt: {e}")))?;
    let hash = Base64::decode_vec(hash).map_err(|e| malformed(scheme, format!("hash: {e}")))?;
    if salt.is_empty() {
        return Err(malformed(scheme, "empty salt"));
    }
    if hash.len() != 64 {
        return Err(malformed(scheme, format!("the hash is {} bytes, not 64", hash.len())));
    }
    Ok(Kind::Pbkdf2 { iterations, salt, hash })
}

/// argon2id as a PHC string; the parameters are checked now, not at the first login.
fn parse_argon2(text: String) -> Result<Kind, HashError> {
    let scheme = "argon2id";
    let phc = argon2::password_hash::phc::PasswordHash::new(&text).map_err(|e| malformed(scheme, e.to_string()))?;
    argon2::Params::try_from(&phc).map_err(|e| malformed(scheme, e.to_string()))?;
    if phc.hash.is_none() || phc.salt.is_none() {
        return Err(malformed(scheme, "no salt or no hash"));
    }
    Ok(Kind::Argon2(text))
}

/// Why [`hash_password`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot hash the password: {0}")]
pub struct HashingError(String);

/// Hashes `password` with `scheme` and a fresh random salt, as a password file stores it.
///
/// # Errors
/// [`HashingError`] if the system's random source fails.
pub fn hash_password(scheme: HashScheme, password: &[u8]) -> Result<String, HashingError> {
    let fail = |e: &dyn fmt::Display| HashingError(e.to_string());
    match scheme {
        HashScheme::Argon2id => {
            let salt = random::<16>().map_err(|e| fail(&e))?;
            let params = argon2::Params::new(ARGON2_M_COST, ARGON2_T_COST, 1, None).map_err(|e| fail(&e))?;
            let hasher = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
            let hash = hasher.hash_password_with_salt(password, &salt).map_err(|e| fail(&e))?;
            Ok(hash.to_string())
        }
        HashScheme::Sha512Pbkdf2 => {
            let salt = random::<12>().map_err(|e| fail(&e))?;
            let mut hash = [0u8; 64];
            pbkdf2::pbkdf2_hmac::<Sha512>(password, &salt, MOSQUITTO_PBKDF2_ITERATIONS, &mut hash);
            Ok(format!(
                "$7${MOSQUITTO_PBKDF2_ITERATIONS}${}${}",
                Base64::encode_string(&salt),
                Base64::encode_string(&hash)
            ))
        }
        HashScheme::Sha512 => {
            let salt = random::<12>().map_err(|e| fail(&e))?;
            let hash =
                sha_crypt::PasswordHasher::hash_password_with_salt(&sha_crypt::ShaCrypt::SHA512, password, &salt)
                    .map_err(|e| fail(&e))?;
            Ok(hash.to_string())
        }
    }
}

fn random<const N: usize>() -> Result<[u8; N], getrandom::Error> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by mosquitto_passwd 2.0.11: `mosquitto_passwd -c -b f alice secret`.
    const MOSQUITTO_7: &str = "$7$101$ii1USBgtQHuWHktC$2+QDASCECko17qQC/7WMhSSvQqI28zX7+1LoSfDS2qJXzeFN7Ibcmn/e5eC84reaVunT9PJyocnsGNGUG4720g==";
    /// Written by mosquitto_passwd 2.0.11: `mosquitto_passwd -H sha512 -c -b f bob secret`.
    const MOSQUITTO_6: &str =
        "$6$PusM+wfY4sb5s5EA$izCpcCs2JpA59yxv2Q2Lipc6BHTOj20h9PODEl/gzKqmu7ARek+nrEAb/NDpytC9HC5Soz3aDfpqdDbQKDaL6Q==";
    /// Python's `crypt.crypt("secret", crypt.mksalt(crypt.METHOD_SHA512))` (glibc).
    const CRYPT_6: &str =
        "$6$6El0V7K5U5XPhYG/$1NEZHkWxKcK7QAhTEURftnJ.LxTlVm9okys6mAoPY7Yppe3hE9E4Cjtu3VII4rdGP8wwYV.eGjyVV8Vg2He1Z1";
    /// Python's `crypt.crypt("secret", "$6$rounds=10000$abcdefgh")` (glibc).
    const CRYPT_6_ROUNDS: &str = "$6$rounds=10000$abcdefgh$dtkgtX8ow6kub/Iulo6m6YRiWBlfmJEeDmTXbQPwlPu6qBjkZV2Ix8CeH0sE3NMp3Sq63bHshmKLBUGe7mWYy/";

    fn check(text: &str, scheme: &str) {
        let hash = StoredHash::parse(text).unwrap();
        assert_eq!(hash.scheme(), scheme);
        assert!(hash.verify(b"secret"), "{text}");
        assert!(!hash.verify(b"Secret"), "{text}");
        assert!(!hash.verify(b""), "{text}");
    }

    #[test]
    fn reads_hashes_written_by_other_tools() {
        check(MOSQUITTO_7, "PBKDF2-SHA512");
        check(MOSQUITTO_6, "mosquitto sha512");
        check(CRYPT_6, "SHA-512 crypt");
        check(CRYPT_6_ROUNDS, "SHA-512 crypt");
    }

    #[test]
    fn reads_mosquitto_2_1_pbkdf2_parameters() {
        // 2.1: 1000 iterations, 64-byte salt.
        let salt = [7u8; 64];
        let mut hash = [0u8; 64];
        pbkdf2::pbkdf2_hmac::<Sha512>(b"secret", &salt, 1000, &mut hash);
        let text = format!("$7$1000${}${}", Base64::encode_string(&salt), Base64::encode_string(&hash));
        check(&text, "PBKDF2-SHA512");
    }

    #[test]
    fn round_trips_every_scheme() {
        for scheme in [HashScheme::Argon2id, HashScheme::Sha512Pbkdf2, HashScheme::Sha512] {
            let text = hash_password(scheme, b"secret").unwrap();
            assert_eq!(HashScheme::from_name(scheme.name()), Some(scheme));
            let hash = StoredHash::parse(&text).unwrap();
            assert!(hash.verify(b"secret"), "{scheme:?}: {text}");
            assert!(!hash.verify(b"secret2"), "{scheme:?}: {text}");
        }
        let argon = hash_password(HashScheme::Argon2id, b"secret").unwrap();
        assert!(argon.starts_with("$argon2id$v=19$m=47104,t=1,p=1$"), "{argon}");
        let eight = argon.replacen("$argon2id$", "$8$", 1);
        assert!(StoredHash::parse(&eight).unwrap().verify(b"secret"));
        assert!(hash_password(HashScheme::Sha512, b"x").unwrap().starts_with("$6$rounds=5000$"));
        assert!(hash_password(HashScheme::Sha512Pbkdf2, b"x").unwrap().starts_with("$7$101$"));
    }

    #[test]
    fn refuses_plaintext_unknown_and_malformed() {
        assert_eq!(StoredHash::parse("hunter2"), Err(HashError::Plaintext));
        assert!(matches!(StoredHash::parse("$1$abc$def"), Err(HashError::UnknownFormat(id)) if id == "1"));
        assert!(matches!(StoredHash::parse("$2b$10$abc"), Err(HashError::UnknownFormat(_))));
        assert!(matches!(StoredHash::parse("$"), Err(HashError::UnknownFormat(_))));
        for bad in [
            "$6$",
            "$6$salt",
            "$6$rounds=x$salt$hash",
            "$6$rounds=10$salt$1NEZHkWxKcK7QAhTEURftnJ.LxTlVm9okys6mAoPY7Yppe3hE9E4Cjtu3VII4rdGP8wwYV.eGjyVV8Vg2He1Z1",
            "$6$salt$short",
            "$7$",
            "$7$abc$c2FsdA==$aGFzaA==",
            "$7$0$c2FsdA==$aGFzaA==",
            "$7$101$c2FsdA==$aGFzaA==",
            "$7$101$!!!$aGFzaA==",
            "$7$99999999999$c2FsdA==$aGFzaA==",
            "$argon2id$",
            "$argon2id$v=19$m=1,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
            "$8$garbage",
        ] {
            assert!(matches!(StoredHash::parse(bad), Err(HashError::Malformed { .. })), "{bad}");
        }
    }

    #[test]
    fn debug_hides_the_hash() {
        let hash = StoredHash::parse(MOSQUITTO_7).unwrap();
        assert_eq!(format!("{hash:?}"), "StoredHash(PBKDF2-SHA512)");
    }
}
