//! Packet builders for test tables.
//!
//! Ordinary packets come from etherparse, which also fills in real length
//! fields and checksums. What etherparse will not build (IPv4 options of a
//! chosen size, IPv6 extension headers of arbitrary lengths, fragments of
//! any packet) is put together by hand here, with the length fields the
//! RFCs define; the filter does not check checksums, so the hand-built
//! parts carry zero transport checksums.
//!
//! Builders panic on arguments no packet could have (an IHL above 15, a
//! fragment offset above 13 bits): they are for tests, where a panic is
//! the clearest report.

#![allow(dead_code)]

use etherparse::{IpNumber, Ipv4Header, PacketBuilder, TcpHeader};
use portwall::packet::{ETH_P_IP, ETH_P_IPV6, ETH_P_OTHER, Packet};

/// Source address the builders without address parameters use.
pub const SRC4: [u8; 4] = [10, 0, 0, 1];
/// Destination address the builders without address parameters use.
pub const DST4: [u8; 4] = [10, 0, 0, 2];
/// `2001:db8::1`, a documentation address for IPv6 sources.
pub const SRC6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
/// `2001:db8::2`, a documentation address for IPv6 destinations.
pub const DST6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

/// IP protocol numbers, so that tables read as words.
pub const TCP: u8 = 6;
/// UDP's protocol number.
pub const UDP: u8 = 17;
/// ICMP's protocol number.
pub const ICMP: u8 = 1;
/// ICMPv6's next-header number.
pub const ICMPV6: u8 = 58;
/// IPv6 "no next header".
pub const NO_NEXT_HEADER: u8 = 59;

/// TCP flag bits, as in byte 13 of the TCP header.
pub const FIN: u8 = 0x01;
/// SYN flag bit.
pub const SYN: u8 = 0x02;
/// RST flag bit.
pub const RST: u8 = 0x04;
/// PSH flag bit.
pub const PSH: u8 = 0x08;
/// ACK flag bit.
pub const ACK: u8 = 0x10;
/// URG flag bit.
pub const URG: u8 = 0x20;

const TTL: u8 = 64;
const WINDOW: u16 = 64240;
const SEQ: u32 = 1;

fn ip(data: Vec<u8>, ethertype: u16) -> Packet {
    Packet { ethertype, data }
}

fn tcp_with_flags(sport: u16, dport: u16, flags: u8) -> TcpHeader {
    let mut h = TcpHeader::new(sport, dport, SEQ, WINDOW);
    h.fin = flags & FIN != 0;
    h.syn = flags & SYN != 0;
    h.rst = flags & RST != 0;
    h.psh = flags & PSH != 0;
    if flags & ACK != 0 {
        h.ack = true;
        h.acknowledgment_number = 1;
    }
    if flags & URG != 0 {
        h.urg = true;
    }
    h
}

// ---------------------------------------------------------------- IPv4

/// IPv4 TCP SYN (a connection attempt, the packet a firewall usually
/// decides on), no payload: 40 bytes.
pub fn ipv4_tcp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Packet {
    ipv4_tcp_flags(src, dst, sport, dport, SYN)
}

/// IPv4 TCP with the given flag bits (`SYN | ACK`, ...), no payload.
pub fn ipv4_tcp_flags(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, flags: u8) -> Packet {
    let builder =
        PacketBuilder::ipv4(src, dst, TTL).tcp_header(tcp_with_flags(sport, dport, flags));
    let mut data = Vec::with_capacity(builder.size(0));
    builder
        .write(&mut data, &[])
        .expect("etherparse writes TCP");
    ip(data, ETH_P_IP)
}

/// IPv4 UDP with an empty payload: 28 bytes.
pub fn ipv4_udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Packet {
    ipv4_udp_payload(src, dst, sport, dport, &[])
}

