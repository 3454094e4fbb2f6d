//! A string that never prints.
//!
//! Passwords and TLS private keys travel through dm-apply as [`Secret`]. Its `Debug` and `Display` print
//! `(sensitive value)`, so a stray `{:?}` in a log line, an error or a panic message cannot leak it. The value is
//! only reachable through [`Secret::expose`], which makes every place that needs the plain text easy to audit.
//! It serializes as the plain string because the DM-master wire format needs it; renderers and saved plans must
//! never serialize a `Secret` directly (they use fingerprints and `(sensitive value)` instead).
//!
//! Every value a `Secret` is made of is also registered with the redaction layer (`ui::redact::remember`), so it
//! is scrubbed from anything printed even when it reaches output some other way (DM-master echoing it in an error
//! message, a log line, a diagnostic).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// What every output shows in place of a secret.
pub const SENSITIVE: &str = "(sensitive value)";

/// A secret string (password, private key).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        crate::ui::redact::remember(&value);
        Secret(value)
    }

    /// The plain text. Call only where the value must go over the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A salted SHA-256 fingerprint, `sha256:<salt>:<hex>`, used to notice that a write-only secret changed
    /// without ever storing or reading it back. The salt makes equal passwords of different sources differ.
    pub fn fingerprint(&self, salt: &str) -> String {
        let mut h = Sha256::new();
        h.update(salt.as_bytes());
        h.update([0u8]);
        h.update(self.0.as_bytes());
        let digest = h.finalize();
        let mut hex = String::with_capacity(64);
        for b in digest {
            hex.push_str(&format!("{b:02x}"));
        }
        format!("sha256:{salt}:{hex}")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SENSITIVE)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SENSITIVE)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

impl schemars::JsonSchema for Secret {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Secret".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A secret. Write `${env:NAME}` to read it from the environment instead of keeping it in git."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), SENSITIVE);
        assert_eq!(format!("{s}"), SENSITIVE);
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn values_are_scrubbed_from_output() {
        let s: Secret = serde_json::from_str("\"secret-from-config-41d2\"").unwrap();
        assert_eq!(crate::ui::redact::scrub("DM said: secret-from-config-41d2"), format!("DM said: {SENSITIVE}"));
        let _ = Secret::new("secret-from-env-77c1");
        assert_eq!(crate::ui::redact::scrub("x secret-from-env-77c1"), format!("x {SENSITIVE}"));
        assert_eq!(s.expose(), "secret-from-config-41d2");
    }

    #[test]
    fn fingerprint_depends_on_salt_and_value() {
        let a = Secret::new("pw");
        assert_eq!(a.fingerprint("s1"), a.fingerprint("s1"));
        assert_ne!(a.fingerprint("s1"), a.fingerprint("s2"));
        assert_ne!(a.fingerprint("s1"), Secret::new("pw2").fingerprint("s1"));
        assert!(!a.fingerprint("s1").contains("pw:"));
    }
}
