//! Reading packets from pcap and pcapng capture files.
//!
//! A capture holds link-layer frames; the filter sees packets from the IP
//! header on, with the EtherType the kernel would put in `skb->protocol`.
//! This module strips the link-layer header of each frame and works out
//! that EtherType, for the link types a Linux host's captures use.
//!
//! Parsing the file formats is left to `pcap-file`, but only at the level
//! of raw records and blocks: its checked pcap reader rejects packets whose
//! on-the-wire length exceeds the snapshot length (every `tcpdump -s`
//! capture), and its full pcapng reader decodes every block, so that one
//! we have no use for (a name-resolution block with a name that is not
//! UTF-8, say) would stop the whole read.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::blocks::{ENHANCED_PACKET_BLOCK, PACKET_BLOCK, SIMPLE_PACKET_BLOCK};
use pcap_file::pcapng::{Block, PcapNgParser, PcapNgReader, PcapNgWriter, RawBlock};
use pcap_file::{Endianness, PcapError};

use super::{ETH_P_IP, ETH_P_IPV6, Packet};

/// `LINKTYPE_ETHERNET`: an Ethernet II header, possibly VLAN-tagged.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// `LINKTYPE_RAW`: no link-layer header; the IP version nibble decides.
pub const LINKTYPE_RAW: u32 = 101;
/// `LINKTYPE_LINUX_SLL`: Linux "cooked" capture, version 1 (`tcpdump -i any`).
pub const LINKTYPE_LINUX_SLL: u32 = 113;
/// `LINKTYPE_IPV4`: no link-layer header; every packet is IPv4.
pub const LINKTYPE_IPV4: u32 = 228;
/// `LINKTYPE_IPV6`: no link-layer header; every packet is IPv6.
pub const LINKTYPE_IPV6: u32 = 229;
/// `LINKTYPE_LINUX_SLL2`: Linux "cooked" capture, version 2.
pub const LINKTYPE_LINUX_SLL2: u32 = 276;

/// The link types [`read_capture`] understands, with their names, in the
/// order error messages list them.
pub const SUPPORTED_LINK_TYPES: &[(u32, &str)] = &[
    (LINKTYPE_ETHERNET, "Ethernet"),
    (LINKTYPE_RAW, "raw IP"),
    (LINKTYPE_LINUX_SLL, "Linux SLL"),
    (LINKTYPE_IPV4, "IPv4"),
    (LINKTYPE_IPV6, "IPv6"),
    (LINKTYPE_LINUX_SLL2, "Linux SLL2"),
];

/// EtherType of an 802.1Q VLAN tag.
const ETH_P_8021Q: u16 = 0x8100;
/// EtherType of an 802.1ad (QinQ) service VLAN tag.
const ETH_P_8021AD: u16 = 0x88a8;
/// Smallest Ethernet type field that is an EtherType rather than a length.
const ETH_P_802_3_MIN: u16 = 0x0600;
/// `skb->protocol` of a raw 802.3 frame (Novell IPX quirk).
const ETH_P_802_3: u16 = 0x0001;
/// `skb->protocol` of an 802.3 frame with an 802.2 LLC header.
const ETH_P_802_2: u16 = 0x0004;
/// The kernel follows at most this many stacked VLAN tags for us (one
/// 802.1ad outer tag and one 802.1Q inner tag).
const MAX_VLAN_TAGS: usize = 2;

/// Magic numbers of classic pcap, as the first four bytes read big-endian:
/// microsecond and nanosecond timestamps, in both byte orders.
const PCAP_MAGICS: [u32; 4] = [0xa1b2_c3d4, 0xa1b2_3c4d, 0xd4c3_b2a1, 0x4d3c_b2a1];
/// Block type of a pcapng section header block; a palindrome, so the same
/// in either byte order.
const PCAPNG_MAGIC: u32 = 0x0a0d_0d0a;

