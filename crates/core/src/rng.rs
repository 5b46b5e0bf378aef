//! A small seeded generator for session and handle ids: the core stays deterministic in tests
//! while the server seeds it from the OS.

/// splitmix64: fast, full-period, good enough for unguessable-enough ids when seeded randomly.
#[derive(Debug, Clone)]
pub(crate) struct IdRng(u64);

impl IdRng {
    pub(crate) fn new(seed: u64) -> Self {
        IdRng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A non-zero id in `[1, 2^53-1]`.
    pub(crate) fn next_id(&mut self) -> u64 {
        loop {
            let id = self.next_u64() & jano_api::MAX_ID;
            if id != 0 {
                return id;
            }
        }
    }

    /// A random alphanumeric string, e.g. for synthetic transactions.
    pub(crate) fn alnum(&mut self, len: usize) -> String {
        const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..len)
            .map(|_| {
                let i = (self.next_u64() % CHARS.len() as u64) as usize;
                char::from(CHARS.get(i).copied().unwrap_or(b'x'))
            })
            .collect()
    }
}
