//! Fingerprints of write-only values that do not give the values away.
//!
//! Whoever can read DM's API (or a saved plan) must not be able to test password guesses faster than against the
//! database itself. Two schemes, recorded per entry with their parameters:
//!
//! - **keyed** (`hmac-sha256`): HMAC-SHA256 under a key that only dm-apply's runners hold (`DM_APPLY_STATE_KEY` or a
//!   key file). Without the key a fingerprint cannot be tested at all; the entry stores the key's id (an HMAC of a
//!   constant under the key, truncated) so a rotated or lost key is noticed instead of read as "changed".
//! - **memory-hard** (`argon2id`, no key): Argon2id with a random salt per entry and at least OWASP's parameters
//!   (19 MiB, 2 passes, 1 lane), so every guess costs tens of milliseconds and 19 MiB, not a nanosecond.
//!
//! The hashed message binds the value to its resource and field, so equal passwords of two sources never have
//! equal fingerprints.

use std::fmt;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::secret::Secret;

/// OWASP's minimum for Argon2id: 19 MiB of memory, 2 passes, 1 lane. Entries weaker than this are not trusted.
pub const ARGON2_MIN_M_KIB: u32 = 19 * 1024;
pub const ARGON2_MIN_T: u32 = 2;
pub const ARGON2_MIN_P: u32 = 1;
/// Parameters dm-apply writes.
pub const ARGON2_M_KIB: u32 = ARGON2_MIN_M_KIB;
pub const ARGON2_T: u32 = ARGON2_MIN_T;
pub const ARGON2_P: u32 = ARGON2_MIN_P;
/// Entries asking for more than this are refused (a planted entry must not exhaust memory or time).
const ARGON2_MAX_M_KIB: u32 = 256 * 1024;
const ARGON2_MAX_T: u32 = 16;
const ARGON2_MAX_P: u32 = 16;
/// Shortest key accepted.
pub const MIN_KEY_BYTES: usize = 16;

/// Domain separation of every hashed message.
const DOMAIN: &str = "dm-apply-state/v2";
const KEY_ID_MESSAGE: &[u8] = b"dm-apply-state key id v1";

/// A fingerprint as stored in the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scheme")]
pub enum Fingerprint {
    #[serde(rename = "hmac-sha256")]
    Hmac { key_id: String, mac: String },
    #[serde(rename = "argon2id")]
    Argon2id { m: u32, t: u32, p: u32, salt: String, hash: String },
    /// A scheme this version does not know (written by a newer dm-apply): never verifiable.
    #[serde(other)]
    Unknown,
}

/// The state key (`DM_APPLY_STATE_KEY` / `--state-key-file`). Never printed, never stored in DM or in a plan.
#[derive(Clone, PartialEq, Eq)]
pub struct StateKey {
    bytes: Vec<u8>,
    id: String,
}

impl fmt::Debug for StateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StateKey(id {}, (sensitive value))", self.id)
    }
}

/// A key that is too short to be one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
#[error("the state key from {origin} is {len} bytes long; dm-apply needs at least {MIN_KEY_BYTES}")]
#[diagnostic(
    code(state::key),
    help("generate one with e.g. `openssl rand -base64 32`, and give every runner of plan/apply/drift the same key")
)]
pub struct ShortKey {
    pub origin: String,
    pub len: usize,
}

impl StateKey {
    pub fn new(bytes: impl Into<Vec<u8>>, origin: &str) -> Result<Self, ShortKey> {
        let bytes = bytes.into();
        if bytes.len() < MIN_KEY_BYTES {
            return Err(ShortKey { origin: origin.to_string(), len: bytes.len() });
        }
        let id = hex(&hmac(&bytes, &[KEY_ID_MESSAGE])[..8]);
        Ok(StateKey { bytes, id })
    }