/// Why a capture could not be read.
///
/// Every message is complete on its own (it includes the underlying I/O
/// or format error) and no `source()` chain is exposed, so printing the
/// error with anyhow's `{:#}` does not repeat anything.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file could not be opened.
    #[error("cannot open capture file {}: {error}", .path.display())]
    Open {
        /// The file named by the caller.
        path: PathBuf,
        /// What the operating system said.
        error: io::Error,
    },
    /// Reading the named file failed; `error` says how.
    #[error("{}: {error}", .path.display())]
    InFile {
        /// The file named by the caller.
        path: PathBuf,
        /// The failure, without the file name.
        error: Box<CaptureError>,
    },
    /// Reading the underlying stream failed.
    #[error("read error: {0}")]
    Io(io::Error),
    /// There was no data at all.
    #[error("empty input, not a pcap or pcapng capture")]
    Empty,
    /// The first bytes are neither a pcap nor a pcapng magic number.
    #[error("not a pcap or pcapng capture (starts with {})", hex_bytes(.head))]
    UnknownFormat {
        /// Up to the first four bytes of the input.
        head: Vec<u8>,
    },
    /// The file format is broken, or the file ends in the middle of a
    /// record.
    #[error("malformed {format} capture at packet {packet}: {detail}")]
    Malformed {
        /// `"pcap"` or `"pcapng"`.
        format: &'static str,
        /// 1-based index of the packet being read when it broke.
        packet: usize,
        /// What was wrong.
        detail: String,
    },
    /// The capture's link type is not one we can strip.
    #[error(
        "unsupported link type {linktype}{}; supported link types: {}",
        at_packet(.packet),
        supported_list()
    )]
    UnsupportedLinkType {
        /// The `LINKTYPE_*` number from the file.
        linktype: u32,
        /// 1-based index of the first packet with this link type, for
        /// pcapng (where each interface has its own); `None` for pcap,
        /// where the file header already says it.
        packet: Option<usize>,
    },
    /// A frame is shorter than its link-layer header.
    #[error(
        "packet {packet}: {len}-byte frame is too short for its {header} \
         ({need} bytes, link type {linktype})"
    )]
    TooShort {
        /// 1-based index of the packet in the file.
        packet: usize,
        /// The `LINKTYPE_*` number of the frame.
        linktype: u32,
        /// Which header did not fit.
        header: &'static str,
        /// Captured length of the frame.
        len: usize,
        /// Bytes needed for that header.
        need: usize,
    },
    /// A pcapng packet names an interface its section never described.
    #[error(
        "packet {packet}: interface {interface} is not described \
         (the section has {count} interface descriptions)"
    )]
    UnknownInterface {
        /// 1-based index of the packet in the file.
        packet: usize,
        /// The interface id in the packet block.
        interface: u32,
        /// How many interface description blocks the section has.
        count: usize,
    },
}

fn hex_bytes(bytes: &[u8]) -> String {
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    hex.join(" ")
}

fn at_packet(packet: &Option<usize>) -> String {
    packet.map_or_else(String::new, |n| format!(" at packet {n}"))
}

fn supported_list() -> String {
    let names: Vec<String> = SUPPORTED_LINK_TYPES
        .iter()
        .map(|(n, name)| format!("{n} ({name})"))
        .collect();
    names.join(", ")
}

/// Reads every packet of a pcap or pcapng file (the format is detected
/// from its magic number; both byte orders work).
///
/// Each packet is the captured part of a frame (its caplen) with the
/// link-layer header removed. Errors name the file.
pub fn read_capture(path: &Path) -> Result<Vec<Packet>, CaptureError> {
    let file = File::open(path).map_err(|error| CaptureError::Open {
        path: path.to_owned(),
        error,
    })?;
    // pcap-file buffers internally, so a BufReader would only copy twice.
    read_capture_from(file).map_err(|error| CaptureError::InFile {
        path: path.to_owned(),
        error: Box::new(error),
    })
}

