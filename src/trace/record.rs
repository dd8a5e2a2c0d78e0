//! The record the tracer program writes into the ring buffer for each
//! packet, and its decoding.
//!
//! Layout (little-endian, the machine's order; offsets in bytes):
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | `bpf_ktime_get_ns()` (`CLOCK_MONOTONIC`) |
//! | 8 | 8 | `bpf_skb_cgroup_id()`: the cgroup2 id of the packet's socket |
//! | 16 | 4 | `skb->len`: the packet's length from the IP header on |
//! | 20 | 4 | bytes captured, at most the snap length (0 if copying failed) |
//! | 24 | 4 | `skb->protocol` (the EtherType, network order, in the low 16 bits) |
//! | 28 | 1 | the verdict: 0 drop, 1 forward |
//! | 29 | 1 | the direction: 0 egress, 1 ingress |
//! | 30 | 2 | [`RECORD_VERSION`] |
//! | 32 | snap | the packet's first bytes, from the IP header on |

use crate::lang::ir::Direction;
use crate::packet::Packet;

pub const OFF_TIME: i16 = 0;
pub const OFF_CGROUP: i16 = 8;
pub const OFF_LEN: i16 = 16;
pub const OFF_CAPLEN: i16 = 20;
pub const OFF_PROTOCOL: i16 = 24;
pub const OFF_VERDICT: i16 = 28;
pub const OFF_DIRECTION: i16 = 29;
pub const OFF_VERSION: i16 = 30;
pub const HEADER_LEN: usize = 32;

/// Changes whenever the layout does, so a reader never misreads a record.
pub const RECORD_VERSION: u16 = 1;

/// The size of a record for a snap length: header and packet bytes,
/// rounded up to 8 bytes as the ring buffer stores them anyway.
pub fn record_len(snap: u32) -> u32 {
    (HEADER_LEN as u32 + snap).div_ceil(8) * 8
}

/// One traced packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// `CLOCK_MONOTONIC` time of the verdict, in nanoseconds.
    pub monotonic_ns: u64,
    pub cgroup_id: u64,
    pub direction: Direction,
    pub forwarded: bool,
    /// The packet's whole length (`skb->len`).
    pub len: u32,
    /// The EtherType (host order) and the captured bytes.
    pub packet: Packet,
}

/// Why a record could not be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("a trace record of {0} bytes is shorter than its {HEADER_LEN}-byte header")]
    Short(usize),
    #[error("a trace record has layout version {0}, this portwall reads version {RECORD_VERSION}")]
    Version(u16),
    #[error("a trace record claims {caplen} captured bytes but holds {room}")]
    Caplen { caplen: u32, room: usize },
}

impl Event {
    /// Decodes one record; never panics, whatever the bytes.
    pub fn decode(bytes: &[u8]) -> Result<Event, RecordError> {
        if bytes.len() < HEADER_LEN {
            return Err(RecordError::Short(bytes.len()));
        }
        let u64_at = |off: i16| {
            let o = off as usize;
            u64::from_le_bytes(bytes[o..o + 8].try_into().expect("8 bytes"))
        };
        let u32_at = |off: i16| {
            let o = off as usize;
            u32::from_le_bytes(bytes[o..o + 4].try_into().expect("4 bytes"))
        };
        let version =
            u16::from_le_bytes([bytes[OFF_VERSION as usize], bytes[OFF_VERSION as usize + 1]]);
        if version != RECORD_VERSION {
            return Err(RecordError::Version(version));
        }
        let caplen = u32_at(OFF_CAPLEN);
        let room = bytes.len() - HEADER_LEN;
        if caplen as usize > room {
            return Err(RecordError::Caplen { caplen, room });
        }
        // skb->protocol keeps the EtherType in network order.
        let ethertype = u16::from_be(u32_at(OFF_PROTOCOL) as u16);
        Ok(Event {
            monotonic_ns: u64_at(OFF_TIME),
            cgroup_id: u64_at(OFF_CGROUP),
            direction: if bytes[OFF_DIRECTION as usize] == 0 {
                Direction::Egress
            } else {
                Direction::Ingress
            },
            forwarded: bytes[OFF_VERDICT as usize] != 0,
            len: u32_at(OFF_LEN),
            packet: Packet {
                ethertype,
                data: bytes[HEADER_LEN..HEADER_LEN + caplen as usize].to_vec(),
            },
        })
    }

    /// The bytes are all of the packet, not cut at the snap length.
    pub fn complete(&self) -> bool {
        self.packet.data.len() as u64 == u64::from(self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(caplen: u32, data: &[u8]) -> Vec<u8> {
        let mut r = Vec::new();
        r.extend_from_slice(&123_456_789u64.to_le_bytes());
        r.extend_from_slice(&42u64.to_le_bytes());
        r.extend_from_slice(&300u32.to_le_bytes());
        r.extend_from_slice(&caplen.to_le_bytes());
        // ETH_P_IPV6 as the kernel keeps it: network order in a u32 load.
        r.extend_from_slice(&u32::from(0x86ddu16.to_be()).to_le_bytes());
        r.extend_from_slice(&[1, 1]);
        r.extend_from_slice(&RECORD_VERSION.to_le_bytes());
        r.extend_from_slice(data);
        r
    }

    #[test]
    fn a_record_decodes_field_by_field() {
        let e = Event::decode(&record(3, &[0x60, 0, 0, 0xee, 0xee, 0, 0, 0])).unwrap();
        assert_eq!(e.monotonic_ns, 123_456_789);
        assert_eq!(e.cgroup_id, 42);
        assert_eq!(e.len, 300);
        assert_eq!(e.direction, Direction::Ingress);
        assert!(e.forwarded);
        assert_eq!(e.packet.ethertype, 0x86dd);
        assert_eq!(e.packet.data, vec![0x60, 0, 0]);
        assert!(!e.complete());
    }

    #[test]
    fn bad_records_are_errors_not_panics() {
        assert_eq!(Event::decode(&[0; 31]), Err(RecordError::Short(31)));
        assert_eq!(
            Event::decode(&record(9, &[0; 8])),
            Err(RecordError::Caplen { caplen: 9, room: 8 })
        );
        let mut r = record(0, &[]);
        r[30] = 7;
        assert_eq!(Event::decode(&r), Err(RecordError::Version(7)));
    }

    #[test]
    fn records_are_rounded_to_eight_bytes() {
        assert_eq!(record_len(128), 160);
        assert_eq!(record_len(1), 40);
        assert_eq!(record_len(0), 32);
    }
}