/// IPv4 UDP carrying `payload`.
pub fn ipv4_udp_payload(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Packet {
    let builder = PacketBuilder::ipv4(src, dst, TTL).udp(sport, dport);
    let mut data = Vec::with_capacity(builder.size(payload.len()));
    builder
        .write(&mut data, payload)
        .expect("etherparse writes UDP");
    ip(data, ETH_P_IP)
}

/// IPv4 ICMP with the given type and code, zero "rest of header" and no
/// data: 28 bytes.
pub fn ipv4_icmp(src: [u8; 4], dst: [u8; 4], icmp_type: u8, code: u8) -> Packet {
    let builder = PacketBuilder::ipv4(src, dst, TTL).icmpv4_raw(icmp_type, code, [0; 4]);
    let mut data = Vec::with_capacity(builder.size(0));
    builder
        .write(&mut data, &[])
        .expect("etherparse writes ICMP");
    ip(data, ETH_P_IP)
}

/// IPv4 with any protocol number and `payload` as the bytes after the IP
/// header (not interpreted, whatever the protocol).
pub fn ipv4_proto(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8]) -> Packet {
    let builder = PacketBuilder::ipv4(src, dst, TTL);
    let mut data = Vec::with_capacity(builder.size(payload.len()));
    builder
        .write(&mut data, IpNumber(proto), payload)
        .expect("etherparse writes IPv4");
    ip(data, ETH_P_IP)
}

/// IPv4 from [`SRC4`] to [`DST4`] with a header of `ihl_words * 4` bytes
/// (5..=15; the options are NOPs), then `transport` as given. Total
/// length and header checksum are right.
pub fn ipv4_with_options(ihl_words: u8, proto: u8, transport: &[u8]) -> Packet {
    assert!(
        (5..=15).contains(&ihl_words),
        "IHL {ihl_words} is not 5..=15"
    );
    let payload_len = u16::try_from(transport.len()).expect("transport fits an IPv4 packet");
    let mut header =
        Ipv4Header::new(payload_len, TTL, IpNumber(proto), SRC4, DST4).expect("length fits");
    let options = vec![1u8; usize::from(ihl_words - 5) * 4];
    header.options = options
        .as_slice()
        .try_into()
        .expect("options are a multiple of 4, at most 40");
    header.total_len = u16::from(ihl_words) * 4 + payload_len;
    header.header_checksum = header.calc_header_checksum();
    let mut data = header.to_bytes().to_vec();
    data.extend_from_slice(transport);
    ip(data, ETH_P_IP)
}

/// The same IPv4 packet made into a fragment: offset in 8-byte units
/// (below 8192), MF as given. DF is cleared, since a fragment cannot carry
/// it, and the header checksum is recomputed. Works on any packet with at
/// least a 20-byte header, whatever its contents.
pub fn with_ipv4_fragment(p: Packet, offset_units: u16, more_fragments: bool) -> Packet {
    assert!(
        offset_units < 0x2000,
        "fragment offset {offset_units} exceeds 13 bits"
    );
    let mut data = p.data;
    assert!(data.len() >= 20, "not an IPv4 packet: {} bytes", data.len());
    let field = offset_units | if more_fragments { 0x2000 } else { 0 };
    data[6..8].copy_from_slice(&field.to_be_bytes());
    let header_len = (usize::from(data[0] & 0x0f) * 4).clamp(20, data.len());
    data[10..12].fill(0);
    let checksum = internet_checksum(&data[..header_len]);
    data[10..12].copy_from_slice(&checksum.to_be_bytes());
    Packet {
        ethertype: p.ethertype,
        data,
    }
}

/// RFC 1071 checksum of `bytes` (with the checksum field zeroed).
pub fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // The loop folded the sum into 16 bits.
    !(sum as u16)
}

// ---------------------------------------------------------------- IPv6

/// IPv6 TCP SYN, no payload: 60 bytes.
pub fn ipv6_tcp(src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16) -> Packet {
    ipv6_tcp_flags(src, dst, sport, dport, SYN)
}

/// IPv6 TCP with the given flag bits, no payload.
pub fn ipv6_tcp_flags(src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16, flags: u8) -> Packet {
    let builder =
        PacketBuilder::ipv6(src, dst, TTL).tcp_header(tcp_with_flags(sport, dport, flags));
    let mut data = Vec::with_capacity(builder.size(0));
    builder
        .write(&mut data, &[])
        .expect("etherparse writes TCP");
    ip(data, ETH_P_IPV6)
}

/// IPv6 UDP with an empty payload: 48 bytes.
pub fn ipv6_udp(src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16) -> Packet {
    ipv6_udp_payload(src, dst, sport, dport, &[])
}

