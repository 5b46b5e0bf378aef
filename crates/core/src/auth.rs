//! Janus API authentication: the shared `api_secret`, stored tokens (managed over the Admin API)
//! and HMAC-SHA1 signed tokens. All secret comparisons are constant-time.

use base64::Engine;
use hmac::{Hmac, Mac};
use std::collections::{BTreeMap, BTreeSet};
use subtle::ConstantTimeEq;

/// Constant-time equality for secrets (length is not hidden; Janus does the same).
pub(crate) fn secret_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Stored tokens and the plugins each may attach to.
#[derive(Debug, Default, Clone)]
pub struct TokenStore {
    tokens: BTreeMap<String, BTreeSet<String>>,
}

impl TokenStore {
    pub fn contains(&self, token: &str) -> bool {
        // Constant-time per candidate so lookups do not leak prefixes through timing.
        let mut found = false;
        for t in self.tokens.keys() {
            found |= secret_eq(t, token);
        }
        found
    }

    /// Adds (or resets) a token with these plugins.
    pub fn add(&mut self, token: &str, plugins: BTreeSet<String>) {
        self.tokens.insert(token.to_owned(), plugins);
    }

    pub fn remove(&mut self, token: &str) -> bool {
        self.tokens.remove(token).is_some()
    }

    pub fn plugins(&self, token: &str) -> Option<&BTreeSet<String>> {
        self.tokens.get(token)
    }

    pub fn plugins_mut(&mut self, token: &str) -> Option<&mut BTreeSet<String>> {
        self.tokens.get_mut(token)
    }

    pub fn allows(&self, token: &str, plugin: &str) -> bool {
        self.tokens.get(token).is_some_and(|p| p.contains(plugin))
    }

    /// Tokens with at least one plugin, as `list_tokens` shows them.
    pub fn listed(&self) -> impl Iterator<Item = (&String, &BTreeSet<String>)> {
        self.tokens.iter().filter(|(_, p)| !p.is_empty())
    }
}

/// A signed token split into its parts, if well formed and signed with `secret`.
/// Format: `<expiry>,<realm>[,<desc>...]:<base64(HMAC-SHA1(secret, data))>`.
fn verify_signed<'a>(token: &'a str, secret: &str, unix_now: u64) -> Option<Vec<&'a str>> {
    let mut halves = token.split(':');
    let data = halves.next()?;
    let signature = halves.next()?;
    if halves.next().is_some() {
        return None;
    }
    let parts: Vec<&str> = data.split(',').collect();
    let expiry: i64 = parts.first()?.parse().ok()?;
    if expiry < 0 || unix_now > expiry as u64 {
        return None;
    }
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(data.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    if !secret_eq(&expected, signature) {
        return None;
    }
    Some(parts)
}

/// Whether a signed token is valid for `realm`.
pub(crate) fn signed_valid(token: &str, secret: &str, realm: &str, unix_now: u64) -> bool {
    verify_signed(token, secret, unix_now).is_some_and(|p| p.get(1) == Some(&realm))
}

/// Whether a signed token of `realm` names `descriptor` (a plugin package in the `janus`
/// realm; `room=<id>` in a plugin's own realm).
pub fn signed_contains(
    token: &str,
    secret: &str,
    realm: &str,
    descriptor: &str,
    unix_now: u64,
) -> bool {
    verify_signed(token, secret, unix_now)
        .is_some_and(|p| p.get(1) == Some(&realm) && p.iter().skip(2).any(|d| *d == descriptor))
}

/// Signs a token the way clients' backends do; used by tests and tools.
pub fn sign_token(secret: &str, expiry: u64, realm: &str, descriptors: &[&str]) -> String {
    let mut data = format!("{expiry},{realm}");
    for d in descriptors {
        data.push(',');
        data.push_str(d);
    }
    let sig = match Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(data.as_bytes());
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    };
    format!("{data}:{sig}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_tokens() {
        let t = sign_token("s3cret", 2000, "janus", &["janus.plugin.echotest"]);
        assert!(signed_valid(&t, "s3cret", "janus", 1000));
        assert!(!signed_valid(&t, "s3cret", "janus", 2001), "expired");
        assert!(!signed_valid(&t, "other", "janus", 1000), "wrong key");
        assert!(!signed_valid(&t, "s3cret", "janus.plugin.videoroom", 1000));
        assert!(signed_contains(
            &t,
            "s3cret",
            "janus",
            "janus.plugin.echotest",
            1000
        ));
        assert!(!signed_contains(
            &t,
            "s3cret",
            "janus",
            "janus.plugin.videoroom",
            1000
        ));
        let tampered = t.replace("2000", "3000");
        assert!(!signed_valid(&tampered, "s3cret", "janus", 1000));
        for junk in [
            "",
            ":",
            "abc",
            "1,janus",
            "x,janus:abc",
            "1:2:3",
            "-5,janus:AAAA",
        ] {
            assert!(!signed_valid(junk, "s3cret", "janus", 0), "{junk}");
        }
    }

    #[test]
    fn store() {
        let mut s = TokenStore::default();
        s.add("a", ["p".to_string()].into());
        s.add("b", BTreeSet::new());
        assert!(s.contains("a") && s.contains("b") && !s.contains("c"));
        assert!(s.allows("a", "p") && !s.allows("b", "p"));
        assert_eq!(s.listed().count(), 1);
        assert!(s.remove("a") && !s.contains("a"));
    }
}
