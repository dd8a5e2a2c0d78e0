//! Packets from the outside world: capture files, hex strings, one-line
//! summaries, and the test packet builders themselves.

mod common;

use std::borrow::Cow;
use std::io::Cursor;
use std::time::Duration;

use common::packets::*;
use etherparse::{IpNumber, Ipv4Slice, Ipv6Slice, NetSlice, SlicedPacket, TransportSlice};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter, RawPcapPacket};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
use pcap_file::pcapng::blocks::simple_packet::SimplePacketBlock;
use pcap_file::pcapng::{PcapNgWriter, RawBlock};
use pcap_file::{DataLink, Endianness, TsResolution};
use portwall::packet::capture::{CaptureError, read_capture, read_capture_from};
use portwall::packet::hex::{HexError, parse_hex};
use portwall::packet::summary::{Family, Summary, summarize, summary_json};
use portwall::packet::{ETH_P_IP, ETH_P_IPV6, ETH_P_OTHER, Packet};

// ======================================================== frame builders

const ETH_P_ARP: u16 = 0x0806;

fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Ethernet with VLAN tags: each `(tpid, vlan id)` in order, then the
/// inner EtherType.
fn eth_vlan(tags: &[(u16, u16)], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
    for &(tpid, vid) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&vid.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Linux cooked header v1: packet type, ARPHRD, address length, 8 address
/// bytes, protocol.
fn sll(protocol: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0, 0, 0, 1, 0, 6, 0x02, 0, 0, 0, 0, 1, 0, 0];
    f.extend_from_slice(&protocol.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Linux cooked header v2: protocol, reserved, interface index, ARPHRD,
/// packet type, address length, 8 address bytes.
fn sll2(protocol: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = protocol.to_be_bytes().to_vec();
    f.extend_from_slice(&[0, 0, 0, 0, 0, 3, 0, 1, 4, 6, 0x02, 0, 0, 0, 0, 1, 0, 0]);
    f.extend_from_slice(payload);
    f
}

fn pcap_bytes(
    linktype: u32,
    endianness: Endianness,
    resolution: TsResolution,
    frames: &[Vec<u8>],
) -> Vec<u8> {
    let header = PcapHeader {
        datalink: DataLink::from(linktype),
        endianness,
        ts_resolution: resolution,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(Vec::new(), header).unwrap();
    for (i, f) in frames.iter().enumerate() {
        let packet = PcapPacket::new(Duration::from_millis(i as u64), f.len() as u32, f);
        w.write_packet(&packet).unwrap();
    }
    w.into_writer()
}

fn pcap(linktype: u32, frames: &[Vec<u8>]) -> Vec<u8> {
    pcap_bytes(
        linktype,
        Endianness::Little,
        TsResolution::MicroSecond,
        frames,
    )
}

/// A pcapng section with the given interfaces `(linktype, snaplen)` and
/// enhanced packet blocks `(interface, frame)`.
fn pcapng_bytes(
    endianness: Endianness,
    interfaces: &[(u32, u32)],
    packets: &[(u32, Vec<u8>)],
) -> Vec<u8> {
    let mut w = PcapNgWriter::with_endianness(Vec::new(), endianness).unwrap();
    for &(linktype, snaplen) in interfaces {
        w.write_pcapng_block(InterfaceDescriptionBlock {
            linktype: DataLink::from(linktype),
            snaplen,
            options: vec![],
        })
        .unwrap();
    }
    for (i, (interface, frame)) in packets.iter().enumerate() {
        w.write_pcapng_block(EnhancedPacketBlock {
            interface_id: *interface,
            timestamp: Duration::from_millis(i as u64),
            original_len: frame.len() as u32,
            data: Cow::Borrowed(frame),
            options: vec![],
        })
        .unwrap();
    }
    w.into_inner()
}

fn read(bytes: &[u8]) -> Result<Vec<Packet>, CaptureError> {
    read_capture_from(Cursor::new(bytes))
}

fn v4_udp() -> Packet {
    ipv4_udp_payload(SRC4, DST4, 5353, 53, &[0xab; 32])
}

fn v6_tcp() -> Packet {
    ipv6_tcp(SRC6, DST6, 40000, 443)
}

// ======================================================== pcap

#[test]
fn pcap_ethernet_in_every_byte_order_and_resolution() {
    let (a, b) = (v4_udp(), v6_tcp());
    let frames = [eth(ETH_P_IP, &a.data), eth(ETH_P_IPV6, &b.data)];
    for endianness in [Endianness::Little, Endianness::Big] {
        for resolution in [TsResolution::MicroSecond, TsResolution::NanoSecond] {
            let file = pcap_bytes(1, endianness, resolution, &frames);
            let packets = read(&file).unwrap();
            assert_eq!(
                packets,
                vec![a.clone(), b.clone()],
                "{endianness:?} {resolution:?}"
            );
        }
    }
}

#[test]
fn pcap_ethernet_non_ip_keeps_its_ethertype() {
    let arp = vec![0, 1, 8, 0, 6, 4, 0, 1];
    let packets = read(&pcap(1, &[eth(ETH_P_ARP, &arp)])).unwrap();
    assert_eq!(
        packets,
        vec![Packet {
            ethertype: ETH_P_ARP,
            data: arp
        }]
    );
}

#[test]
fn pcap_ethernet_8023_length_field_becomes_llc_protocol() {
    // 0x0026 is a length, not an EtherType; the kernel says ETH_P_802_2.
    let llc = vec![0x42, 0x42, 0x03, 0, 0, 0];
    let packets = read(&pcap(1, &[eth(0x0026, &llc)])).unwrap();
    assert_eq!(packets[0].ethertype, 0x0004);
    assert_eq!(packets[0].data, llc);
}

#[test]
fn pcap_ethernet_vlan_tags_are_skipped() {
    let p = v4_udp();
    let one = eth_vlan(&[(0x8100, 10)], ETH_P_IP, &p.data);
    let two = eth_vlan(&[(0x88a8, 100), (0x8100, 10)], ETH_P_IP, &p.data);
    let q = v6_tcp();
    let v6 = eth_vlan(&[(0x8100, 7)], ETH_P_IPV6, &q.data);
    let packets = read(&pcap(1, &[one, two, v6])).unwrap();
    assert_eq!(packets, vec![p.clone(), p, q]);
}

#[test]
fn pcap_ethernet_third_vlan_tag_is_left_alone() {
    let p = v4_udp();
    let three = eth_vlan(&[(0x88a8, 1), (0x8100, 2), (0x8100, 3)], ETH_P_IP, &p.data);
    let packets = read(&pcap(1, &[three])).unwrap();
    assert_eq!(packets[0].ethertype, 0x8100);
    assert_eq!(&packets[0].data[..2], &[0, 3]);
}

#[test]
fn pcap_ethernet_padding_is_trimmed_to_the_ip_length() {
    // A 40-byte TCP SYN travels in a 60-byte minimum Ethernet frame.
    let p = ipv4_tcp(SRC4, DST4, 1000, 80);
    let mut padded = p.data.clone();
    padded.resize(46, 0);
    let q = ipv6_udp(SRC6, DST6, 1, 2);
    let mut padded6 = q.data.clone();
    padded6.extend_from_slice(&[0; 6]);
    let packets = read(&pcap(
        1,
        &[eth(ETH_P_IP, &padded), eth(ETH_P_IPV6, &padded6)],
    ))
    .unwrap();
    assert_eq!(packets, vec![p, q]);
}

#[test]
fn pcap_short_capture_keeps_the_captured_bytes() {
    // tcpdump -s 54: orig_len (the wire length) exceeds snaplen.
    let p = ipv4_udp_payload(SRC4, DST4, 1, 2, &[0; 1000]);
    let frame = eth(ETH_P_IP, &p.data);
    let header = PcapHeader {
        snaplen: 54,
        endianness: Endianness::Little,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(Vec::new(), header).unwrap();
    w.write_raw_packet(&RawPcapPacket {
        ts_sec: 0,
        ts_frac: 0,
        incl_len: 54,
        orig_len: frame.len() as u32,
        data: Cow::Borrowed(&frame[..54]),
    })
    .unwrap();
    let packets = read(&w.into_writer()).unwrap();
    assert_eq!(packets, vec![truncate(p, 40)]);
}

#[test]
fn pcap_raw_ip_uses_the_version_nibble() {
    let (a, b) = (v4_udp(), v6_tcp());
    let junk = vec![0x12, 0x34, 0x56];
    let packets = read(&pcap(
        101,
        &[a.data.clone(), b.data.clone(), junk.clone(), vec![]],
    ))
    .unwrap();
    assert_eq!(
        packets,
        vec![
            a,
            b,
            Packet {
                ethertype: ETH_P_OTHER,
                data: junk
            },
            Packet {
                ethertype: ETH_P_OTHER,
                data: vec![]
            },
        ]
    );
}

#[test]
fn pcap_linktype_ipv4_and_ipv6_trust_the_link_type() {
    let a = v4_udp();
    let packets = read(&pcap(228, &[a.data.clone(), vec![0x60; 3]])).unwrap();
    assert_eq!(packets[0], a);
    assert_eq!(
        packets[1],
        Packet {
            ethertype: ETH_P_IP,
            data: vec![0x60; 3]
        }
    );

    let b = v6_tcp();
    let packets = read(&pcap(229, std::slice::from_ref(&b.data))).unwrap();
    assert_eq!(packets, vec![b]);
}

#[test]
fn pcap_linux_sll_and_sll2() {
    let (a, b) = (v4_udp(), v6_tcp());
    let packets = read(&pcap(
        113,
        &[sll(ETH_P_IP, &a.data), sll(ETH_P_IPV6, &b.data)],
    ))
    .unwrap();
    assert_eq!(packets, vec![a.clone(), b.clone()]);
    let packets = read(&pcap(
        276,
        &[sll2(ETH_P_IP, &a.data), sll2(ETH_P_IPV6, &b.data)],
    ))
    .unwrap();
    assert_eq!(packets, vec![a.clone(), b]);

    // libpcap re-inserts an offloaded VLAN tag after the cooked header.
    let mut tagged = vec![0, 5];
    tagged.extend_from_slice(&ETH_P_IP.to_be_bytes());
    tagged.extend_from_slice(&a.data);
    let packets = read(&pcap(113, &[sll(0x8100, &tagged)])).unwrap();
    assert_eq!(packets, vec![a]);
}

#[test]
fn pcap_unsupported_link_type_names_it_and_lists_the_supported_ones() {
    let err = read(&pcap(147, &[vec![1, 2, 3]])).unwrap_err();
    assert!(
        matches!(
            err,
            CaptureError::UnsupportedLinkType {
                linktype: 147,
                packet: None
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("unsupported link type 147"), "{msg}");
    for n in ["1 (Ethernet)", "101", "113", "228", "229", "276"] {
        assert!(msg.contains(n), "{msg} lacks {n}");
    }
}

#[test]
fn pcap_frame_too_short_names_the_packet() {
    let ok = eth(ETH_P_IP, &v4_udp().data);
    let err = read(&pcap(1, &[ok.clone(), vec![0; 10]])).unwrap_err();
    assert!(
        matches!(
            err,
            CaptureError::TooShort {
                packet: 2,
                linktype: 1,
                len: 10,
                need: 14,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with("packet 2: 10-byte frame"),
        "{err}"
    );

    let cut_tag = eth(0x8100, &[0, 1]);
    let err = read(&pcap(1, &[ok, cut_tag])).unwrap_err();
    assert!(
        matches!(
            err,
            CaptureError::TooShort {
                packet: 2,
                need: 18,
                ..
            }
        ),
        "{err:?}"
    );

    let err = read(&pcap(113, &[vec![0; 15]])).unwrap_err();
    assert!(
        matches!(
            err,
            CaptureError::TooShort {
                packet: 1,
                linktype: 113,
                need: 16,
                ..
            }
        ),
        "{err:?}"
    );
    let err = read(&pcap(276, &[vec![0; 19]])).unwrap_err();
    assert!(
        matches!(
            err,
            CaptureError::TooShort {
                packet: 1,
                linktype: 276,
                need: 20,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn pcap_cut_in_the_middle_of_a_record() {
    let frames = [
        eth(ETH_P_IP, &v4_udp().data),
        eth(ETH_P_IPV6, &v6_tcp().data),
    ];
    let file = pcap(1, &frames);
    let err = read(&file[..file.len() - 5]).unwrap_err();
    assert!(
        matches!(
            err,
            CaptureError::Malformed {
                format: "pcap",
                packet: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("ends in the middle of a record"),
        "{err}"
    );
    // A header alone is a valid, empty capture.
    assert_eq!(read(&file[..24]).unwrap(), vec![]);
}

// ======================================================== pcapng

#[test]
fn pcapng_ethernet_both_byte_orders() {
    let (a, b) = (v4_udp(), v6_tcp());
    for endianness in [Endianness::Little, Endianness::Big] {
        let file = pcapng_bytes(
            endianness,
            &[(1, 0)],
            &[
                (0, eth(ETH_P_IP, &a.data)),
                (0, eth_vlan(&[(0x8100, 3)], ETH_P_IPV6, &b.data)),
            ],
        );
        assert_eq!(
            read(&file).unwrap(),
            vec![a.clone(), b.clone()],
            "{endianness:?}"
        );
    }
}

#[test]
fn pcapng_interfaces_have_their_own_link_types() {
    let (a, b) = (v4_udp(), v6_tcp());
    let file = pcapng_bytes(
        Endianness::Big,
        &[(1, 0), (101, 0), (276, 0)],
        &[
            (2, sll2(ETH_P_IPV6, &b.data)),
            (1, a.data.clone()),
            (0, eth(ETH_P_IP, &a.data)),
        ],
    );
    assert_eq!(read(&file).unwrap(), vec![b, a.clone(), a]);
}

#[test]
fn pcapng_unsupported_link_type_only_matters_when_used() {
    let a = v4_udp();
    let unused = pcapng_bytes(
        Endianness::Little,
        &[(9, 0), (101, 0)],
        &[(1, a.data.clone())],
    );
    assert_eq!(read(&unused).unwrap(), vec![a.clone()]);

    let used = pcapng_bytes(
        Endianness::Little,
        &[(101, 0), (9, 0)],
        &[(0, a.data.clone()), (1, vec![0xff, 3])],
    );
    let err = read(&used).unwrap_err();
    assert!(
        matches!(
            err,
            CaptureError::UnsupportedLinkType {
                linktype: 9,
                packet: Some(2)
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("unsupported link type 9 at packet 2; supported"),
        "{err}"
    );
}

#[test]
fn pcapng_simple_packet_block_is_cut_to_original_length_and_snaplen() {
    let a = v4_udp();
    let mut w = PcapNgWriter::with_endianness(Vec::new(), Endianness::Little).unwrap();
    w.write_pcapng_block(InterfaceDescriptionBlock {
        linktype: DataLink::RAW,
        snaplen: 0,
        options: vec![],
    })
    .unwrap();
    w.write_pcapng_block(SimplePacketBlock {
        original_len: a.data.len() as u32,
        data: Cow::Borrowed(&a.data),
    })
    .unwrap();
    // 57 bytes, which the block pads to 60; the original length says
    // where the packet ends.
    let mut odd = a.data[..57].to_vec();
    odd[2..4].copy_from_slice(&57u16.to_be_bytes());
    w.write_pcapng_block(SimplePacketBlock {
        original_len: 57,
        data: Cow::Borrowed(&odd),
    })
    .unwrap();
    let packets = read(&w.into_inner()).unwrap();
    assert_eq!(packets, vec![a.clone(), Packet::from_ip(odd)]);

    // With a snapshot length, the block holds only that much of the packet.
    let mut w = PcapNgWriter::with_endianness(Vec::new(), Endianness::Big).unwrap();
    w.write_pcapng_block(InterfaceDescriptionBlock {
        linktype: DataLink::RAW,
        snaplen: 38,
        options: vec![],
    })
    .unwrap();
    w.write_pcapng_block(SimplePacketBlock {
        original_len: a.data.len() as u32,
        data: Cow::Borrowed(&a.data[..38]),
    })
    .unwrap();
    assert_eq!(read(&w.into_inner()).unwrap(), vec![truncate(a, 38)]);
}

#[test]
fn pcapng_packet_on_an_undescribed_interface() {
    let mut file = pcapng_bytes(Endianness::Big, &[(101, 0)], &[]);
    // pcap-file's writer refuses this block, so it is written by hand.
    let data = v4_udp().data;
    let mut body = Vec::new();
    for field in [3u32, 0, 0, data.len() as u32, data.len() as u32] {
        body.extend_from_slice(&field.to_be_bytes());
    }
    body.extend_from_slice(&data);
    let len = 12 + body.len() as u32;
    file.extend_from_slice(&6u32.to_be_bytes());
    file.extend_from_slice(&len.to_be_bytes());
    file.extend_from_slice(&body);
    file.extend_from_slice(&len.to_be_bytes());
    let err = read(&file).unwrap_err();
    assert!(
        matches!(
            err,
            CaptureError::UnknownInterface {
                packet: 1,
                interface: 3,
                count: 1
            }
        ),
        "{err:?}"
    );
}

#[test]
fn pcapng_blocks_other_than_packets_are_not_decoded() {
    // A name-resolution block whose name is not UTF-8 would make pcap-file's
    // full decoder fail; it holds nothing we need.
    let a = v4_udp();
    let mut w = PcapNgWriter::with_endianness(Vec::new(), Endianness::Little).unwrap();
    w.write_pcapng_block(InterfaceDescriptionBlock {
        linktype: DataLink::RAW,
        snaplen: 0,
        options: vec![],
    })
    .unwrap();
    let mut nrb = vec![1, 0, 6, 0, 10, 0, 0, 1, 0xff, 0, 0, 0];
    nrb.extend_from_slice(&[0, 0, 0, 0]);
    w.write_raw_block(&RawBlock {
        type_: 4,
        initial_len: 12 + nrb.len() as u32,
        body: Cow::Borrowed(&nrb),
        trailer_len: 12 + nrb.len() as u32,
    })
    .unwrap();
    w.write_pcapng_block(EnhancedPacketBlock {
        interface_id: 0,
        timestamp: Duration::ZERO,
        original_len: a.data.len() as u32,
        data: Cow::Borrowed(&a.data),
        options: vec![],
    })
    .unwrap();
    assert_eq!(read(&w.into_inner()).unwrap(), vec![a]);
}

#[test]
fn pcapng_second_section_with_other_byte_order() {
    let (a, b) = (v4_udp(), v6_tcp());
    let mut file = pcapng_bytes(Endianness::Little, &[(101, 0)], &[(0, a.data.clone())]);
    file.extend(pcapng_bytes(
        Endianness::Big,
        &[(1, 0)],
        &[(0, eth(ETH_P_IPV6, &b.data))],
    ));
    assert_eq!(read(&file).unwrap(), vec![a, b]);
}

#[test]
fn pcapng_truncated_block() {
    let file = pcapng_bytes(
        Endianness::Little,
        &[(101, 0)],
        &[(0, v4_udp().data), (0, v6_tcp().data)],
    );
    let err = read(&file[..file.len() - 3]).unwrap_err();
    assert!(
        matches!(
            err,
            CaptureError::Malformed {
                format: "pcapng",
                packet: 2,
                ..
            }
        ),
        "{err:?}"
    );
}

// ======================================================== formats, files

#[test]
fn not_a_capture() {
    assert!(matches!(read(&[]).unwrap_err(), CaptureError::Empty));
    let err = read(b"GIF89a").unwrap_err();
    assert!(
        matches!(&err, CaptureError::UnknownFormat { head } if head == b"GIF8"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "not a pcap or pcapng capture (starts with 47 49 46 38)"
    );
    assert!(matches!(
        read(&[0xd4, 0xc3]).unwrap_err(),
        CaptureError::UnknownFormat { .. }
    ));
    // A magic number and nothing else.
    let err = read(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0]).unwrap_err();
    assert!(
        matches!(
            err,
            CaptureError::Malformed {
                format: "pcap",
                packet: 1,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn read_capture_from_a_file_names_the_file() {
    let dir = std::env::temp_dir().join(format!("portwall-packet-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.pcap");
    std::fs::write(&good, pcap(101, &[v4_udp().data])).unwrap();
    assert_eq!(read_capture(&good).unwrap(), vec![v4_udp()]);

    let bad = dir.join("bad.pcap");
    std::fs::write(&bad, pcap(147, &[])).unwrap();
    let err = read_capture(&bad).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("{}: unsupported link type 147", bad.display())),
        "{msg}"
    );

    let missing = dir.join("missing.pcap");
    let msg = read_capture(&missing).unwrap_err().to_string();
    assert!(
        msg.starts_with("cannot open capture file ") && msg.contains("missing.pcap"),
        "{msg}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

// ======================================================== hex

fn to_hex(bytes: &[u8], sep: &str) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(sep)
}

#[test]
fn hex_valid_with_any_separator() {
    let p = v4_udp();
    for sep in ["", " ", ":", "-", "\n", "  \t"] {
        assert_eq!(
            parse_hex(&to_hex(&p.data, sep)).unwrap(),
            p,
            "separator {sep:?}"
        );
    }
    let upper = format!("  0X{}\n", to_hex(&p.data, "").to_uppercase());
    assert_eq!(parse_hex(&upper).unwrap(), p);
    let prefixed = format!("0x{}", to_hex(&p.data, " "));
    assert_eq!(parse_hex(&prefixed).unwrap(), p);
    // tcpdump -x style: groups of two bytes.
    let grouped: Vec<String> = p.data.chunks(2).map(|c| to_hex(c, "")).collect();
    assert_eq!(parse_hex(&grouped.join(" ")).unwrap(), p);
}

#[test]
fn hex_version_nibble_picks_the_ethertype() {
    assert_eq!(parse_hex(&to_hex(&v6_tcp().data, "")).unwrap(), v6_tcp());
    assert_eq!(
        parse_hex("12 34").unwrap(),
        Packet {
            ethertype: ETH_P_OTHER,
            data: vec![0x12, 0x34]
        }
    );
    assert_eq!(parse_hex("45").unwrap().ethertype, ETH_P_IP);
}

#[test]
fn hex_errors() {
    assert_eq!(
        parse_hex("450").unwrap_err(),
        HexError::OddDigits { count: 3 }
    );
    assert_eq!(
        parse_hex("45 0g").unwrap_err(),
        HexError::InvalidChar {
            ch: 'g',
            position: 5
        }
    );
    // Positions count characters, not bytes.
    assert_eq!(
        parse_hex("45é0").unwrap_err(),
        HexError::InvalidChar {
            ch: 'é',
            position: 3
        }
    );
    // "0x" is a prefix, not a separator.
    assert_eq!(
        parse_hex("0x45 0x00").unwrap_err(),
        HexError::InvalidChar {
            ch: 'x',
            position: 7
        }
    );
    assert_eq!(
        parse_hex("45 0 00").unwrap_err(),
        HexError::SplitByte { position: 5 }
    );
    for empty in ["", "   ", "0x", " : - ", "\n"] {
        assert_eq!(parse_hex(empty).unwrap_err(), HexError::Empty, "{empty:?}");
    }
    assert_eq!(
        parse_hex("45 0g").unwrap_err().to_string(),
        "invalid character 'g' at position 5 in hex packet"
    );
    assert!(
        parse_hex("450")
            .unwrap_err()
            .to_string()
            .contains("odd number of hex digits (3)")
    );
}

// ======================================================== summaries

const LOOP6: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

#[test]
fn summary_of_each_packet_kind() {
    let cases: Vec<(Packet, &str)> = vec![
        (v4_udp(), "IPv4 10.0.0.1:5353 -> 10.0.0.2:53 udp len 60"),
        (
            ipv6_tcp(LOOP6, LOOP6, 40000, 80),
            "IPv6 [::1]:40000 -> [::1]:80 tcp [SYN] len 60",
        ),
        (
            ipv4_tcp_flags(SRC4, DST4, 443, 50000, SYN | ACK),
            "IPv4 10.0.0.1:443 -> 10.0.0.2:50000 tcp [SYN,ACK] len 40",
        ),
        (
            ipv4_tcp_flags(SRC4, DST4, 1, 2, 0),
            "IPv4 10.0.0.1:1 -> 10.0.0.2:2 tcp [none] len 40",
        ),
        (
            ipv4_icmp(SRC4, DST4, 8, 0),
            "IPv4 10.0.0.1 -> 10.0.0.2 icmp echo-request len 28",
        ),
        (
            ipv4_icmp(SRC4, DST4, 3, 3),
            "IPv4 10.0.0.1 -> 10.0.0.2 icmp unreachable code 3 len 28",
        ),
        (
            ipv4_icmp(SRC4, DST4, 42, 1),
            "IPv4 10.0.0.1 -> 10.0.0.2 icmp type 42 code 1 len 28",
        ),
        (
            ipv6_icmp(SRC6, DST6, 135, 0),
            "IPv6 2001:db8::1 -> 2001:db8::2 icmpv6 type 135 len 48",
        ),
        (
            ipv6_icmp(SRC6, DST6, 128, 0),
            "IPv6 2001:db8::1 -> 2001:db8::2 icmpv6 echo-request len 48",
        ),
        (
            ipv4_proto(SRC4, DST4, 132, &[0; 20]),
            "IPv4 10.0.0.1 -> 10.0.0.2 proto 132 len 40",
        ),
        (
            ipv6_proto(SRC6, DST6, NO_NEXT_HEADER, &[]),
            "IPv6 2001:db8::1 -> 2001:db8::2 proto 59 len 40",
        ),
        (
            ipv4_with_options(6, TCP, &tcp_header(1000, 22)),
            "IPv4 10.0.0.1:1000 -> 10.0.0.2:22 tcp [SYN] len 44",
        ),
        (non_ip(&[0; 20]), "non-IP ethertype 0x88b5 (20 bytes)"),
        (
            Packet {
                ethertype: 0x0806,
                data: vec![0; 28],
            },
            "non-IP ethertype 0x0806 (28 bytes)",
        ),
    ];
    for (p, want) in cases {
        assert_eq!(summarize(&p), want);
    }
}

#[test]
fn summary_of_fragments() {
    let later = with_ipv4_fragment(v4_udp(), 185, false);
    assert_eq!(
        summarize(&later),
        "IPv4 10.0.0.1 -> 10.0.0.2 udp fragment offset 1480 len 60"
    );
    let first = with_ipv4_fragment(v4_udp(), 0, true);
    assert_eq!(
        summarize(&first),
        "IPv4 10.0.0.1:5353 -> 10.0.0.2:53 udp fragment offset 0 (more) len 60"
    );
    let v6_later = ipv6_with_ext(
        SRC6,
        DST6,
        &[Ext::Fragment {
            offset_units: 10,
            more: true,
        }],
        UDP,
        &[0; 16],
    );
    assert_eq!(
        summarize(&v6_later),
        "IPv6 2001:db8::1 -> 2001:db8::2 udp fragment offset 80 (more) len 64"
    );
    let v6_first = ipv6_with_ext(
        SRC6,
        DST6,
        &[Ext::Fragment {
            offset_units: 0,
            more: true,
        }],
        UDP,
        &udp_header(7, 9, &[]),
    );
    assert_eq!(
        summarize(&v6_first),
        "IPv6 [2001:db8::1]:7 -> [2001:db8::2]:9 udp fragment offset 0 (more) len 56"
    );
}

#[test]
fn summary_walks_ipv6_extension_headers() {
    let exts = [
        Ext::HopByHop { len_units: 0 },
        Ext::DestOpts { len_units: 1 },
        Ext::Routing { len_units: 0 },
        Ext::Ah { len_units: 4 },
    ];
    let p = ipv6_with_ext(SRC6, DST6, &exts, UDP, &udp_header(53, 3333, &[]));
    assert_eq!(
        summarize(&p),
        "IPv6 [2001:db8::1]:53 -> [2001:db8::2]:3333 udp len 104"
    );

    let sixteen = [Ext::DestOpts { len_units: 0 }; 16];
    let p = ipv6_with_ext(SRC6, DST6, &sixteen, TCP, &tcp_header(1, 2));
    assert_eq!(
        summarize(&p),
        "IPv6 [2001:db8::1]:1 -> [2001:db8::2]:2 tcp [SYN] len 188"
    );
    let seventeen = [Ext::DestOpts { len_units: 0 }; 17];
    let p = ipv6_with_ext(SRC6, DST6, &seventeen, TCP, &tcp_header(1, 2));
    assert_eq!(
        summarize(&p),
        "IPv6 2001:db8::1 -> 2001:db8::2 len 196 malformed: more than 16 extension headers"
    );
}

#[test]
fn summary_of_truncated_and_malformed_packets() {
    let tcp = ipv4_tcp(SRC4, DST4, 1000, 80);
    assert_eq!(
        summarize(&truncate(tcp.clone(), 12)),
        "IPv4 truncated (12 bytes)"
    );
    assert_eq!(
        summarize(&truncate(tcp.clone(), 0)),
        "IPv4 truncated (0 bytes)"
    );
    assert_eq!(
        summarize(&truncate(tcp.clone(), 30)),
        "IPv4 10.0.0.1:1000 -> 10.0.0.2:80 tcp len 30 truncated"
    );
    assert_eq!(
        summarize(&truncate(tcp.clone(), 22)),
        "IPv4 10.0.0.1 -> 10.0.0.2 tcp len 22 truncated"
    );
    // Options announced but not captured.
    let opts = ipv4_with_options(15, TCP, &[]);
    assert_eq!(summarize(&truncate(opts, 40)), "IPv4 truncated (40 bytes)");
    assert_eq!(
        summarize(&truncate(v6_tcp(), 39)),
        "IPv6 truncated (39 bytes)"
    );

    let ext = ipv6_with_ext(SRC6, DST6, &[Ext::DestOpts { len_units: 4 }], UDP, &[0; 8]);
    assert_eq!(
        summarize(&truncate(ext, 60)),
        "IPv6 2001:db8::1 -> 2001:db8::2 len 60 truncated"
    );

    let swapped = Packet {
        ethertype: ETH_P_IP,
        data: v6_tcp().data,
    };
    assert_eq!(summarize(&swapped), "IPv4 malformed: version 6 (60 bytes)");
    let mut short_ihl = v4_udp();
    short_ihl.data[0] = 0x44;
    assert_eq!(
        summarize(&short_ihl),
        "IPv4 malformed: header length 16 (60 bytes)"
    );
}

#[test]
fn summary_struct_and_json() {
    let s = Summary::of(&v4_udp());
    assert_eq!(s.family, Family::Ipv4);
    assert_eq!(
        (s.src_port, s.dst_port, s.protocol),
        (Some(5353), Some(53), Some(17))
    );
    assert_eq!(s.to_string(), summarize(&v4_udp()));

    let json = summary_json(&v4_udp());
    assert_eq!(json["family"], "ipv4");
    assert_eq!(json["src"], "10.0.0.1");
    assert_eq!(json["dst"], "10.0.0.2");
    assert_eq!(json["protocol"], 17);
    assert_eq!(json["protocol_name"], "udp");
    assert_eq!(json["src_port"], 5353);
    assert_eq!(json["length"], 60);
    assert_eq!(json["fragment"], false);
    assert_eq!(json["truncated"], false);
    assert!(json["icmp_type"].is_null());

    let json = summary_json(&ipv6_icmp(SRC6, DST6, 1, 4));
    assert_eq!(json["family"], "ipv6");
    assert_eq!(json["src"], "2001:db8::1");
    assert_eq!(
        (json["icmp_type"].as_u64(), json["icmp_code"].as_u64()),
        (Some(1), Some(4))
    );
    assert_eq!(summary_json(&non_ip(&[1]))["family"], "non-ip");
    let json = summary_json(&ipv4_tcp_flags(SRC4, DST4, 1, 2, FIN | ACK));
    assert_eq!(json["tcp_flags"], serde_json::json!(["FIN", "ACK"]));
}

// ======================================================== builders

fn ipv4_header_checksum_ok(data: &[u8]) -> bool {
    let ihl = usize::from(data[0] & 0x0f) * 4;
    internet_checksum(&data[..ihl]) == 0
}

#[test]
fn builders_ipv4_parse_back_with_etherparse() {
    let p = ipv4_tcp(SRC4, DST4, 1234, 80);
    assert_eq!((p.ethertype, p.data.len()), (ETH_P_IP, 40));
    let s = SlicedPacket::from_ip(&p.data).unwrap();
    let Some(NetSlice::Ipv4(ip)) = &s.net else {
        panic!("not IPv4")
    };
    assert_eq!(
        (ip.header().source(), ip.header().destination()),
        (SRC4, DST4)
    );
    let Some(TransportSlice::Tcp(tcp)) = &s.transport else {
        panic!("not TCP")
    };
    assert_eq!(
        (
            tcp.source_port(),
            tcp.destination_port(),
            tcp.syn(),
            tcp.ack()
        ),
        (1234, 80, true, false)
    );
    assert!(ipv4_header_checksum_ok(&p.data));

    let p = ipv4_udp_payload(SRC4, DST4, 5, 6, b"hello");
    let s = SlicedPacket::from_ip(&p.data).unwrap();
    let Some(TransportSlice::Udp(udp)) = &s.transport else {
        panic!("not UDP")
    };
    assert_eq!(
        (udp.source_port(), udp.destination_port(), udp.length()),
        (5, 6, 13)
    );
    assert_eq!(udp.payload(), b"hello");
    assert_eq!(ipv4_udp(SRC4, DST4, 5, 6).data.len(), 28);

    let p = ipv4_icmp(SRC4, DST4, 3, 1);
    let s = SlicedPacket::from_ip(&p.data).unwrap();
    let Some(TransportSlice::Icmpv4(icmp)) = &s.transport else {
        panic!("not ICMP")
    };
    assert_eq!((icmp.type_u8(), icmp.code_u8()), (3, 1));

    let p = ipv4_proto(SRC4, DST4, 132, &[9; 12]);
    let ip = Ipv4Slice::from_slice(&p.data).unwrap();
    assert_eq!(ip.payload().ip_number, IpNumber(132));
    assert_eq!(ip.payload().payload, &[9; 12]);
}

#[test]
fn builders_ipv4_options_for_every_header_length() {
    for ihl in 5..=15u8 {
        let transport = udp_header(1, 2, b"x");
        let p = ipv4_with_options(ihl, UDP, &transport);
        assert_eq!(p.data.len(), usize::from(ihl) * 4 + 9);
        let ip = Ipv4Slice::from_slice(&p.data).unwrap();
        assert_eq!(ip.header().ihl(), ihl);
        assert_eq!(usize::from(ip.header().total_len()), p.data.len());
        assert_eq!(
            (ip.header().source(), ip.header().destination()),
            (SRC4, DST4)
        );
        assert_eq!(ip.payload().ip_number, IpNumber::UDP);
        assert_eq!(ip.payload().payload, transport.as_slice());
        assert!(ipv4_header_checksum_ok(&p.data), "ihl {ihl}");
    }
}

#[test]
fn builders_ipv4_fragments() {
    let p = with_ipv4_fragment(ipv4_udp_payload(SRC4, DST4, 1, 2, &[0; 16]), 185, true);
    let ip = Ipv4Slice::from_slice(&p.data).unwrap();
    let h = ip.header();
    assert_eq!(
        (
            h.fragments_offset().value(),
            h.more_fragments(),
            h.dont_fragment()
        ),
        (185, true, false)
    );
    assert!(ip.is_payload_fragmented());
    assert!(ipv4_header_checksum_ok(&p.data));
    assert_eq!(&p.data[6..8], &[0x20, 0xb9]);

    let p = with_ipv4_fragment(ipv4_with_options(7, TCP, &tcp_header(1, 2)), 0x1fff, false);
    assert_eq!(&p.data[6..8], &[0x1f, 0xff]);
    assert!(ipv4_header_checksum_ok(&p.data));
}

#[test]
fn builders_ipv6_parse_back_with_etherparse() {
    let p = ipv6_tcp(SRC6, DST6, 1234, 80);
    assert_eq!((p.ethertype, p.data.len()), (ETH_P_IPV6, 60));
    let s = SlicedPacket::from_ip(&p.data).unwrap();
    let Some(NetSlice::Ipv6(ip)) = &s.net else {
        panic!("not IPv6")
    };
    assert_eq!(
        (ip.header().source(), ip.header().destination()),
        (SRC6, DST6)
    );
    let Some(TransportSlice::Tcp(tcp)) = &s.transport else {
        panic!("not TCP")
    };
    assert_eq!(
        (tcp.source_port(), tcp.destination_port(), tcp.syn()),
        (1234, 80, true)
    );

    let p = ipv6_udp_payload(SRC6, DST6, 5, 6, b"hi");
    let s = SlicedPacket::from_ip(&p.data).unwrap();
    let Some(TransportSlice::Udp(udp)) = &s.transport else {
        panic!("not UDP")
    };
    assert_eq!(
        (udp.source_port(), udp.destination_port(), udp.payload()),
        (5, 6, &b"hi"[..])
    );
    assert_eq!(ipv6_udp(SRC6, DST6, 5, 6).data.len(), 48);

    let p = ipv6_icmp(SRC6, DST6, 135, 0);
    let s = SlicedPacket::from_ip(&p.data).unwrap();
    let Some(TransportSlice::Icmpv6(icmp)) = &s.transport else {
        panic!("not ICMPv6")
    };
    assert_eq!((icmp.type_u8(), icmp.code_u8()), (135, 0));

    let p = ipv6_proto(SRC6, DST6, 132, &[7; 10]);
    let ip = Ipv6Slice::from_slice(&p.data).unwrap();
    assert_eq!(ip.payload().ip_number, IpNumber(132));
    assert_eq!(ip.payload().payload, &[7; 10]);
    assert_eq!(ip.header().payload_length(), 10);
}

#[test]
fn builders_ipv6_extension_headers_parse_back_with_etherparse() {
    let transport = udp_header(53, 53, b"q");
    let exts = [
        Ext::HopByHop { len_units: 2 },
        Ext::Routing { len_units: 0 },
        Ext::Fragment {
            offset_units: 0,
            more: true,
        },
        Ext::Ah { len_units: 4 },
        Ext::DestOpts { len_units: 33 },
    ];
    let p = ipv6_with_ext(SRC6, DST6, &exts, UDP, &transport);
    let ext_len = 24 + 8 + 8 + 24 + 34 * 8;
    assert_eq!(p.data.len(), 40 + ext_len + transport.len());
    let ip = Ipv6Slice::from_slice(&p.data).unwrap();
    assert_eq!(
        usize::from(ip.header().payload_length()),
        ext_len + transport.len()
    );
    assert_eq!(ip.payload().ip_number, IpNumber::UDP);
    assert_eq!(ip.payload().payload, transport.as_slice());
    assert!(ip.is_payload_fragmented());
    let s = SlicedPacket::from_ip(&p.data).unwrap();
    assert!(
        s.transport.is_none(),
        "etherparse leaves fragmented payloads alone"
    );
}

#[test]
fn builders_ipv6_extension_header_bytes_by_hand() {
    // Hop-by-hop, 16 bytes: next header, length 1, then padding options.
    let p = ipv6_with_ext(SRC6, DST6, &[Ext::HopByHop { len_units: 1 }], TCP, &[]);
    assert_eq!(p.data.len(), 56);
    assert_eq!(&p.data[4..7], &[0, 16, 0]);
    assert_eq!(&p.data[40..44], &[TCP, 1, 1, 12]);

    // AH, (5 + 2) * 4 = 28 bytes, odd as IPv6 goes but what was asked.
    let p = ipv6_with_ext(SRC6, DST6, &[Ext::Ah { len_units: 5 }], UDP, &[0xee]);
    assert_eq!(p.data.len(), 40 + 28 + 1);
    assert_eq!((p.data[6], p.data[40], p.data[41]), (51, UDP, 5));
    assert_eq!(&p.data[44..52], &[0, 0, 1, 0, 0, 0, 0, 1]);
    assert_eq!(p.data[68], 0xee);

    // AH of length 0 (8 bytes): SPI only.
    let p = ipv6_with_ext(SRC6, DST6, &[Ext::Ah { len_units: 0 }], UDP, &[]);
    assert_eq!(p.data.len(), 48);

    // Fragment: offset 185 units and M in bytes 2-3.
    let p = ipv6_with_ext(
        SRC6,
        DST6,
        &[Ext::Fragment {
            offset_units: 185,
            more: true,
        }],
        UDP,
        &[],
    );
    assert_eq!(&p.data[40..44], &[UDP, 0, 0x05, 0xc9]);

    // Chained: routing -> dest opts -> fragment -> final.
    let exts = [
        Ext::Routing { len_units: 3 },
        Ext::DestOpts { len_units: 0 },
        Ext::Fragment {
            offset_units: 1,
            more: false,
        },
    ];
    let p = ipv6_with_ext(SRC6, DST6, &exts, NO_NEXT_HEADER, &[]);
    assert_eq!(p.data[6], 43);
    assert_eq!(&p.data[40..44], &[60, 3, 253, 0]);
    assert_eq!(&p.data[72..74], &[44, 0]);
    assert_eq!(&p.data[80..84], &[NO_NEXT_HEADER, 0, 0, 8]);
    assert_eq!(&p.data[4..6], &[0, 48]);

    // A large hop-by-hop header fills with several PadN options.
    let p = ipv6_with_ext(SRC6, DST6, &[Ext::HopByHop { len_units: 255 }], UDP, &[]);
    assert_eq!(p.data.len(), 40 + 2048);
    assert_eq!(&p.data[42..44], &[1, 254]);
    assert_eq!(&p.data[298..300], &[1, 254]);
    assert!(Ipv6Slice::from_slice(&p.data).is_ok());
}

#[test]
fn builders_transport_and_helpers() {
    let t = tcp_header(80, 443);
    assert_eq!(t.len(), 20);
    assert_eq!(&t[..4], &[0, 80, 1, 187]);
    assert_eq!((t[12] >> 4, t[13]), (5, SYN));
    let u = udp_header(1, 2, b"abc");
    assert_eq!(u, vec![0, 1, 0, 2, 0, 11, 0, 0, b'a', b'b', b'c']);

    let p = truncate(v4_udp(), 10);
    assert_eq!((p.ethertype, p.data.len()), (ETH_P_IP, 10));
    assert_eq!(truncate(v4_udp(), 1000), v4_udp());
    assert_eq!(
        non_ip(&[1, 2]),
        Packet {
            ethertype: ETH_P_OTHER,
            data: vec![1, 2]
        }
    );
}

// ======================================================== no panics

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, max_len: usize) -> Vec<u8> {
        let len = self.below(max_len + 1);
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Valid packets of every kind, for mutating.
fn seeds() -> Vec<Packet> {
    vec![
        v4_udp(),
        v6_tcp(),
        ipv4_icmp(SRC4, DST4, 8, 0),
        ipv6_icmp(SRC6, DST6, 128, 0),
        ipv4_with_options(9, TCP, &tcp_header(1, 2)),
        with_ipv4_fragment(v4_udp(), 3, true),
        ipv6_with_ext(
            SRC6,
            DST6,
            &[
                Ext::HopByHop { len_units: 0 },
                Ext::Ah { len_units: 1 },
                Ext::Fragment {
                    offset_units: 0,
                    more: false,
                },
                Ext::DestOpts { len_units: 2 },
            ],
            TCP,
            &tcp_header(3, 4),
        ),
    ]
}

#[test]
fn summarize_never_panics() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let ethertypes = [ETH_P_IP, ETH_P_IPV6, ETH_P_OTHER];
    for _ in 0..3000 {
        let data = rng.bytes(120);
        let ethertype = ethertypes[rng.below(3)];
        let mut data = data;
        // Make half the inputs look like the right IP version, so that
        // they get past the version check.
        if rng.below(2) == 0 && !data.is_empty() {
            data[0] = (data[0] & 0x0f) | if ethertype == ETH_P_IPV6 { 0x60 } else { 0x45 };
        }
        let p = Packet { ethertype, data };
        let _ = summarize(&p);
        let _ = summary_json(&p);
    }
    let seeds = seeds();
    for _ in 0..3000 {
        let mut p = seeds[rng.below(seeds.len())].clone();
        for _ in 0..=rng.below(4) {
            let i = rng.below(p.data.len());
            p.data[i] = rng.next() as u8;
        }
        let cut = rng.below(p.data.len() + 1);
        let _ = summarize(&truncate(p, cut));
    }
}

#[test]
fn read_capture_rejects_garbage_without_panicking() {
    let mut rng = Rng(0x0bad_cafe_f00d_0002);
    let prefixes: [&[u8]; 5] = [
        &[],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        &[0xa1, 0xb2, 0x3c, 0x4d],
        &[0x0a, 0x0d, 0x0d, 0x0a],
        &[
            0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a,
        ],
    ];
    for i in 0..1500 {
        let mut file = prefixes[i % prefixes.len()].to_vec();
        file.extend(rng.bytes(200));
        let result = read(&file);
        assert!(
            result.is_err(),
            "random input {i} read as a capture: {file:02x?}"
        );
    }
}

#[test]
fn read_capture_survives_corrupted_files() {
    let mut rng = Rng(0xc0ff_ee00_0000_0003);
    let frames: Vec<Vec<u8>> = seeds().iter().map(|p| eth(p.ethertype, &p.data)).collect();
    let raw: Vec<Vec<u8>> = seeds().into_iter().map(|p| p.data).collect();
    let originals = [
        pcap(1, &frames),
        pcap_bytes(101, Endianness::Big, TsResolution::NanoSecond, &raw),
        pcapng_bytes(
            Endianness::Little,
            &[(1, 0), (101, 0)],
            &frames
                .iter()
                .cloned()
                .map(|f| (0, f))
                .chain(raw.iter().cloned().map(|f| (1, f)))
                .collect::<Vec<_>>(),
        ),
        pcapng_bytes(
            Endianness::Big,
            &[(276, 0)],
            &raw.iter()
                .map(|f| (0, sll2(ETH_P_IP, f)))
                .collect::<Vec<_>>(),
        ),
    ];
    for original in &originals {
        assert!(read(original).is_ok());
    }
    for _ in 0..2000 {
        let mut file = originals[rng.below(originals.len())].clone();
        for _ in 0..=rng.below(6) {
            let i = rng.below(file.len());
            file[i] = rng.next() as u8;
        }
        let cut = file.len() - rng.below(file.len() / 4);
        file.truncate(cut);
        // Either answer is fine; finishing is the point.
        if let Ok(packets) = read(&file) {
            for p in &packets {
                let _ = summarize(p);
            }
        }
    }
}