/// IPv6 UDP carrying `payload`.
pub fn ipv6_udp_payload(
    src: [u8; 16],
    dst: [u8; 16],
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Packet {
    let builder = PacketBuilder::ipv6(src, dst, TTL).udp(sport, dport);
    let mut data = Vec::with_capacity(builder.size(payload.len()));
    builder
        .write(&mut data, payload)
        .expect("etherparse writes UDP");
    ip(data, ETH_P_IPV6)
}

/// IPv6 ICMPv6 with the given type and code, zero message body: 48 bytes.
pub fn ipv6_icmp(src: [u8; 16], dst: [u8; 16], icmp_type: u8, code: u8) -> Packet {
    let builder = PacketBuilder::ipv6(src, dst, TTL).icmpv6_raw(icmp_type, code, [0; 4]);
    let mut data = Vec::with_capacity(builder.size(0));
    builder
        .write(&mut data, &[])
        .expect("etherparse writes ICMPv6");
    ip(data, ETH_P_IPV6)
}

/// IPv6 with any next-header number and `payload` after the 40-byte
/// header, no extension headers.
pub fn ipv6_proto(src: [u8; 16], dst: [u8; 16], proto: u8, payload: &[u8]) -> Packet {
    ipv6_with_ext(src, dst, &[], proto, payload)
}

/// One IPv6 extension header for [`ipv6_with_ext`]. The `len_units`
/// values go into the header's length byte as they are, so any length the
/// field can express is available, including ones a packet should not
/// have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ext {
    /// Hop-by-hop options (next header 0): `(len_units + 1) * 8` bytes.
    HopByHop {
        /// The header's length byte.
        len_units: u8,
    },
    /// Routing header (43): `(len_units + 1) * 8` bytes, segments left 0.
    Routing {
        /// The header's length byte.
        len_units: u8,
    },
    /// Destination options (60): `(len_units + 1) * 8` bytes.
    DestOpts {
        /// The header's length byte.
        len_units: u8,
    },
    /// Authentication header (51): `(len_units + 2) * 4` bytes.
    Ah {
        /// The header's length byte.
        len_units: u8,
    },
    /// Fragment header (44): 8 bytes.
    Fragment {
        /// Offset in 8-byte units (below 8192).
        offset_units: u16,
        /// The M flag.
        more: bool,
    },
}

impl Ext {
    /// The next-header number that announces this header.
    pub fn number(self) -> u8 {
        match self {
            Ext::HopByHop { .. } => 0,
            Ext::Routing { .. } => 43,
            Ext::DestOpts { .. } => 60,
            Ext::Ah { .. } => 51,
            Ext::Fragment { .. } => 44,
        }
    }

    /// The header's size in bytes, as its length field defines it.
    pub fn size(self) -> usize {
        match self {
            Ext::HopByHop { len_units }
            | Ext::Routing { len_units }
            | Ext::DestOpts { len_units } => (usize::from(len_units) + 1) * 8,
            Ext::Ah { len_units } => (usize::from(len_units) + 2) * 4,
            Ext::Fragment { .. } => 8,
        }
    }

    /// The header's bytes, with `next` as its next-header field.
    pub fn bytes(self, next: u8) -> Vec<u8> {
        let mut h = vec![0u8; self.size()];
        h[0] = next;
        match self {
            Ext::HopByHop { len_units } | Ext::DestOpts { len_units } => {
                h[1] = len_units;
                pad_options(&mut h[2..]);
            }
            Ext::Routing { len_units } => {
                h[1] = len_units;
                // Routing type 253 is for experiments (RFC 4727); with no
                // segments left every node ignores the header anyway.
                h[2] = 253;
                h[3] = 0;
            }
            Ext::Ah { len_units } => {
                h[1] = len_units;
                // SPI 0x100 (1..=255 are reserved), sequence number 1; a
                // header too short for them keeps what fits.
                for (i, b) in [0, 0, 1, 0, 0, 0, 0, 1].into_iter().enumerate() {
                    if let Some(slot) = h.get_mut(4 + i) {
                        *slot = b;
                    }
                }
            }
            Ext::Fragment { offset_units, more } => {
                assert!(
                    offset_units < 0x2000,
                    "fragment offset {offset_units} exceeds 13 bits"
                );
                let field = offset_units << 3 | u16::from(more);
                h[2..4].copy_from_slice(&field.to_be_bytes());
                h[4..8].copy_from_slice(&0x1234_5678u32.to_be_bytes());
            }
        }
        h
    }
}

