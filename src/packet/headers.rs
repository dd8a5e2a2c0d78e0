//! The header parser that defines the packet semantics of the language.
//!
//! This is the specification side: the reference evaluator uses it, and
//! the code generator must produce programs that agree with it on every
//! packet. It parses exactly as far as the filter needs (`Need`) and
//! reports a needed header that is malformed or cut short as `Malformed`,
//! which drops the packet.

use super::{ETH_P_IP, ETH_P_IPV6, Packet};
use crate::lang::ir::Need;
use std::fmt;

/// IPv6 extension headers walked before the chain counts as malformed.
/// The original program silently gave up after 8 and let the packet
/// through as "not tcp/udp/icmp"; portwall walks as many and then drops.
pub const MAX_IPV6_EXT_HEADERS: usize = 8;

/// IP protocol numbers the semantics name.
pub mod proto {
    pub const HOP_BY_HOP: u8 = 0;
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const AH: u8 = 51;
    pub const ICMPV6: u8 = 58;
    pub const DEST_OPTS: u8 = 60;
}

/// The network layer, from `skb->protocol`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Ipv4,
    Ipv6,
    Other,
}

/// The source and destination addresses of an IP packet, as host-order
/// integers of the wire bytes (`u32::from(Ipv4Addr)`), the form
/// [`crate::lang::sets::PrefixSet`] stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addresses {
    V4 { src: u32, dst: u32 },
    V6 { src: u128, dst: u128 },
}

/// What the filter variables are computed from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Headers {
    pub family: Option<Family>,
    /// The packet length from the IP header on (`skb->len`).
    pub len: usize,
    /// The final IP protocol (after IPv6 extension headers, also for a
    /// non-first fragment), when the network layer was parsed.
    pub protocol: Option<u8>,
    /// The addresses, when the network layer was parsed.
    pub addresses: Option<Addresses>,
    /// False for a non-first fragment, which carries no transport header.
    pub has_transport: bool,
    /// Ports, when the transport is TCP or UDP and ports were needed.
    pub ports: Option<(u16, u16)>,
    /// ICMP type and code, when the transport is ICMP (IPv4) or ICMPv6
    /// (IPv6) and they were needed.
    pub icmp: Option<(u8, u8)>,
}

/// Why a needed header could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    Ipv4Truncated,
    Ipv4HeaderLengthTooSmall(u8),
    Ipv4HeaderLengthBeyondPacket(u8),
    Ipv6Truncated,
    ExtensionHeaderTruncated,
    TooManyExtensionHeaders,
    TcpTruncated,
    UdpTruncated,
    IcmpTruncated,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Malformed::Ipv4Truncated => write!(f, "IPv4 header cut short (under 20 bytes)"),
            Malformed::Ipv4HeaderLengthTooSmall(n) => {
                write!(f, "IPv4 header length {n} is under 20")
            }
            Malformed::Ipv4HeaderLengthBeyondPacket(n) => {
                write!(f, "IPv4 header length {n} is beyond the packet")
            }
            Malformed::Ipv6Truncated => write!(f, "IPv6 header cut short (under 40 bytes)"),
            Malformed::ExtensionHeaderTruncated => write!(f, "IPv6 extension header cut short"),
            Malformed::TooManyExtensionHeaders => {
                write!(f, "more than {MAX_IPV6_EXT_HEADERS} IPv6 extension headers")
            }
            Malformed::TcpTruncated => write!(f, "TCP header cut short (under 20 bytes)"),
            Malformed::UdpTruncated => write!(f, "UDP header cut short (under 8 bytes)"),
            Malformed::IcmpTruncated => {
                write!(f, "ICMP header cut short (under 4 bytes)")
            }
        }
    }
}

impl Headers {
    /// The transport protocol, if the packet has a transport header.
    pub fn transport(&self) -> Option<u8> {
        if self.has_transport {
            self.protocol
        } else {
            None
        }
    }
}

/// Parses `packet` as far as `need` requires.
pub fn parse(packet: &Packet, need: Need) -> Result<Headers, Malformed> {
    let family = match packet.ethertype {
        ETH_P_IP => Family::Ipv4,
        ETH_P_IPV6 => Family::Ipv6,
        _ => Family::Other,
    };
    let mut headers = Headers {
        family: Some(family),
        len: packet.data.len(),
        ..Headers::default()
    };
    if !need.network || family == Family::Other {
        return Ok(headers);
    }
    let data = &packet.data;
    let (protocol, has_transport, offset) = match family {
        Family::Ipv4 => ipv4(data)?,
        Family::Ipv6 => ipv6(data)?,
        Family::Other => unreachable!("handled above"),
    };
    headers.protocol = Some(protocol);
    headers.addresses = Some(addresses(data, family));
    headers.has_transport = has_transport;
    if need.ports && has_transport {
        headers.ports = ports(data, offset, protocol)?;
    }
    let icmp_protocol = match family {
        Family::Ipv4 => proto::ICMP,
        _ => proto::ICMPV6,
    };
    if need.icmp && has_transport && protocol == icmp_protocol {
        headers.icmp = Some(icmp(data, offset)?);
    }
    Ok(headers)
}