/// Like [`read_capture`], from any byte stream (an in-memory file in
/// tests, standard input in the CLI).
pub fn read_capture_from<R: Read>(mut reader: R) -> Result<Vec<Packet>, CaptureError> {
    let head = read_head(&mut reader).map_err(CaptureError::Io)?;
    if head.is_empty() {
        return Err(CaptureError::Empty);
    }
    let magic = match <[u8; 4]>::try_from(head.as_slice()) {
        Ok(bytes) => u32::from_be_bytes(bytes),
        Err(_) => return Err(CaptureError::UnknownFormat { head }),
    };
    // The readers want the magic number too, so put it back in front.
    let stream = io::Cursor::new(head.clone()).chain(reader);
    if PCAP_MAGICS.contains(&magic) {
        read_pcap(stream)
    } else if magic == PCAPNG_MAGIC {
        read_pcapng(stream)
    } else {
        Err(CaptureError::UnknownFormat { head })
    }
}

/// Reads up to four bytes; fewer only at end of input.
fn read_head<R: Read>(reader: &mut R) -> io::Result<Vec<u8>> {
    let mut head = [0u8; 4];
    let mut filled = 0;
    while filled < head.len() {
        match reader.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(head[..filled].to_vec())
}

fn read_pcap<R: Read>(stream: R) -> Result<Vec<Packet>, CaptureError> {
    let malformed = |packet: usize, e: PcapError| CaptureError::Malformed {
        format: "pcap",
        packet,
        detail: describe_pcap_error(&e),
    };
    let mut reader = PcapReader::new(stream).map_err(|e| malformed(1, e))?;
    let linktype = u32::from(reader.header().datalink);
    if !is_supported(linktype) {
        return Err(CaptureError::UnsupportedLinkType {
            linktype,
            packet: None,
        });
    }
    let mut packets = Vec::new();
    // Raw records: the checked ones refuse orig_len > snaplen, which is
    // exactly what a capture with a short snapshot length contains.
    while let Some(record) = reader.next_raw_packet() {
        let index = packets.len() + 1;
        let record = record.map_err(|e| malformed(index, e))?;
        packets.push(strip_link_layer(linktype, &record.data, index)?);
    }
    Ok(packets)
}

fn read_pcapng<R: Read>(stream: R) -> Result<Vec<Packet>, CaptureError> {
    let malformed = |packet: usize, e: PcapError| CaptureError::Malformed {
        format: "pcapng",
        packet,
        detail: describe_pcap_error(&e),
    };
    let mut reader = PcapNgReader::new(stream).map_err(|e| malformed(1, e))?;
    let (mut big, mut little) = (None, None);
    let mut packets = Vec::new();
    loop {
        let index = packets.len() + 1;
        // A section header inside `next_raw_block` may change the byte
        // order, but then the block is not a packet, so reading it before
        // is right for every block we decode.
        let endianness = reader.section().endianness;
        let decoder = match endianness {
            Endianness::Big => &mut big,
            Endianness::Little => &mut little,
        };
        let frame = match reader.next_raw_block() {
            None => break,
            Some(Err(e)) => return Err(malformed(index, e)),
            Some(Ok(raw)) => {
                let decoder = match decoder {
                    Some(decoder) => decoder,
                    None => decoder
                        .insert(BlockDecoder::new(endianness).map_err(|e| malformed(index, e))?),
                };
                decoder.decode(&raw).map_err(|e| malformed(index, e))?
            }
        };
        let Some(frame) = frame else { continue };
        let interfaces = reader.interfaces();
        let Some(interface) = interfaces.get(frame.interface as usize) else {
            return Err(CaptureError::UnknownInterface {
                packet: index,
                interface: frame.interface,
                count: interfaces.len(),
            });
        };
        let linktype = u32::from(interface.linktype);
        if !is_supported(linktype) {
            return Err(CaptureError::UnsupportedLinkType {
                linktype,
                packet: Some(index),
            });
        }
        let mut data: &[u8] = &frame.data;
        if frame.simple {
            // A simple packet block has no captured length: it is the
            // original length cut to the interface's snapshot length, and
            // the body may carry padding after it.
            let mut len = frame.original_len;
            if interface.snaplen != 0 {
                len = len.min(interface.snaplen as usize);
            }
            data = &data[..len.min(data.len())];
        }
        packets.push(strip_link_layer(linktype, data, index)?);
    }
    Ok(packets)
}

/// The parts of a pcapng packet block we use.
struct Frame {
    interface: u32,
    simple: bool,
    original_len: usize,
    data: Vec<u8>,
}

/// Decodes single pcapng packet blocks of one byte order.
///
/// `RawBlock::try_into_block` wants the byte order as a type from the
/// `byteorder` crate, which is not our dependency. pcap-file's writer and
/// parser pick it from a section header at run time instead, so a raw
/// block is written after a section header of the right byte order and
/// parsed back from there. Only packet blocks go through.
struct BlockDecoder {
    writer: PcapNgWriter<Vec<u8>>,
    parser: PcapNgParser,
}

impl BlockDecoder {
    fn new(endianness: Endianness) -> Result<BlockDecoder, PcapError> {
        let mut writer = PcapNgWriter::with_endianness(Vec::new(), endianness)?;
        let (_, parser) = PcapNgParser::new(writer.get_ref())?;
        writer.get_mut().clear();
        Ok(BlockDecoder { writer, parser })
    }

    /// Decodes the block if it carries a packet; other blocks give `None`.
    fn decode(&mut self, raw: &RawBlock) -> Result<Option<Frame>, PcapError> {
        if !matches!(
            raw.type_,
            ENHANCED_PACKET_BLOCK | SIMPLE_PACKET_BLOCK | PACKET_BLOCK
        ) {
            return Ok(None);
        }
        self.writer.get_mut().clear();
        self.writer.write_raw_block(raw)?;
        let (_, block) = self.parser.next_block(self.writer.get_ref())?;
        let frame = |interface: u32, simple: bool, original_len: u32, data: Cow<[u8]>| Frame {
            interface,
            simple,
            original_len: original_len as usize,
            data: data.into_owned(),
        };
        Ok(match block {
            Block::EnhancedPacket(b) => Some(frame(b.interface_id, false, b.original_len, b.data)),
            // Simple packet blocks always belong to the first interface.
            Block::SimplePacket(b) => Some(frame(0, true, b.original_len, b.data)),
            Block::Packet(b) => Some(frame(
                u32::from(b.interface_id),
                false,
                b.original_len,
                b.data,
            )),
            _ => None,
        })
    }
}

/// pcap-file reports a record that runs past the end of the input as an
/// unexpected end of file, and a block whose options do not parse as an
/// incomplete buffer; say what those mean for a capture file.
fn describe_pcap_error(e: &PcapError) -> String {
    match e {
        PcapError::IoError(io) if io.kind() == io::ErrorKind::UnexpectedEof => {
            "the file ends in the middle of a record".to_owned()
        }
        PcapError::IoError(io) => format!("read error: {io}"),
        PcapError::IncompleteBuffer => "a block is shorter than its contents".to_owned(),
        other => other.to_string(),
    }
}

fn is_supported(linktype: u32) -> bool {
    SUPPORTED_LINK_TYPES.iter().any(|&(n, _)| n == linktype)
}

/// Turns one captured frame into the packet a cgroup_skb program would
/// see. `index` is the 1-based packet index, for errors.
fn strip_link_layer(linktype: u32, frame: &[u8], index: usize) -> Result<Packet, CaptureError> {
    let too_short = |header: &'static str, need: usize| CaptureError::TooShort {
        packet: index,
        linktype,
        header,
        len: frame.len(),
        need,
    };
    let packet = match linktype {
        LINKTYPE_ETHERNET => {
            if frame.len() < 14 {
                return Err(too_short("Ethernet header", 14));
            }
            let ethertype = be16(frame, 12);
            if ethertype < ETH_P_802_3_MIN {
                // Not an EtherType but an 802.3 length; eth_type_trans()
                // then sets the protocol from the LLC header, as here.
                let payload = &frame[14..];
                let protocol = if payload.starts_with(&[0xff, 0xff]) {
                    ETH_P_802_3
                } else {
                    ETH_P_802_2
                };
                Packet {
                    ethertype: protocol,
                    data: payload.to_vec(),
                }
            } else {
                skip_vlan_tags(ethertype, frame, 14, &too_short)?
            }
        }
        LINKTYPE_RAW => Packet::from_ip(frame.to_vec()),
        LINKTYPE_IPV4 => Packet {
            ethertype: ETH_P_IP,
            data: frame.to_vec(),
        },
        LINKTYPE_IPV6 => Packet {
            ethertype: ETH_P_IPV6,
            data: frame.to_vec(),
        },
        LINKTYPE_LINUX_SLL => {
            if frame.len() < 16 {
                return Err(too_short("Linux SLL header", 16));
            }
            // libpcap re-inserts offloaded VLAN tags after cooked headers
            // too, so they are skipped here as for Ethernet.
            skip_vlan_tags(be16(frame, 14), frame, 16, &too_short)?
        }
        LINKTYPE_LINUX_SLL2 => {
            if frame.len() < 20 {
                return Err(too_short("Linux SLL2 header", 20));
            }
            skip_vlan_tags(be16(frame, 0), frame, 20, &too_short)?
        }
        _ => {
            return Err(CaptureError::UnsupportedLinkType {
                linktype,
                packet: Some(index),
            });
        }
    };
    Ok(trim_link_padding(packet))
}

