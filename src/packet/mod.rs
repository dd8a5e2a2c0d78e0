//! Packets as a cgroup_skb program sees them.
//!
//! The kernel hands the program `skb->protocol` (an EtherType) and the
//! bytes from the IP header on. `Packet` is exactly that pair; `headers`
//! parses it the way the filter semantics define; `capture` and `hex`
//! read packets from the outside world; `summary` describes one for humans.

pub mod capture;
pub mod headers;
pub mod hex;
pub mod samples;
pub mod summary;

/// EtherType of IPv4 (`ETH_P_IP`).
pub const ETH_P_IP: u16 = 0x0800;
/// EtherType of IPv6 (`ETH_P_IPV6`).
pub const ETH_P_IPV6: u16 = 0x86dd;
/// EtherType used for packets that are neither IPv4 nor IPv6 (IEEE 802
/// "local experimental"), so that the kernel treats them as non-IP.
pub const ETH_P_OTHER: u16 = 0x88b5;

/// A packet as the filter sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// What the kernel puts in `skb->protocol` (host order here).
    pub ethertype: u16,
    /// The bytes from the IP header on (`skb->data`..`skb->data_end`).
    pub data: Vec<u8>,
}

impl Packet {
    /// A raw IP packet; the version nibble of the first byte picks the
    /// EtherType (4: IPv4, 6: IPv6, anything else or empty: non-IP).
    pub fn from_ip(data: Vec<u8>) -> Packet {
        let ethertype = match data.first().map(|b| b >> 4) {
            Some(4) => ETH_P_IP,
            Some(6) => ETH_P_IPV6,
            _ => ETH_P_OTHER,
        };
        Packet { ethertype, data }
    }

    /// The frame `BPF_PROG_TEST_RUN` expects for a cgroup_skb program: a
    /// 14-byte Ethernet header (zero addresses, our EtherType) before the
    /// IP bytes. The kernel sets `skb->protocol` from it and strips it.
    pub fn to_test_frame(&self) -> Vec<u8> {
        let mut frame = Vec::with_capacity(14 + self.data.len());
        frame.extend_from_slice(&[0u8; 12]);
        frame.extend_from_slice(&self.ethertype.to_be_bytes());
        frame.extend_from_slice(&self.data);
        frame
    }
}