/// Fills an options area with PadN options, so that the header is a valid
/// TLV sequence for parsers that read it. Areas here are always even
/// (header sizes are multiples of 8, minus 2), so no Pad1 is needed.
fn pad_options(area: &mut [u8]) {
    let mut rest = area;
    while !rest.is_empty() {
        // A PadN option is at most 2 + 255 bytes; 256 keeps the rest even.
        let n = rest.len().min(256);
        rest[0] = 1;
        rest[1] = u8::try_from(n - 2).expect("n is at most 256");
        rest[2..n].fill(0);
        rest = &mut rest[n..];
    }
}

/// IPv6 with the extension headers `exts` in the order given (even an
/// order the RFC forbids), each one's next header naming the following
/// one and the last naming `final_proto`, then `transport` as given. The
/// payload length counts the extension headers and the transport bytes.
pub fn ipv6_with_ext(
    src: [u8; 16],
    dst: [u8; 16],
    exts: &[Ext],
    final_proto: u8,
    transport: &[u8],
) -> Packet {
    let nexts: Vec<u8> = exts
        .iter()
        .skip(1)
        .map(|e| e.number())
        .chain(std::iter::once(final_proto))
        .collect();
    let mut payload = Vec::new();
    for (ext, next) in exts.iter().zip(nexts) {
        payload.extend(ext.bytes(next));
    }
    payload.extend_from_slice(transport);

    let first = exts.first().map_or(final_proto, |e| e.number());
    let payload_len = u16::try_from(payload.len()).expect("payload fits an IPv6 packet");
    let mut data = Vec::with_capacity(40 + payload.len());
    data.extend_from_slice(&[0x60, 0, 0, 0]);
    data.extend_from_slice(&payload_len.to_be_bytes());
    data.extend_from_slice(&[first, TTL]);
    data.extend_from_slice(&src);
    data.extend_from_slice(&dst);
    data.extend(payload);
    ip(data, ETH_P_IPV6)
}

// ------------------------------------------------------- raw transport

/// A 20-byte TCP header with SYN set and a zero checksum (the checksum
/// needs the IP addresses, which this helper does not know).
pub fn tcp_header(sport: u16, dport: u16) -> Vec<u8> {
    let mut h = tcp_with_flags(sport, dport, SYN);
    h.checksum = 0;
    h.to_bytes().to_vec()
}

