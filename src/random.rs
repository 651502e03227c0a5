//! Random numbers for jitter, name suffixes and sampling, from the operating system's generator
//! (through aws-lc-rs, already the crate's crypto provider, so no second random-number crate).

/// A uniformly random `u64`.
pub(crate) fn u64() -> u64 {
    let mut bytes = [0u8; 8];
    aws_lc_rs::rand::fill(&mut bytes).expect("the operating system's random generator is available");
    u64::from_le_bytes(bytes)
}

/// A uniformly random number in `0.0..=1.0`.
pub(crate) fn unit() -> f64 {
    // 53 random bits: every value is an exact multiple of 2^-53.
    (u64() >> 11) as f64 / ((1u64 << 53) - 1) as f64
}

/// True with probability `1 / n` (`n` > 0).
#[cfg(feature = "orm")]
pub(crate) fn one_in(n: u32) -> bool {
    u64().is_multiple_of(u64::from(n.max(1)))
}

/// `len` random ASCII letters and digits.
pub(crate) fn alphanumeric(len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    // Rejection sampling (248 = 4 * 62): no bias toward the first characters.
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for b in u64().to_le_bytes() {
            if b < 248 && out.len() < len {
                out.push(CHARS[usize::from(b) % CHARS.len()] as char);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_vary_and_stay_in_range() {
        let a: Vec<u64> = (0..8).map(|_| super::u64()).collect();
        assert!(a.windows(2).any(|w| w[0] != w[1]));
        assert!((0..1000).map(|_| super::unit()).all(|x| (0.0..=1.0).contains(&x)));
        let s = super::alphanumeric(7);
        assert_eq!(s.len(), 7);
        assert!(s.chars().all(|c| c.is_ascii_alphanumeric()));
        assert!((0..100).all(|_| super::one_in(1)));
    }
}
