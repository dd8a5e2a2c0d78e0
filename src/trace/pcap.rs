//! Traced packets as a pcap file that tcpdump and Wireshark read.
//!
//! The link type is `LINKTYPE_RAW` (101): each record is the packet from
//! its IP header on, exactly the bytes the filter saw, and readers tell
//! IPv4 from IPv6 by the version nibble. The header's snapshot length is
//! the trace's; a record's original length is the packet's whole length
//! (`skb->len`), so a packet cut at the snap length shows as such.

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, Endianness, TsResolution};

/// A pcap stream being written. Records collect in memory until
/// [`PcapOut::flush`], which writes them out together: `PcapWriter` owns
/// its writer and cannot flush it, and a reader of the file (`tcpdump -r`
/// while the trace runs) should see whole records.
pub struct PcapOut<W: Write> {
    writer: PcapWriter<Pending>,
    pending: Rc<RefCell<Vec<u8>>>,
    out: W,
}

/// The in-memory end `PcapWriter` writes to.
struct Pending(Rc<RefCell<Vec<u8>>>);

impl Write for Pending {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<W: Write> PcapOut<W> {
    /// Starts the file with its header (written out at the first flush).
    pub fn new(out: W, snap: u32) -> Result<PcapOut<W>, pcap_file::PcapError> {
        let header = PcapHeader {
            version_major: 2,
            version_minor: 4,
            ts_correction: 0,
            ts_accuracy: 0,
            snaplen: snap,
            datalink: DataLink::RAW,
            ts_resolution: TsResolution::MicroSecond,
            endianness: Endianness::native(),
        };
        let pending = Rc::new(RefCell::new(Vec::new()));
        Ok(PcapOut {
            writer: PcapWriter::with_header(Pending(pending.clone()), header)?,
            pending,
            out,
        })
    }

    /// Writes one packet seen at `since_epoch`.
    pub fn write(
        &mut self,
        since_epoch: Duration,
        orig_len: u32,
        data: &[u8],
    ) -> Result<(), pcap_file::PcapError> {
        // A record may not claim fewer bytes than it holds.
        let orig_len = orig_len.max(data.len() as u32);
        self.writer
            .write_packet(&PcapPacket::new(since_epoch, orig_len, data))
            .map(drop)
    }

    /// Writes out every record so far.
    pub fn flush(&mut self) -> std::io::Result<()> {
        let mut pending = self.pending.borrow_mut();
        self.out.write_all(&pending)?;
        pending.clear();
        self.out.flush()
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::capture::read_capture_from;

    #[test]
    fn what_is_written_reads_back_as_the_same_packets() {
        let v4 = vec![
            0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1,
        ];
        let mut v6 = vec![0x60, 0, 0, 0, 0, 0, 17, 64];
        v6.extend_from_slice(&[0; 32]);
        let mut out = PcapOut::new(Vec::new(), 128).unwrap();
        out.write(Duration::from_micros(1_700_000_000_000_001), 20, &v4)
            .unwrap();
        out.write(Duration::from_secs(1_700_000_001), 1500, &v6)
            .unwrap();
        let bytes = out.finish().unwrap();
        // The header: classic magic in this machine's order, version 2.4,
        // snap length, link type 101.
        assert_eq!(&bytes[..4], &0xa1b2_c3d4u32.to_ne_bytes());
        assert_eq!(u32::from_ne_bytes(bytes[16..20].try_into().unwrap()), 128);
        assert_eq!(u32::from_ne_bytes(bytes[20..24].try_into().unwrap()), 101);
        let packets = read_capture_from(bytes.as_slice()).unwrap();
        assert_eq!(packets.len(), 2);
        assert_eq!(packets[0].ethertype, crate::packet::ETH_P_IP);
        assert_eq!(packets[0].data, v4);
        assert_eq!(packets[1].ethertype, crate::packet::ETH_P_IPV6);
        assert_eq!(packets[1].data, v6);
    }
}
