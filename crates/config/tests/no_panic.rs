//! Property test: no input makes the parsers or the typed readers panic, and whatever
//! parses survives a write/parse round trip.
//!
//! Inputs are every truncation of the fixtures (and, strided, of `/etc/janus` when
//! installed), random mutations of them, and random bytes. Deterministic by default;
//! `JANO_FUZZ_SEED` / `JANO_FUZZ_ITERS` explore further.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use jano_config::{HttpConfig, JanusConfig, Jcfg, WsConfig};

/// xorshift64*: enough randomness for mutation, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Characters that matter to the grammar, so mutations hit interesting states.
const ALPHABET: &[u8] = b"{}[]()\"\\=:;,#/*\n\t -.+0123456789xXeELabfnrtu@\r\x00\xff\xc3";

fn seeds() -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/folder");
    let mut paths: Vec<_> = std::fs::read_dir(&fixtures)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for p in paths {
        out.push((std::fs::read_to_string(&p).unwrap(), false));
    }
    match std::fs::read_dir("/etc/janus") {
        Ok(entries) => {
            let mut paths: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
            paths.sort();
            for p in paths {
                if p.extension().and_then(|e| e.to_str()) == Some("jcfg") {
                    out.push((std::fs::read_to_string(&p).unwrap(), true));
                }
            }
        }
        Err(_) => println!("NOTE: /etc/janus not found, fuzzing the committed fixtures only"),
    }
    out
}

/// Runs every reader on `text`; returns the panic message if one panicked.
fn exercise(text: &str) -> Result<(), String> {
    catch_unwind(AssertUnwindSafe(|| {
        if let Ok(cfg) = Jcfg::parse(text, "fuzz.jcfg") {
            let _ = JanusConfig::from_jcfg(&cfg, "fuzz.jcfg");
            let _ = HttpConfig::from_jcfg(&cfg, "fuzz.jcfg");
            let _ = WsConfig::from_jcfg(&cfg, "fuzz.jcfg");
            let again = Jcfg::parse(&cfg.to_text(), "rewritten.jcfg")
                .unwrap_or_else(|e| panic!("rewritten text does not parse: {e}"));
            assert_eq!(again, cfg, "round trip changed the configuration");
        }
        if let Ok(cfg) = Jcfg::parse_ini(text, "fuzz.cfg") {
            let _ = JanusConfig::from_jcfg(&cfg, "fuzz.cfg");
            let _ = HttpConfig::from_jcfg(&cfg, "fuzz.cfg");
            let _ = WsConfig::from_jcfg(&cfg, "fuzz.cfg");
        }
    }))
    .map_err(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

fn check(text: &str, what: &str) {
    if let Err(msg) = exercise(text) {
        panic!("{what}: panicked with {msg:?} on input {text:?}");
    }
}

#[test]
fn truncations_never_panic() {
    for (i, (text, is_sample)) in seeds().iter().enumerate() {
        let boundaries: Vec<usize> = text.char_indices().map(|(b, _)| b).collect();
        let stride = if *is_sample {
            (boundaries.len() / 400).max(1)
        } else {
            1
        };
        for &b in boundaries.iter().step_by(stride) {
            check(&text[..b], &format!("seed {i} truncated at {b}"));
            check(&text[b..], &format!("seed {i} starting at {b}"));
        }
    }
}

#[test]
fn mutations_and_random_bytes_never_panic() {
    let seed = std::env::var("JANO_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_u64);
    let iterations: usize = std::env::var("JANO_FUZZ_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    let mut rng = Rng(seed | 1);
    let seeds = seeds();
    for n in 0..iterations {
        let mut bytes: Vec<u8> = if n % 10 == 0 {
            let len = rng.below(200);
            (0..len)
                .map(|_| {
                    if rng.below(2) == 0 {
                        ALPHABET[rng.below(ALPHABET.len())]
                    } else {
                        rng.next() as u8
                    }
                })
                .collect()
        } else {
            seeds[rng.below(seeds.len())].0.clone().into_bytes()
        };
        for _ in 0..=rng.below(8) {
            let at = rng.below(bytes.len() + 1);
            match rng.below(4) {
                0 => bytes.insert(at, ALPHABET[rng.below(ALPHABET.len())]),
                1 => {
                    if at < bytes.len() {
                        bytes.remove(at);
                    }
                }
                2 => {
                    let end = (at + rng.below(64)).min(bytes.len());
                    let chunk: Vec<u8> = bytes[at..end].to_vec();
                    let to = rng.below(bytes.len() + 1);
                    bytes.splice(to..to, chunk);
                }
                _ => bytes.truncate(at),
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        check(&text, &format!("iteration {n} (seed {seed})"));
    }
}

#[test]
fn pathological_inputs_never_panic() {
    let long_string = format!("a = \"{}\"", "x".repeat(100_000));
    let cases = [
        String::new(),
        "\u{feff}".into(),
        "\"".into(),
        "a".into(),
        "a =".into(),
        "a = \"\\".into(),
        "a = \"\\x".into(),
        "a = \"\\x4".into(),
        "a = -".into(),
        "a = +".into(),
        "a = .".into(),
        "a = -0x".into(),
        "a = 0b".into(),
        "a = 1e".into(),
        "a = -9223372036854775808".into(),
        "a = 0xFFFFFFFFFFFFFFFF".into(),
        "/*".into(),
        "/".into(),
        "a = /".into(),
        "[general".into(),
        "[".into(),
        "=".into(),
        "{".repeat(10_000),
        format!("a = {}", "[".repeat(10_000)),
        format!("a = {}", "( {".repeat(10_000)),
        long_string,
    ];
    for case in &cases {
        check(case, "pathological");
    }
}
