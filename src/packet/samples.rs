//! A few built-in packets for trying a filter without a capture file.
//!
//! Built by hand (a handful of fixed byte layouts, not worth a packet
//! crate in the binary). Checksums are left 0: no filter reads them.

use super::Packet;

const CLIENT4: [u8; 4] = [192, 0, 2, 10];
const SERVER4: [u8; 4] = [198, 51, 100, 1];
const CLIENT6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];
const SERVER6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
];

/// A named sample packet.
pub struct Sample {
    pub name: &'static str,
    pub packet: Packet,
}

/// The built-in packets: common egress traffic of a service, IPv4 and IPv6.
pub fn samples() -> Vec<Sample> {
    let dns_query = udp(40000, 53, &[0u8; 29]);
    vec![
        sample("DNS query over IPv4", ipv4(17, &dns_query)),
        sample("HTTP SYN over IPv4", ipv4(6, &tcp_syn(40001, 80))),
        sample("HTTPS SYN over IPv4", ipv4(6, &tcp_syn(40002, 443))),
        sample("ping over IPv4", ipv4(1, &icmp(8))),
        sample("NTP over IPv4", ipv4(17, &udp(123, 123, &[0u8; 48]))),
        sample("DNS query over IPv6", ipv6(17, &[], &dns_query)),
        sample(
            "HTTP SYN over IPv6 behind a hop-by-hop header",
            ipv6(0, &[6, 0, 1, 4, 0, 0, 0, 0], &tcp_syn(40003, 80)),
        ),
        sample("SSH SYN over IPv6", ipv6(6, &[], &tcp_syn(40004, 22))),
        sample("ping over IPv6", ipv6(58, &[], &icmp(128))),
    ]
}

fn sample(name: &'static str, packet: Packet) -> Sample {
    Sample { name, packet }
}

fn ipv4(protocol: u8, payload: &[u8]) -> Packet {
    let total = (20 + payload.len()) as u16;
    let mut p = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, protocol, 0, 0];
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&CLIENT4);
    p.extend_from_slice(&SERVER4);
    p.extend_from_slice(payload);
    Packet::from_ip(p)
}

/// `ext` is a ready-made extension header chain whose last next-header
/// field already names the transport.
fn ipv6(next: u8, ext: &[u8], payload: &[u8]) -> Packet {
    let len = (ext.len() + payload.len()) as u16;
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&len.to_be_bytes());
    p.extend_from_slice(&[next, 64]);
    p.extend_from_slice(&CLIENT6);
    p.extend_from_slice(&SERVER6);
    p.extend_from_slice(ext);
    p.extend_from_slice(payload);
    Packet::from_ip(p)
}

fn udp(src: u16, dst: u16, payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::with_capacity(8 + payload.len());
    h.extend_from_slice(&src.to_be_bytes());
    h.extend_from_slice(&dst.to_be_bytes());
    h.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(payload);
    h
}

fn tcp_syn(src: u16, dst: u16) -> Vec<u8> {
    let mut h = Vec::with_capacity(20);
    h.extend_from_slice(&src.to_be_bytes());
    h.extend_from_slice(&dst.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
    h
}

fn icmp(kind: u8) -> Vec<u8> {
    vec![kind, 0, 0, 0, 0, 1, 0, 1]
}
