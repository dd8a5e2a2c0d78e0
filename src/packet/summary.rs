//! One-line descriptions of packets, for humans and for `--json`.
//!
//! This is deliberately independent of the header parser that defines the
//! filter semantics: it is what the CLI prints next to a verdict, so it
//! must say something sensible about any bytes at all, including the
//! truncated and malformed packets whose verdicts people want explained.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use super::{ETH_P_IP, ETH_P_IPV6, Packet};

/// IP protocol numbers this module decodes or walks past.
const IPPROTO_HOPOPTS: u8 = 0;
const IPPROTO_ICMP: u8 = 1;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ROUTING: u8 = 43;
const IPPROTO_FRAGMENT: u8 = 44;
const IPPROTO_AH: u8 = 51;
const IPPROTO_ICMPV6: u8 = 58;
const IPPROTO_DSTOPTS: u8 = 60;

/// IPv6 extension headers followed before giving up; real packets carry
/// a handful, and a bound keeps garbage from looking like a long chain.
pub const MAX_IPV6_EXT_HEADERS: usize = 16;

/// TCP flag names, from the least significant bit of byte 13 up.
const TCP_FLAG_NAMES: [&str; 8] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];

/// Which network protocol a packet is, by its EtherType.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// EtherType `ETH_P_IP`.
    Ipv4,
    /// EtherType `ETH_P_IPV6`.
    Ipv6,
    /// Any other EtherType.
    NonIp,
}

/// What a packet's headers say, as far as its bytes go. Fields the packet
/// does not have (ports of an ICMP packet, anything past a truncation) are
/// `None`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// The network protocol, from the EtherType.
    pub family: Family,
    /// The EtherType (`skb->protocol`).
    pub ethertype: u16,
    /// Number of bytes in the packet, from the IP header on.
    pub length: usize,
    /// Source address; present exactly when the IP header is complete and
    /// well-formed.
    pub src: Option<IpAddr>,
    /// Destination address; present together with `src`.
    pub dst: Option<IpAddr>,
    /// The transport protocol number: IPv4's protocol field, or for IPv6
    /// the next header after the extension headers.
    pub protocol: Option<u8>,
    /// `"tcp"`, `"udp"`, `"icmp"` or `"icmpv6"` for the protocols whose
    /// headers are decoded.
    pub protocol_name: Option<&'static str>,
    /// TCP or UDP source port.
    pub src_port: Option<u16>,
    /// TCP or UDP destination port.
    pub dst_port: Option<u16>,
    /// Names of the TCP flags that are set (`"SYN"`, `"ACK"`, ...).
    pub tcp_flags: Option<Vec<&'static str>>,
    /// ICMP or ICMPv6 type.
    pub icmp_type: Option<u8>,
    /// ICMP or ICMPv6 code.
    pub icmp_code: Option<u8>,
    /// The packet is a fragment: IPv4 with a nonzero offset or the MF
    /// flag, or IPv6 with a fragment header.
    pub fragment: bool,
    /// Fragment offset in bytes, for fragments.
    pub fragment_offset: Option<u32>,
    /// The "more fragments" flag, for fragments.
    pub more_fragments: bool,
    /// The bytes end before the headers or the IP length say they should.
    pub truncated: bool,
    /// Why the headers make no sense, when they do not (a version nibble
    /// that contradicts the EtherType, a header length below the minimum,
    /// too many IPv6 extension headers).
    pub malformed: Option<String>,
}

impl Summary {
    /// Describes a packet. Never panics, whatever the bytes.
    pub fn of(p: &Packet) -> Summary {
        let family = match p.ethertype {
            ETH_P_IP => Family::Ipv4,
            ETH_P_IPV6 => Family::Ipv6,
            _ => Family::NonIp,
        };
        let mut s = Summary {
            family,
            ethertype: p.ethertype,
            length: p.data.len(),
            src: None,
            dst: None,
            protocol: None,
            protocol_name: None,
            src_port: None,
            dst_port: None,
            tcp_flags: None,
            icmp_type: None,
            icmp_code: None,
            fragment: false,
            fragment_offset: None,
            more_fragments: false,
            truncated: false,
            malformed: None,
        };
        match family {
            Family::Ipv4 => s.ipv4(&p.data),
            Family::Ipv6 => s.ipv6(&p.data),
            Family::NonIp => {}
        }
        s
    }

