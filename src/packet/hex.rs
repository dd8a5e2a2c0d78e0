//! Reading a packet written as hex digits, as people paste them from
//! Wireshark's "copy as hex stream", `xxd -p` or a bug report. Dumps with
//! offset columns (`tcpdump -x`, `xxd`) are not accepted: their offsets
//! would read as packet bytes.

use super::Packet;

/// Why a hex string is not a packet. Positions count characters of the
/// input from 1, so that they match what an editor shows.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    /// No hex digits at all.
    #[error("empty hex packet: no hex digits")]
    Empty,
    /// A character that is neither a hex digit nor a separator.
    #[error("invalid character {ch:?} at position {position} in hex packet")]
    InvalidChar {
        /// The offending character.
        ch: char,
        /// Its 1-based position in the input, in characters.
        position: usize,
    },
    /// A separator between the two digits of one byte, which is almost
    /// always a dropped or doubled digit earlier on.
    #[error("separator at position {position} splits a byte in two")]
    SplitByte {
        /// 1-based position of the separator, in characters.
        position: usize,
    },
    /// The digits do not pair up into bytes.
    #[error("odd number of hex digits ({count}); each byte takes two")]
    OddDigits {
        /// How many hex digits there were.
        count: usize,
    },
}

/// Parses a raw IP packet written in hex. Whitespace, `:` and `-` may
/// separate bytes, and the whole string may start with `0x`. The IP
/// version nibble picks the EtherType, as in [`Packet::from_ip`].
pub fn parse_hex(s: &str) -> Result<Packet, HexError> {
    let mut chars = s.chars().enumerate().peekable();
    // The prefix is accepted only in front, so that "0x" between bytes
    // (a C array pasted without its commas) still reports the 'x'.
    while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
    let mut rest = chars.clone();
    if rest.next().is_some_and(|(_, c)| c == '0')
        && rest.next().is_some_and(|(_, c)| c == 'x' || c == 'X')
    {
        chars = rest;
    }

    let mut bytes = Vec::with_capacity(s.len() / 2);
    let mut high: Option<u8> = None;
    let mut digits = 0usize;
    for (i, c) in chars {
        let position = i + 1;
        if let Some(value) = c.to_digit(16) {
            // to_digit(16) is below 16, so the cast keeps every bit.
            let value = value as u8;
            digits += 1;
            match high.take() {
                Some(h) => bytes.push(h << 4 | value),
                None => high = Some(value),
            }
        } else if c.is_whitespace() || c == ':' || c == '-' {
            if high.is_some() {
                return Err(HexError::SplitByte { position });
            }
        } else {
            return Err(HexError::InvalidChar { ch: c, position });
        }
    }
    if high.is_some() {
        return Err(HexError::OddDigits { count: digits });
    }
    if bytes.is_empty() {
        return Err(HexError::Empty);
    }
    Ok(Packet::from_ip(bytes))
}
