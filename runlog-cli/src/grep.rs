//! `--grep`: a regular expression matched against a record's message, target and key-values
//! (`key=value`), and the cheap test on a record's undecoded payload that rules most records
//! out before they are decoded.

use std::cell::RefCell;

use regex::Regex;

thread_local! {
    /// A key-value as `--grep` matches it.
    static KV: RefCell<String> = const { RefCell::new(String::new()) };
}

/// `--grep`'s pattern. One without any character special to regular expressions (most are a
/// word or two) is matched as a plain substring, which is what the regular expression would
/// match, faster; and since the message, the target, each key and each value lie whole in the
/// record's payload, a record whose payload does not hold such a pattern cannot match.
pub(crate) struct Grep {
    re: Regex,
    literal: Option<Literal>,
}

impl Grep {
    pub(crate) fn new(re: Regex) -> Grep {
        let p = re.as_str();
        let literal = (regex::escape(p) == p).then(|| Literal::new(p));
        Grep { re, literal }
    }

    /// The regular expression alone, never taken as a plain string (tests compare both).
    #[cfg(test)]
    pub(crate) fn regex_only(re: Regex) -> Grep {
        Grep { re, literal: None }
    }

    /// Does `s` match?
    pub(crate) fn is_match(&self, s: &str) -> bool {
        match &self.literal {
            Some(l) => s.contains(l.text.as_str()),
            None => self.re.is_match(s),
        }
    }

    /// Does `k=v` match?
    pub(crate) fn kv_matches(&self, k: &str, v: &str) -> bool {
        match &self.literal {
            // Within the key or the value: only a pattern with `=` can span both.
            Some(l) if !l.text.contains('=') => {
                k.contains(l.text.as_str()) || v.contains(l.text.as_str())
            }
            _ => KV.with_borrow_mut(|kv| {
                // `k=v` in a reused buffer.
                kv.clear();
                kv.push_str(k);
                kv.push('=');
                kv.push_str(v);
                self.is_match(kv)
            }),
        }
    }

    /// Can a record with this (undecoded) payload match? False only when it certainly
    /// cannot: the pattern is a plain string without `=` (so a match lies within one of the
    /// strings the payload holds) and the payload's bytes do not contain it.
    pub(crate) fn payload_may_match(&self, payload: &[u8]) -> bool {
        match &self.literal {
            Some(l) if !l.text.contains('=') => l.is_in(payload),
            _ => true,
        }
    }
}

/// A plain string to look for in bytes.
struct Literal {
    text: String,
    /// Its byte that is probably rarest in log text (by a fixed ranking), and where.
    rare: Option<(usize, u8)>,
}

impl Literal {
    fn new(text: &str) -> Literal {
        // Common bytes of log text first; a byte's rank is its place here, others rank last.
        const COMMON: &[u8] = b"\0 etaoinsrhldcum0123456789fpgwybvk:=/._-,\x01\x02\x03xjqz";
        let rank = |b: u8| COMMON.iter().position(|&c| c == b).unwrap_or(COMMON.len());
        let rare = text.bytes().enumerate().max_by_key(|&(_, b)| rank(b));
        Literal {
            text: text.to_owned(),
            rare,
        }
    }

    /// Are the bytes of the string in `hay`? Eight bytes at a time are compared with the
    /// rare byte; where it is, the whole string is compared.
    fn is_in(&self, hay: &[u8]) -> bool {
        let needle = self.text.as_bytes();
        let Some((at, byte)) = self.rare else {
            return true;
        };
        if hay.len() < needle.len() {
            return false;
        }
        // Where the rare byte can be: `at` from the start, `len - 1 - at` from the end.
        let region = &hay[at..hay.len() - (needle.len() - 1 - at)];
        let check = |pos: usize| hay.get(pos - at..pos - at + needle.len()) == Some(needle);
        const LOW: u64 = 0x0101_0101_0101_0101;
        const HIGH: u64 = 0x8080_8080_8080_8080;
        let pattern = LOW * u64::from(byte);
        let mut words = region.chunks_exact(8);
        let mut base = at;
        for w in words.by_ref() {
            let x = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]) ^ pattern;
            // A high bit for every zero byte of `x` (and maybe for the byte after one: those
            // are checked like the others).
            let mut zeros = x.wrapping_sub(LOW) & !x & HIGH;
            while zeros != 0 {
                if check(base + zeros.trailing_zeros() as usize / 8) {
                    return true;
                }
                zeros &= zeros - 1;
            }
            base += 8;
        }
        words
            .remainder()
            .iter()
            .enumerate()
            .any(|(i, &b)| b == byte && check(base + i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_strings_are_found_in_bytes_wherever_they_are() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let alphabet = [b'a', b'b', b'm', b'Z', 0, 0x80, b'e', b' '];
        for _ in 0..50_000 {
            let n = (next() % 4) as usize;
            let needle: Vec<u8> = (0..n).map(|_| alphabet[(next() % 8) as usize]).collect();
            let Ok(needle) = String::from_utf8(needle) else {
                continue;
            };
            let len = (next() % 40) as usize;
            let hay: Vec<u8> = (0..len).map(|_| alphabet[(next() % 8) as usize]).collect();
            let want =
                needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle.as_bytes());
            assert_eq!(
                Literal::new(&needle).is_in(&hay),
                want,
                "{needle:?} in {hay:?}"
            );
        }
        let l = Literal::new("timeout");
        assert!(l.is_in(b"\x03\0\0\0app\x07\0\0\0timeout after"));
        assert!(!l.is_in(b"timeou"));
        assert!(l.is_in(b"timeout"));
    }

    #[test]
    fn a_plain_word_is_a_literal_and_a_regular_expression_is_not() {
        let g = |p: &str| Grep::new(Regex::new(p).unwrap());
        assert!(g("timeout").literal.is_some());
        assert!(g("user=bar").literal.is_some());
        assert!(g("time out").literal.is_some());
        for p in ["a.c", "^app", "x|y", "a+", "(?i)db", "\\d", "[ab]", ""] {
            assert_eq!(g(p).literal.is_some(), p.is_empty(), "{p:?}");
        }
        // A pattern with `=` may span a key and its value: every payload may match.
        assert!(g("r=b").payload_may_match(b"nothing"));
        assert!(!g("timeout").payload_may_match(b"nothing"));
        assert!(g("a.c").payload_may_match(b"nothing"));
    }
}