/// Follows up to [`MAX_VLAN_TAGS`] VLAN tags starting at `offset` (where
/// the payload of a header whose type field said `ethertype` begins).
fn skip_vlan_tags(
    mut ethertype: u16,
    frame: &[u8],
    mut offset: usize,
    too_short: &dyn Fn(&'static str, usize) -> CaptureError,
) -> Result<Packet, CaptureError> {
    for _ in 0..MAX_VLAN_TAGS {
        if ethertype != ETH_P_8021Q && ethertype != ETH_P_8021AD {
            break;
        }
        // A tag is 2 bytes of TCI, then the type of what follows it.
        if frame.len() < offset + 4 {
            return Err(too_short("VLAN tag", offset + 4));
        }
        ethertype = be16(frame, offset + 2);
        offset += 4;
    }
    Ok(Packet {
        ethertype,
        data: frame[offset..].to_vec(),
    })
}

/// Drops bytes after the end of the IP packet: Ethernet pads short frames
/// to 60 bytes, and the kernel trims that padding (in `ip_rcv` and
/// `ipv6_rcv`) before any cgroup program runs. A length field that claims
/// more than was captured, or zero (segmentation offload, jumbograms), is
/// left alone.
fn trim_link_padding(mut packet: Packet) -> Packet {
    let data = &packet.data;
    let ip_len = match packet.ethertype {
        ETH_P_IP if data.len() >= 20 && data[0] >> 4 == 4 => {
            let total = usize::from(be16(data, 2));
            (total >= usize::from(data[0] & 0x0f) * 4).then_some(total)
        }
        ETH_P_IPV6 if data.len() >= 40 && data[0] >> 4 == 6 => {
            let payload = usize::from(be16(data, 4));
            (payload != 0).then_some(40 + payload)
        }
        _ => None,
    };
    if let Some(len) = ip_len.filter(|&len| len >= 20) {
        packet.data.truncate(len);
    }
    packet
}

/// Big-endian u16 at `offset`; callers have checked the length.
fn be16(data: &[u8], offset: usize) -> u16 {
    u16::from_be_bytes([data[offset], data[offset + 1]])
}