    fn ipv4(&mut self, d: &[u8]) {
        if d.len() < 20 {
            self.truncated = true;
            return;
        }
        let version = d[0] >> 4;
        if version != 4 {
            self.malformed = Some(format!("version {version}"));
            return;
        }
        let header_len = usize::from(d[0] & 0x0f) * 4;
        if header_len < 20 {
            self.malformed = Some(format!("header length {header_len}"));
            return;
        }
        if d.len() < header_len {
            self.truncated = true;
            return;
        }
        self.src = Some(IpAddr::V4(Ipv4Addr::new(d[12], d[13], d[14], d[15])));
        self.dst = Some(IpAddr::V4(Ipv4Addr::new(d[16], d[17], d[18], d[19])));
        if usize::from(be16(d, 2)) > d.len() {
            self.truncated = true;
        }
        let frag = be16(d, 6);
        let offset = u32::from(frag & 0x1fff) * 8;
        let more = frag & 0x2000 != 0;
        if offset != 0 || more {
            self.fragment = true;
            self.fragment_offset = Some(offset);
            self.more_fragments = more;
        }
        self.set_protocol(d[9]);
        // Only the first fragment starts with the transport header.
        if offset == 0 {
            self.transport(d[9], &d[header_len..]);
        }
    }

    fn ipv6(&mut self, d: &[u8]) {
        if d.len() < 40 {
            self.truncated = true;
            return;
        }
        let version = d[0] >> 4;
        if version != 6 {
            self.malformed = Some(format!("version {version}"));
            return;
        }
        self.src = Some(IpAddr::V6(Ipv6Addr::from(addr16(d, 8))));
        self.dst = Some(IpAddr::V6(Ipv6Addr::from(addr16(d, 24))));
        let payload_len = usize::from(be16(d, 4));
        // Zero is a jumbogram or a segmentation-offload packet: no claim.
        if payload_len != 0 && 40 + payload_len > d.len() {
            self.truncated = true;
        }
        let mut next = d[6];
        let mut offset = 40;
        let mut walked = 0;
        loop {
            let hdr = &d[offset.min(d.len())..];
            let len = match next {
                IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS => {
                    hdr.get(1).map(|&l| (usize::from(l) + 1) * 8)
                }
                IPPROTO_AH => hdr.get(1).map(|&l| (usize::from(l) + 2) * 4),
                IPPROTO_FRAGMENT => Some(8),
                _ => {
                    self.set_protocol(next);
                    self.transport(next, hdr);
                    return;
                }
            };
            if walked == MAX_IPV6_EXT_HEADERS {
                self.malformed = Some(format!(
                    "more than {MAX_IPV6_EXT_HEADERS} extension headers"
                ));
                return;
            }
            walked += 1;
            let Some(len) = len.filter(|&len| hdr.len() >= len) else {
                self.truncated = true;
                return;
            };
            if next == IPPROTO_FRAGMENT {
                let frag = be16(hdr, 2);
                let frag_offset = u32::from(frag & 0xfff8);
                self.fragment = true;
                self.fragment_offset = Some(frag_offset);
                self.more_fragments = frag & 1 != 0;
                if frag_offset != 0 {
                    // What follows is the middle of the payload, not
                    // headers; the next header field still names its
                    // protocol.
                    self.set_protocol(hdr[0]);
                    return;
                }
            }
            next = hdr[0];
            offset += len;
        }
    }

    fn set_protocol(&mut self, proto: u8) {
        self.protocol = Some(proto);
        self.protocol_name = match proto {
            IPPROTO_TCP => Some("tcp"),
            IPPROTO_UDP => Some("udp"),
            IPPROTO_ICMP => Some("icmp"),
            IPPROTO_ICMPV6 => Some("icmpv6"),
            _ => None,
        };
    }

    /// Decodes what it can of a transport header; `l4` runs to the end of
    /// the captured bytes.
    fn transport(&mut self, proto: u8, l4: &[u8]) {
        let min_len = match proto {
            IPPROTO_TCP => {
                if let Some(&flags) = l4.get(13) {
                    let names = TCP_FLAG_NAMES
                        .iter()
                        .enumerate()
                        .filter(|(bit, _)| flags & (1 << bit) != 0)
                        .map(|(_, &name)| name)
                        .collect();
                    self.tcp_flags = Some(names);
                }
                let data_offset = l4.get(12).map_or(20, |&b| usize::from(b >> 4) * 4);
                data_offset.max(20)
            }
            IPPROTO_UDP => 8,
            // RFC 792 headers are 8 bytes; RFC 4443 fixes only 4.
            IPPROTO_ICMP => 8,
            IPPROTO_ICMPV6 => 4,
            _ => return,
        };
        if matches!(proto, IPPROTO_TCP | IPPROTO_UDP) && l4.len() >= 4 {
            self.src_port = Some(be16(l4, 0));
            self.dst_port = Some(be16(l4, 2));
        }
        if matches!(proto, IPPROTO_ICMP | IPPROTO_ICMPV6) {
            self.icmp_type = l4.first().copied();
            self.icmp_code = l4.get(1).copied();
        }
        if l4.len() < min_len {
            self.truncated = true;
        }
    }

