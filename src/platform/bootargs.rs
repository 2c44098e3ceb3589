//! Boot arguments: space-separated words, `flag` or `key=value`, from the
//! device tree's `/chosen/bootargs` (QEMU's `-append`, the Pi's
//! `cmdline.txt`).

/// A view of the boot argument string.
#[derive(Clone, Copy, Debug)]
pub struct BootArgs<'a>(&'a str);

impl<'a> BootArgs<'a> {
    /// Arguments parsed from `text`.
    pub fn new(text: &'a str) -> Self {
        Self(text)
    }

    /// Whether the bare word `flag` is present.
    pub fn has(&self, flag: &str) -> bool {
        self.0.split_ascii_whitespace().any(|word| word == flag)
    }

    /// The value of the last `key=value`, if any.
    pub fn value(&self, key: &str) -> Option<&'a str> {
        self.0
            .split_ascii_whitespace()
            .filter_map(|word| word.split_once('='))
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v)
            .next_back()
    }

    /// The value of `key` as a number (decimal, or hex with `0x`), with
    /// a `K`, `M` or `G` suffix multiplying by powers of 1024.
    pub fn number(&self, key: &str) -> Option<u64> {
        parse_number(self.value(key)?)
    }

    /// The whole string.
    pub fn as_str(&self) -> &'a str {
        self.0
    }
}

fn parse_number(text: &str) -> Option<u64> {
    let (digits, scale) = match text.as_bytes().last()? {
        b'K' | b'k' => (&text[..text.len() - 1], 1 << 10),
        b'M' | b'm' => (&text[..text.len() - 1], 1 << 20),
        b'G' | b'g' => (&text[..text.len() - 1], 1 << 30),
        _ => (text, 1),
    };
    let value = match digits.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok()?,
        None => digits.parse().ok()?,
    };
    value.checked_mul(scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_values() {
        let args = BootArgs::new("semihosting test filter=heap  expect_mem=512M skip=3");
        assert!(args.has("test"));
        assert!(!args.has("tes"));
        assert_eq!(args.value("filter"), Some("heap"));
        assert_eq!(args.number("expect_mem"), Some(512 << 20));
        assert_eq!(args.number("skip"), Some(3));
        assert_eq!(args.value("missing"), None);
    }

    #[test]
    fn numbers_reject_garbage() {
        let args = BootArgs::new("a=0x10 b=12x c=99999999999999999999G d=");
        assert_eq!(args.number("a"), Some(16));
        assert_eq!(args.number("b"), None);
        assert_eq!(args.number("c"), None);
        assert_eq!(args.number("d"), None);
    }
}