/// A UDP header (length field right, checksum zero, which IPv4 reads as
/// "none") followed by `payload`.
pub fn udp_header(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(8 + payload.len()).expect("payload fits a UDP datagram");
    let mut d = Vec::with_capacity(usize::from(len));
    d.extend_from_slice(&sport.to_be_bytes());
    d.extend_from_slice(&dport.to_be_bytes());
    d.extend_from_slice(&len.to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(payload);
    d
}

// ------------------------------------------------------------- others

/// The first `n` bytes of the packet (all of it if it is shorter), with
/// its length fields left claiming the full size, as a short capture does.
pub fn truncate(p: Packet, n: usize) -> Packet {
    let mut data = p.data;
    data.truncate(n);
    Packet {
        ethertype: p.ethertype,
        data,
    }
}

/// A non-IP packet (EtherType `ETH_P_OTHER`) with the given bytes.
pub fn non_ip(bytes: &[u8]) -> Packet {
    Packet {
        ethertype: ETH_P_OTHER,
        data: bytes.to_vec(),
    }
}

// ------------------------------------------------------------ odd packets
//
// Packets a parser gets wrong: header length fields that lie, headers
// cut at every byte, extension chains at and past the limit, fragments.
// The random ones come from the test generators' `Rng`, so a failing case
// reproduces from its seed.

use super::generate::{PORTS, Rng};

/// IPv4 from [`SRC4`] to [`DST4`] whose header is the plain 20 bytes but
/// whose IHL field says `ihl_field` (0..=15) words: under 5 is malformed,
/// over 5 claims options that are really the first bytes of `transport`,
/// or lie past the end of a short packet. Lengths and checksum are right
/// for what is there.
pub fn ipv4_with_ihl_field(ihl_field: u8, proto: u8, transport: &[u8]) -> Packet {
    assert!(ihl_field <= 15, "IHL {ihl_field} does not fit 4 bits");
    let mut p = ipv4_with_options(5, proto, transport);
    p.data[0] = 0x40 | ihl_field;
    p.data[10..12].fill(0);
    let checksum = internet_checksum(&p.data[..20]);
    p.data[10..12].copy_from_slice(&checksum.to_be_bytes());
    p
}

/// An 8-byte ICMP (or ICMPv6) header: type, code, zero checksum, and the
/// "rest of header" an echo request carries (identifier 1, sequence 1).
pub fn icmp_header(icmp_type: u8, code: u8) -> Vec<u8> {
    vec![icmp_type, code, 0, 0, 0, 1, 0, 1]
}

/// Every prefix of `p` from `from` bytes up to its full length, each with
/// the length fields of the whole packet (as a short capture has them).
pub fn every_truncation(p: &Packet, from: usize) -> Vec<Packet> {
    (from..=p.data.len())
        .map(|n| truncate(p.clone(), n))
        .collect()
}

/// The same bytes under another EtherType: an IPv4 packet the kernel
/// calls IPv6, or the reverse (the EtherType decides, not the version
/// nibble).
pub fn with_ethertype(p: Packet, ethertype: u16) -> Packet {
    Packet {
        ethertype,
        data: p.data,
    }
}

/// A random IPv6 extension header of any kind, with length fields that
/// are usually small and sometimes large; a fragment header is first or
/// non-first at random.
pub fn random_ext(rng: &mut Rng) -> Ext {
    let len_units = match rng.below(10) {
        0..=5 => 0,
        6..=8 => 1 + rng.below(3) as u8,
        _ => rng.below(32) as u8,
    };
    match rng.below(5) {
        0 => Ext::HopByHop { len_units },
        1 => Ext::Routing { len_units },
        2 => Ext::DestOpts { len_units },
        3 => Ext::Ah { len_units },
        _ => Ext::Fragment {
            offset_units: if rng.chance(60) {
                0
            } else {
                1 + rng.below(0x1fff) as u16
            },
            more: rng.chance(50),
        },
    }
}

/// A chain of `count` random extension headers, mixed kinds.
pub fn random_ext_chain(rng: &mut Rng, count: usize) -> Vec<Ext> {
    (0..count).map(|_| random_ext(rng)).collect()
}

/// What comes after the IP headers: a transport header of the packet's
/// protocol (ports from [`PORTS`]) and a short random payload, or random
/// bytes for other protocols.
fn odd_transport(rng: &mut Rng, proto: u8) -> Vec<u8> {
    let sport = *rng.pick(&PORTS);
    let dport = *rng.pick(&PORTS);
    let payload: Vec<u8> = (0..rng.below(24)).map(|_| rng.next() as u8).collect();
    let mut t = match proto {
        TCP => tcp_header(sport, dport),
        UDP => udp_header(sport, dport, &[]),
        ICMP | ICMPV6 => {
            let icmp_type = *rng.pick(&[0u8, 3, 8, 11, 128, 129, 135, 136, 255]);
            icmp_header(icmp_type, rng.below(4) as u8)
        }
        _ => Vec::new(),
    };
    t.extend(payload);
    t
}

fn odd_proto(rng: &mut Rng, v6: bool) -> u8 {
    let icmp = if v6 { ICMPV6 } else { ICMP };
    let random = rng.next() as u8;
    // Mostly the transports filters ask about, and each family's other
    // ICMP (ICMPv6 in IPv4, ICMP in IPv6), which is not `icmp`.
    let other_icmp = if v6 { ICMP } else { ICMPV6 };
    *rng.pick(&[
        TCP,
        TCP,
        UDP,
        UDP,
        icmp,
        icmp,
        other_icmp,
        NO_NEXT_HEADER,
        132,
        0,
        44,
        random,
    ])
}

/// A random odd IPv4 packet: IHL 5 to 15 with real options, or an IHL
/// field under 5 or claiming more than is there; often a fragment (first
/// or not); often cut short, but never under the 20 bytes the kernel's
/// test run needs.
pub fn odd_ipv4(rng: &mut Rng) -> Packet {
    let proto = odd_proto(rng, false);
    let transport = odd_transport(rng, proto);
    let mut p = match rng.below(10) {
        0..=5 => ipv4_with_options(5, proto, &transport),
        6 | 7 => ipv4_with_options(6 + rng.below(10) as u8, proto, &transport),
        _ => ipv4_with_ihl_field(rng.below(16) as u8, proto, &transport),
    };
    if rng.chance(25) {
        let offset = if rng.chance(50) {
            0
        } else {
            1 + rng.below(0x1fff) as u16
        };
        p = with_ipv4_fragment(p, offset, rng.chance(50));
    }
    let min = 20;
    if rng.chance(30) && p.data.len() > min {
        let n = min + rng.below((p.data.len() - min) as u64) as usize;
        p = truncate(p, n);
    }
    p
}

/// A random odd IPv6 packet: no extension headers, a few, or a chain at
/// and past the limit of 8 (mixed kinds, AH, fragments first and not);
/// often cut short, but never under the 40 bytes the kernel's test run
/// needs.
pub fn odd_ipv6(rng: &mut Rng) -> Packet {
    let proto = odd_proto(rng, true);
    let count = match rng.below(10) {
        0..=2 => 0,
        3..=5 => 1 + rng.below(3) as usize,
        6 => 7 + rng.below(3) as usize,
        _ => 4 + rng.below(10) as usize,
    };
    let exts = random_ext_chain(rng, count);
    let transport = odd_transport(rng, proto);
    let mut p = ipv6_with_ext(SRC6, DST6, &exts, proto, &transport);
    let min = 40;
    if rng.chance(30) && p.data.len() > min {
        let n = min + rng.below((p.data.len() - min) as u64) as usize;
        p = truncate(p, n);
    }
    p
}

/// A random odd packet of either family, sometimes under the other
/// family's EtherType, sometimes not IP at all. Always long enough for
/// the kernel's test run.
pub fn odd_packet(rng: &mut Rng) -> Packet {
    match rng.below(40) {
        0..=17 => odd_ipv4(rng),
        18..=35 => odd_ipv6(rng),
        36 => {
            // Padded to the 40 bytes an IPv6 EtherType needs in a test run.
            let mut p = with_ethertype(odd_ipv4(rng), ETH_P_IPV6);
            if p.data.len() < 40 {
                p.data.resize(40, 0);
            }
            p
        }
        37 => with_ethertype(odd_ipv6(rng), ETH_P_IP),
        _ => non_ip(
            &(0..rng.below(80))
                .map(|_| rng.next() as u8)
                .collect::<Vec<_>>(),
        ),
    }
}

/// A fixed corpus of the odd cases, each cut at every byte the kernel's
/// test run accepts: IPv4 with every IHL field value (real options, and
/// claims past the end), IPv4 fragments first and not, IPv6 with chains
/// of every kind and of 0 to 10 headers (the limit is 8), IPv6 fragments
/// first and not, ICMP and ICMPv6.
pub fn odd_corpus() -> Vec<Packet> {
    let mut whole = Vec::new();
    let transports = [
        (TCP, tcp_header(1024, 80)),
        (UDP, udp_header(53, 53, &[1, 2, 3, 4])),
        (ICMP, icmp_header(8, 0)),
    ];
    for (proto, t) in &transports {
        for ihl in 5..=15 {
            whole.push(ipv4_with_options(ihl, *proto, t));
        }
        for ihl in 0..=15 {
            whole.push(ipv4_with_ihl_field(ihl, *proto, t));
        }
        let p = ipv4_with_options(5, *proto, t);
        whole.push(with_ipv4_fragment(p.clone(), 0, true));
        whole.push(with_ipv4_fragment(p.clone(), 1, false));
        whole.push(with_ipv4_fragment(p, 0x1fff, true));
    }
    let transports6 = [
        (TCP, tcp_header(1024, 443)),
        (UDP, udp_header(5353, 53, &[])),
        (ICMPV6, icmp_header(128, 0)),
    ];
    let kinds = [
        Ext::HopByHop { len_units: 0 },
        Ext::Routing { len_units: 1 },
        Ext::DestOpts { len_units: 0 },
        Ext::Ah { len_units: 1 },
        Ext::Ah { len_units: 4 },
        Ext::Fragment {
            offset_units: 0,
            more: true,
        },
        Ext::Fragment {
            offset_units: 7,
            more: false,
        },
    ];
    for (proto, t) in &transports6 {
        for count in 0..=10 {
            // One chain of each kind alone, and one of the kinds mixed.
            for kind in kinds {
                whole.push(ipv6_with_ext(SRC6, DST6, &vec![kind; count], *proto, t));
            }
            let mixed: Vec<Ext> = (0..count).map(|i| kinds[i % kinds.len()]).collect();
            whole.push(ipv6_with_ext(SRC6, DST6, &mixed, *proto, t));
        }
    }
    whole
        .iter()
        .flat_map(|p| {
            let min = if p.ethertype == ETH_P_IPV6 { 40 } else { 20 };
            every_truncation(p, min.min(p.data.len()))
        })
        .collect()
}