/// The addresses of a packet whose IP header `ipv4`/`ipv6` accepted, so
/// the fixed part (20 or 40 bytes) is there.
fn addresses(data: &[u8], family: Family) -> Addresses {
    let word = |at: usize| u32::from_be_bytes(data[at..at + 4].try_into().expect("4 bytes"));
    let quad = |at: usize| u128::from_be_bytes(data[at..at + 16].try_into().expect("16 bytes"));
    match family {
        Family::Ipv4 => Addresses::V4 {
            src: word(12),
            dst: word(16),
        },
        _ => Addresses::V6 {
            src: quad(8),
            dst: quad(24),
        },
    }
}

/// Returns (protocol, has transport header, transport offset).
fn ipv4(data: &[u8]) -> Result<(u8, bool, usize), Malformed> {
    if data.len() < 20 {
        return Err(Malformed::Ipv4Truncated);
    }
    let header_len = (data[0] & 0x0f) * 4;
    if header_len < 20 {
        return Err(Malformed::Ipv4HeaderLengthTooSmall(header_len));
    }
    if usize::from(header_len) > data.len() {
        return Err(Malformed::Ipv4HeaderLengthBeyondPacket(header_len));
    }
    let fragment_offset = u16::from_be_bytes([data[6], data[7]]) & 0x1fff;
    Ok((data[9], fragment_offset == 0, usize::from(header_len)))
}

fn ipv6(data: &[u8]) -> Result<(u8, bool, usize), Malformed> {
    if data.len() < 40 {
        return Err(Malformed::Ipv6Truncated);
    }
    let mut next = data[6];
    let mut offset = 40;
    for _ in 0..MAX_IPV6_EXT_HEADERS {
        if !is_extension_header(next) {
            return Ok((next, true, offset));
        }
        // Every extension header is at least 8 bytes long; the fixed part
        // holds the next header, the length and the fragment offset.
        if offset + 8 > data.len() {
            return Err(Malformed::ExtensionHeaderTruncated);
        }
        let header = &data[offset..];
        let length = match next {
            proto::FRAGMENT => {
                let fragment_offset = u16::from_be_bytes([header[2], header[3]]) >> 3;
                if fragment_offset != 0 {
                    return Ok((header[0], false, offset + 8));
                }
                8
            }
            proto::AH => (usize::from(header[1]) + 2) * 4,
            _ => (usize::from(header[1]) + 1) * 8,
        };
        if offset + length > data.len() {
            return Err(Malformed::ExtensionHeaderTruncated);
        }
        next = header[0];
        offset += length;
    }
    if is_extension_header(next) {
        return Err(Malformed::TooManyExtensionHeaders);
    }
    Ok((next, true, offset))
}

/// The IPv6 extension headers the semantics walk through.
pub fn is_extension_header(protocol: u8) -> bool {
    matches!(
        protocol,
        proto::HOP_BY_HOP | proto::ROUTING | proto::FRAGMENT | proto::AH | proto::DEST_OPTS
    )
}

fn ports(data: &[u8], offset: usize, protocol: u8) -> Result<Option<(u16, u16)>, Malformed> {
    let (min, error) = match protocol {
        proto::TCP => (20, Malformed::TcpTruncated),
        proto::UDP => (8, Malformed::UdpTruncated),
        _ => return Ok(None),
    };
    if offset + min > data.len() {
        return Err(error);
    }
    let src = u16::from_be_bytes([data[offset], data[offset + 1]]);
    let dst = u16::from_be_bytes([data[offset + 2], data[offset + 3]]);
    Ok(Some((src, dst)))
}

/// Type and code; the checksum bytes are required too, so that a filter
/// reads only ICMP headers that have their fixed part.
fn icmp(data: &[u8], offset: usize) -> Result<(u8, u8), Malformed> {
    if offset + 4 > data.len() {
        return Err(Malformed::IcmpTruncated);
    }
    Ok((data[offset], data[offset + 1]))
}