    /// The summary as JSON, for `--json`.
    pub fn to_json(&self) -> serde_json::Value {
        // Serializing plain fields into a Value cannot fail.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// A well-known name for an ICMP type: echo and the error messages. Other
/// types (router and neighbor discovery, for instance) are shown by number,
/// which is how people look them up anyway.
fn icmp_type_name(proto: u8, icmp_type: u8) -> Option<&'static str> {
    match (proto, icmp_type) {
        (IPPROTO_ICMP, 0) | (IPPROTO_ICMPV6, 129) => Some("echo-reply"),
        (IPPROTO_ICMP, 8) | (IPPROTO_ICMPV6, 128) => Some("echo-request"),
        (IPPROTO_ICMP, 3) | (IPPROTO_ICMPV6, 1) => Some("unreachable"),
        (IPPROTO_ICMP, 11) | (IPPROTO_ICMPV6, 3) => Some("time-exceeded"),
        (IPPROTO_ICMP, 12) | (IPPROTO_ICMPV6, 4) => Some("parameter-problem"),
        (IPPROTO_ICMPV6, 2) => Some("packet-too-big"),
        _ => None,
    }
}

/// An address with an optional port, IPv6 in brackets when a port follows
/// so that the port cannot be read as part of the address.
struct Endpoint(IpAddr, Option<u16>);

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1) {
            (addr, None) => write!(f, "{addr}"),
            (IpAddr::V4(addr), Some(port)) => write!(f, "{addr}:{port}"),
            (IpAddr::V6(addr), Some(port)) => write!(f, "[{addr}]:{port}"),
        }
    }
}

impl fmt::Display for Summary {
    /// Renders e.g. `IPv4 10.0.0.1:5353 -> 10.0.0.2:53 udp len 60`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let family = match self.family {
            Family::Ipv4 => "IPv4",
            Family::Ipv6 => "IPv6",
            Family::NonIp => {
                return write!(
                    f,
                    "non-IP ethertype 0x{:04x} ({} bytes)",
                    self.ethertype, self.length
                );
            }
        };
        let (Some(src), Some(dst)) = (self.src, self.dst) else {
            return match &self.malformed {
                Some(why) => write!(f, "{family} malformed: {why} ({} bytes)", self.length),
                None => write!(f, "{family} truncated ({} bytes)", self.length),
            };
        };
        write!(
            f,
            "{family} {} -> {}",
            Endpoint(src, self.src_port),
            Endpoint(dst, self.dst_port)
        )?;
        if let Some(proto) = self.protocol {
            match self.protocol_name {
                Some(name) => write!(f, " {name}")?,
                None => write!(f, " proto {proto}")?,
            }
            if let Some(flags) = &self.tcp_flags {
                if flags.is_empty() {
                    write!(f, " [none]")?;
                } else {
                    write!(f, " [{}]", flags.join(","))?;
                }
            }
            if let Some(t) = self.icmp_type {
                match icmp_type_name(proto, t) {
                    Some(name) => write!(f, " {name}")?,
                    None => write!(f, " type {t}")?,
                }
                if let Some(code) = self.icmp_code.filter(|&c| c != 0) {
                    write!(f, " code {code}")?;
                }
            }
        }
        if let Some(offset) = self.fragment_offset {
            write!(f, " fragment offset {offset}")?;
            if self.more_fragments {
                write!(f, " (more)")?;
            }
        }
        write!(f, " len {}", self.length)?;
        if self.truncated {
            write!(f, " truncated")?;
        }
        if let Some(why) = &self.malformed {
            write!(f, " malformed: {why}")?;
        }
        Ok(())
    }
}

/// Describes a packet in one line, e.g.
/// `IPv6 [::1]:40000 -> [::1]:80 tcp [SYN] len 80`. Never panics.
pub fn summarize(p: &Packet) -> String {
    Summary::of(p).to_string()
}

/// The structured form of [`summarize`], as JSON.
pub fn summary_json(p: &Packet) -> serde_json::Value {
    Summary::of(p).to_json()
}

/// Big-endian u16 at `offset`; callers have checked the length.
fn be16(d: &[u8], offset: usize) -> u16 {
    u16::from_be_bytes([d[offset], d[offset + 1]])
}

/// The 16 bytes at `offset`; callers have checked the length.
fn addr16(d: &[u8], offset: usize) -> [u8; 16] {
    let mut a = [0u8; 16];
    a.copy_from_slice(&d[offset..offset + 16]);
    a
}