    /// Public identifier of the key (16 hex digits): tells keys apart, reveals nothing of the key.
    pub fn id(&self) -> &str {
        &self.id
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC accepts keys of any length.
    let Ok(mut m) = <Hmac<Sha256> as Mac>::new_from_slice(key) else { return vec![] };
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

/// `DOMAIN \0 address \0 field \0 value`: what is hashed.
fn message(address: &str, field: &str, value: &Secret) -> Vec<u8> {
    let mut v = Vec::with_capacity(DOMAIN.len() + address.len() + field.len() + value.expose().len() + 3);
    for (i, part) in [DOMAIN, address, field, value.expose()].iter().enumerate() {
        if i > 0 {
            v.push(0);
        }
        v.extend_from_slice(part.as_bytes());
    }
    v
}

/// Argon2id hashes this process has computed, by an HMAC (under a random key of this process) of everything hashed.
/// apply checks each tracked value while it plans and again when it verifies, and fingerprints the values it sent
/// in between: with this, each (value, salt) costs one Argon2id per run instead of two. Memory only; the HMAC's key
/// never leaves the process, so an id cannot be tested against guesses.
static ARGON2_DONE: std::sync::Mutex<std::collections::BTreeMap<[u8; 32], Vec<u8>>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());
/// A record planted with more entries than this only costs time, never unbounded memory.
const ARGON2_DONE_MAX: usize = 1 << 16;
/// How many Argon2id hashes this process has computed (not counting those it had computed before).
static ARGON2_COMPUTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many Argon2id hashes this process has computed so far; a hash it had already computed is not counted again.
pub fn argon2_computed() -> u64 {
    ARGON2_COMPUTED.load(std::sync::atomic::Ordering::Relaxed)
}

fn argon2_id(m: u32, t: u32, p: u32, msg: &[u8], salt: &[u8]) -> Option<[u8; 32]> {
    static KEY: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    let key = KEY.get_or_init(|| {
        use rand::RngCore;
        let mut k = [0u8; 32];
        rand::rng().fill_bytes(&mut k);
        k
    });
    let params = [m.to_le_bytes(), t.to_le_bytes(), p.to_le_bytes()].concat();
    let salt_len = (salt.len() as u64).to_le_bytes();
    // No MAC, no id: never one id shared by different inputs, which would answer a check with another's hash.
    hmac(key, &[&params, &salt_len, salt, msg]).try_into().ok()
}

fn argon2_done() -> std::sync::MutexGuard<'static, std::collections::BTreeMap<[u8; 32], Vec<u8>>> {
    ARGON2_DONE.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn argon2(m: u32, t: u32, p: u32, msg: &[u8], salt: &[u8]) -> Option<Vec<u8>> {
    let id = argon2_id(m, t, p, msg, salt);
    if let Some(known) = id.and_then(|id| argon2_done().get(&id).cloned()) {
        return Some(known);
    }
    let out = argon2_compute(m, t, p, msg, salt)?;
    ARGON2_COMPUTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if let Some(id) = id {
        let mut done = argon2_done();
        if done.len() >= ARGON2_DONE_MAX {
            done.clear();
        }
        done.insert(id, out.clone());
    }
    Some(out)
}

fn argon2_compute(m: u32, t: u32, p: u32, msg: &[u8], salt: &[u8]) -> Option<Vec<u8>> {
    let params = argon2::Params::new(m, t, p, Some(32)).ok()?;
    let n = params.block_count();
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = vec![0u8; 32];
    // The 19 MiB of blocks are reused by every hash of this thread: allocating them afresh made the kernel fault
    // in and zero every page each time, as much time again as the hash itself. Argon2 overwrites every block
    // before reading it, so what a previous hash left there does not matter.
    thread_local! {
        static BLOCKS: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BLOCKS.with(|blocks| {
        let mut blocks = blocks.borrow_mut();
        if blocks.len() < n {
            blocks.resize(n, argon2::Block::new());
        }
        a.hash_password_into_with_memory(msg, salt, &mut out, &mut blocks[..n]).ok()
    })?;
    Some(out)
}

/// Compute a fresh fingerprint: keyed when a key is given, Argon2id with a random salt otherwise.
pub fn compute(key: Option<&StateKey>, address: &str, field: &str, value: &Secret) -> Fingerprint {
    let msg = message(address, field, value);
    match key {
        Some(k) => Fingerprint::Hmac { key_id: k.id.clone(), mac: hex(&hmac(&k.bytes, &[&msg])) },
        None => {
            use rand::RngCore;
            let mut salt = [0u8; 16];
            rand::rng().fill_bytes(&mut salt);
            let hash = argon2(ARGON2_M_KIB, ARGON2_T, ARGON2_P, &msg, &salt).unwrap_or_default();
            Fingerprint::Argon2id { m: ARGON2_M_KIB, t: ARGON2_T, p: ARGON2_P, salt: hex(&salt), hash: hex(&hash) }
        }
    }
}

/// The outcome of checking a value against a recorded fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Match,
    Mismatch,
    /// Cannot be checked: made under another key, without the key this run has, or with an unknown or too weak
    /// scheme. Treated as "not tracked".
    Unverifiable(String),
}

/// Check `value` against `fp` (constant-time comparison for the keyed scheme).
pub fn verify(fp: &Fingerprint, key: Option<&StateKey>, address: &str, field: &str, value: &Secret) -> Verdict {
    let msg = message(address, field, value);
    match fp {
        Fingerprint::Hmac { key_id, mac } => {
            let Some(k) = key else {
                return Verdict::Unverifiable(format!(
                    "recorded under a state key (id {key_id}), and this run has none (set DM_APPLY_STATE_KEY or \
                     --state-key-file)"
                ));
            };
            if *key_id != k.id {
                return Verdict::Unverifiable(format!(
                    "recorded under another state key (id {key_id}; this run's key is {})",
                    k.id
                ));
            }
            let Some(want) = unhex(mac) else { return Verdict::Unverifiable("unreadable fingerprint".into()) };
            let Ok(mut m) = <Hmac<Sha256> as Mac>::new_from_slice(&k.bytes) else {
                return Verdict::Unverifiable("unusable key".into());
            };
            m.update(&msg);
            if m.verify_slice(&want).is_ok() { Verdict::Match } else { Verdict::Mismatch }
        }
        Fingerprint::Argon2id { m, t, p, salt, hash } => {
            if *m < ARGON2_MIN_M_KIB || *t < ARGON2_MIN_T || *p < ARGON2_MIN_P {
                return Verdict::Unverifiable(format!(
                    "recorded with Argon2id parameters below dm-apply's minimum (m={m} KiB, t={t}, p={p})"
                ));
            }
            if *m > ARGON2_MAX_M_KIB || *t > ARGON2_MAX_T || *p > ARGON2_MAX_P {
                return Verdict::Unverifiable(format!(
                    "recorded with Argon2id parameters above dm-apply's limits (m={m} KiB, t={t}, p={p})"
                ));
            }
            let (Some(salt), Some(want)) = (unhex(salt), unhex(hash)) else {
                return Verdict::Unverifiable("unreadable fingerprint".into());
            };
            match argon2(*m, *t, *p, &msg, &salt) {
                Some(got) if got == want => Verdict::Match,
                Some(_) => Verdict::Mismatch,
                None => Verdict::Unverifiable("unusable Argon2id parameters".into()),
            }
        }
        Fingerprint::Unknown => Verdict::Unverifiable("recorded with a scheme this dm-apply does not know".into()),
    }
}

/// Run `jobs` on up to `available_parallelism` threads (Argon2id takes tens of milliseconds each), keeping order.
pub fn par_map<T: Sync, R: Send>(jobs: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    if jobs.len() <= 1 {
        return jobs.iter().map(&f).collect();
    }
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).clamp(1, 8).min(jobs.len());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut out: Vec<Option<R>> = Vec::with_capacity(jobs.len());
    out.resize_with(jobs.len(), || None);
    let slots = std::sync::Mutex::new(out);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let r = f(job);
                    if let Ok(mut g) = slots.lock() {
                        g[i] = Some(r);
                    }
                }
            });
        }
    });
    slots.into_inner().unwrap_or_default().into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_round_trip_and_key_ids() {
        let k = StateKey::new(b"0123456789abcdef".to_vec(), "test").unwrap();
        let other = StateKey::new(b"0123456789abcdeX".to_vec(), "test").unwrap();
        assert_ne!(k.id(), other.id());
        assert!(!format!("{k:?}").contains("0123"));
        let pw = Secret::new("123456");
        let fp = compute(Some(&k), "source.a", "password", &pw);
        assert_eq!(verify(&fp, Some(&k), "source.a", "password", &pw), Verdict::Match);
        assert_eq!(verify(&fp, Some(&k), "source.a", "password", &Secret::new("123457")), Verdict::Mismatch);
        // Bound to the resource: another source with the same password has another fingerprint.
        assert_eq!(verify(&fp, Some(&k), "source.b", "password", &pw), Verdict::Mismatch);
        assert!(matches!(verify(&fp, Some(&other), "source.a", "password", &pw), Verdict::Unverifiable(_)));
        assert!(matches!(verify(&fp, None, "source.a", "password", &pw), Verdict::Unverifiable(_)));
        assert!(StateKey::new(b"short".to_vec(), "x").is_err());
    }

    #[test]
    fn argon2_round_trip_and_minimum() {
        let pw = Secret::new("123456");
        let fp = compute(None, "source.a", "password", &pw);
        let Fingerprint::Argon2id { m, t, p, .. } = &fp else { panic!("{fp:?}") };
        assert!(*m >= 19 * 1024 && *t >= 2 && *p >= 1);
        assert_eq!(verify(&fp, None, "source.a", "password", &pw), Verdict::Match);
        assert_eq!(verify(&fp, None, "source.a", "password", &Secret::new("x")), Verdict::Mismatch);
        // Two fingerprints of one value differ (random salt).
        assert_ne!(fp, compute(None, "source.a", "password", &pw));
        let weak = match fp {
            Fingerprint::Argon2id { salt, hash, .. } => Fingerprint::Argon2id { m: 8, t: 1, p: 1, salt, hash },
            f => f,
        };
        assert!(matches!(verify(&weak, None, "source.a", "password", &pw), Verdict::Unverifiable(_)));
        let json: Fingerprint = serde_json::from_str(r#"{"scheme":"rot13","x":1}"#).unwrap();
        assert_eq!(json, Fingerprint::Unknown);
    }

    #[test]
    fn an_argon2id_hash_is_remembered_by_everything_it_hashed() {
        let (addr, pw) = ("source.remembered", Secret::new("memo-pw-1"));
        let fp = compute(None, addr, "password", &pw);
        let Fingerprint::Argon2id { m, t, p, salt, hash } = &fp else { panic!("{fp:?}") };
        let salt = unhex(salt).unwrap();
        let msg = message(addr, "password", &pw);
        let id = argon2_id(*m, *t, *p, &msg, &salt).expect("an id");
        assert_eq!(argon2_done().get(&id).map(|h| hex(h)), Some(hash.clone()), "computing remembers the hash");
        assert_eq!(verify(&fp, None, addr, "password", &pw), Verdict::Match);
        // Another value, the same salt: computed, never answered from what was remembered.
        assert_eq!(verify(&fp, None, addr, "password", &Secret::new("memo-pw-2")), Verdict::Mismatch);
        // Every input is part of the id; the id is not a plain digest of the value.
        let other_salt = [salt.as_slice(), &[0]].concat();
        for other in [
            argon2_id(*m + 1, *t, *p, &msg, &salt),
            argon2_id(*m, *t + 1, *p, &msg, &salt),
            argon2_id(*m, *t, *p + 1, &msg, &salt),
            argon2_id(*m, *t, *p, &msg, &other_salt),
            argon2_id(*m, *t, *p, &message(addr, "password", &Secret::new("memo-pw-2")), &salt),
        ] {
            assert_ne!(other, Some(id));
        }
        use sha2::Digest;
        assert_ne!(id.as_slice(), Sha256::digest(&msg).as_slice());
    }

    #[test]
    fn par_map_keeps_order() {
        let v: Vec<u32> = (0..50).collect();
        assert_eq!(par_map(&v, |x| x * 2), v.iter().map(|x| x * 2).collect::<Vec<_>>());
    }
}
