//! Header parsing: the program's half of `packet::headers`.
//!
//! Packet bytes are read with direct packet access (`skb->data` ..
//! `skb->data_end`); every read is preceded by an explicit bounds check,
//! which is also what the verifier demands. One check covers each
//! header's fixed part, so the hot path has few of them.
//!
//! The parser reads only what the filter uses: `proto`, the ICMP bytes and
//! the addresses cost nothing unless the filter reads them. Results land in
//! [`regs`] (the EtherType and the transport kind) and in the homes `Gen`
//! planned for the integer variables and addresses.
//!
//! Registers while parsing: r1 = context, r2 = data, r3 = data_end,
//! r4 = offset of the current header, r5 = pointer to it, r0 = scratch.

use super::{Gen, Home, regs, skb};
use crate::compiler::asm::{AluOp, Cond, Insn, Label, Reg, Width};
use crate::lang::ir::{Need, Var};
use crate::packet::headers::{MAX_IPV6_EXT_HEADERS, proto};
use crate::packet::{ETH_P_IP, ETH_P_IPV6};

const CTX: Reg = Reg::R1;
const DATA: Reg = Reg::R2;
const DATA_END: Reg = Reg::R3;
const OFFSET: Reg = Reg::R4;
const HEADER: Reg = Reg::R5;
const SCRATCH: Reg = Reg::R0;

/// Emits the parsing code for a filter that needs `need` and whose
/// simplified expression reads `used` (and the addresses `g` has cells
/// for). Falls through with the variables loaded.
pub(super) fn emit(g: &mut Gen, need: Need, used: &[Var]) {
    let parsed = g.label("parsed");
    let short = g.drop;
    Parser {
        g,
        need,
        used,
        short,
        parsed,
    }
    .parse();
    g.bind(parsed);
}

/// One emission of the parsing code.
struct Parser<'a> {
    g: &'a mut Gen,
    need: Need,
    used: &'a [Var],
    /// Where a read beyond the packet's data goes.
    short: Label,
    /// Where every path ends, with the variables loaded.
    parsed: Label,
}

/// Which header a field is read from: the IP header (at offset 0) or the
/// one at the current offset.
#[derive(Clone, Copy)]
enum At {
    Ip,
    Header,
}

impl Parser<'_> {
    fn uses(&self, var: Var) -> bool {
        self.used.contains(&var)
    }

    fn home(&self, var: Var) -> Option<Home> {
        if self.uses(var) {
            self.g.home(var)
        } else {
            None
        }
    }

    fn parse(&mut self) {
        let needs_protocol = self.need.network || self.uses(Var::Ip) || self.uses(Var::Ipv6);
        if needs_protocol {
            self.g.load(Width::U32, regs::PROTOCOL, CTX, skb::PROTOCOL);
        }
        if let Some(home) = self.home(Var::Len) {
            self.load_home(home, Width::U32, CTX, skb::LEN);
        }
        if !self.need.network {
            return;
        }
        self.g.load(Width::U32, DATA, CTX, skb::DATA);
        self.g.load(Width::U32, DATA_END, CTX, skb::DATA_END);
        // Variables of headers a packet turns out not to have read as 0.
        self.g.mov(regs::KIND, 0);
        for var in [
            Var::DstPort,
            Var::SrcPort,
            Var::Proto,
            Var::IcmpType,
            Var::IcmpCode,
        ] {
            if let Some(home) = self.home(var) {
                self.g.set_home(home, 0);
            }
        }
        // Address cells are read as a whole whatever the family (the
        // verifier wants every byte written on every path).
        for (_, cell) in self.g.addr_cells().to_vec() {
            for half in [0, 8] {
                self.g.store(Width::U64, Reg::R10, cell + half, 0);
            }
        }

        let parsed = self.parsed;
        let ipv4 = self.g.label("ipv4");
        let transport = self.g.label("transport");
        let no_transport = self.g.label("no_transport");
        self.g
            .jump(Cond::Eq, regs::PROTOCOL, i32::from(ETH_P_IP.to_be()), ipv4);
        self.g.jump(
            Cond::Ne,
            regs::PROTOCOL,
            i32::from(ETH_P_IPV6.to_be()),
            parsed,
        );

        self.ipv6_header(transport, no_transport);
        self.g.goto(transport);

        self.g.bind(ipv4);
        self.ipv4_header(no_transport);

        self.g.bind(transport);
        self.transport();
        self.g.goto(parsed);

        self.g.bind(no_transport);
        self.g.mov(regs::KIND, 0);
        self.g.goto(parsed);
    }

    /// IPv4: a 20-byte fixed header, then the header length from the low
    /// nibble of byte 0; a non-zero fragment offset means no transport
    /// header. Falls through with HEADER at the transport header and
    /// KIND = protocol.
    fn ipv4_header(&mut self, no_transport: Label) {
        let drop = self.g.drop;
        self.fetch(At::Ip, 20);
        self.field(At::Ip, Width::U8, OFFSET, 0);
        self.g.alu(AluOp::And, OFFSET, 0x0f);
        self.g.alu(AluOp::Lsh, OFFSET, 2);
        self.g.jump(Cond::Lt, OFFSET, 20, drop);
        self.check_offset();
        self.field(At::Ip, Width::U8, regs::KIND, 9);
        if let Some(home) = self.home(Var::Proto) {
            self.g.set_home(home, regs::KIND);
        }
        self.copy_addresses(4, [12, 16]);
        // Flags and fragment offset, loaded as a host-order (little-endian)
        // u16: the 13 offset bits are 0xff1f there.
        self.field(At::Ip, Width::U16, SCRATCH, 6);
        self.g.jump(Cond::Set, SCRATCH, 0xff1f, no_transport);
    }

    /// IPv6: a 40-byte fixed header, then up to `MAX_IPV6_EXT_HEADERS`
    /// extension headers, unrolled (Linux 5.10's verifier would unroll a
    /// loop anyway, and straight-line code needs no loop counter). Falls
    /// through with HEADER at the transport header and KIND = protocol.
    fn ipv6_header(&mut self, transport: Label, no_transport: Label) {
        let drop = self.g.drop;
        let done = self.g.label("ipv6_done");
        // A non-first fragment still has a protocol: its fragment
        // header's next header.
        let non_first = match self.home(Var::Proto) {
            Some(_) => self.g.label("ipv6_non_first"),
            None => no_transport,
        };
        self.fetch(At::Ip, 40);
        self.field(At::Ip, Width::U8, regs::KIND, 6);
        self.copy_addresses(16, [8, 24]);
        self.g.mov(OFFSET, 40);
        for _ in 0..MAX_IPV6_EXT_HEADERS {
            let header = self.g.label("ext");
            let fragment = self.g.label("ext_fragment");
            let ah = self.g.label("ext_ah");
            let advance = self.g.label("ext_next");
            dispatch_extension(self.g, header, done);

            // One bounds check for the 8-byte fixed part every kind has.
            self.g.bind(header);
            self.point_at_offset();
            self.fetch(At::Header, 8);
            self.g
                .jump(Cond::Eq, regs::KIND, i32::from(proto::FRAGMENT), fragment);
            self.field(At::Header, Width::U8, SCRATCH, 1);
            self.g.jump(Cond::Eq, regs::KIND, i32::from(proto::AH), ah);
            // Hop-by-hop, routing, destination options: (hdr[1] + 1) * 8.
            self.g.alu(AluOp::Add, SCRATCH, 1);
            self.g.alu(AluOp::Lsh, SCRATCH, 3);
            self.g.goto(advance);

            // AH: (hdr[1] + 2) * 4.
            self.g.bind(ah);
            self.g.alu(AluOp::Add, SCRATCH, 2);
            self.g.alu(AluOp::Lsh, SCRATCH, 2);
            self.g.goto(advance);

            // Fragment: 8 bytes. The 13-bit offset is bits 15..3 of bytes
            // 2-3, that is 0xf8ff of the host-order (little-endian) u16.
            self.g.bind(fragment);
            self.field(At::Header, Width::U16, SCRATCH, 2);
            self.g
                .jump(Cond::Set, SCRATCH, 0xf8ff_u16 as i32, non_first);
            self.g.mov(SCRATCH, 8);

            self.g.bind(advance);
            self.field(At::Header, Width::U8, regs::KIND, 0);
            self.g.alu(AluOp::Add, OFFSET, SCRATCH);
            // The whole extension header must be inside the packet.
            self.check_offset();
        }
        // A chain still going after the limit is malformed.
        dispatch_extension(self.g, drop, done);

        if let Some(home) = self.home(Var::Proto) {
            // Reached only from a fragment header, still the current one.
            self.g.bind(non_first);
            self.field(At::Header, Width::U8, regs::KIND, 0);
            self.g.set_home(home, regs::KIND);
            self.g.goto(no_transport);
        }

        self.g.bind(done);
        self.point_at_offset();
        if let Some(home) = self.home(Var::Proto) {
            self.g.set_home(home, regs::KIND);
        }
        if self.uses(Var::Icmp) || self.need.icmp {
            let not_icmpv6 = self.g.label("not_icmpv6");
            self.g
                .jump(Cond::Ne, regs::KIND, i32::from(proto::ICMPV6), not_icmpv6);
            self.g.mov(regs::KIND, i32::from(proto::ICMP));
            self.g.goto(transport);
            self.g.bind(not_icmpv6);
            // ICMP for IPv4 (protocol 1) inside IPv6 is not `icmp`.
            self.g
                .jump(Cond::Ne, regs::KIND, i32::from(proto::ICMP), transport);
            self.g.mov(regs::KIND, 0);
        }
    }

    /// The transport header, at HEADER with KIND set: TCP needs 20 bytes
    /// and UDP 8 when ports are needed, ICMP 4 when its bytes are.
    fn transport(&mut self) {
        let parsed = self.parsed;
        if self.need.ports {
            let read_ports = self.g.label("read_ports");
            let tcp = self.g.label("tcp");
            let no_ports = self.g.label("no_ports");
            self.g
                .jump(Cond::Eq, regs::KIND, i32::from(proto::TCP), tcp);
            self.g
                .jump(Cond::Ne, regs::KIND, i32::from(proto::UDP), no_ports);
            self.fetch(At::Header, 8);
            self.g.goto(read_ports);
            self.g.bind(tcp);
            self.fetch(At::Header, 20);
            self.g.bind(read_ports);
            for (var, offset) in [(Var::DstPort, 2), (Var::SrcPort, 0)] {
                if let Some(home) = self.home(var) {
                    self.field_home(home, Width::U16, offset);
                }
            }
            if self.need.icmp {
                // TCP and UDP are not ICMP.
                self.g.goto(parsed);
            }
            self.g.bind(no_ports);
        }
        if self.need.icmp {
            // KIND is 1 for ICMP in IPv4 and (normalized) ICMPv6 in IPv6.
            self.g
                .jump(Cond::Ne, regs::KIND, i32::from(proto::ICMP), parsed);
            self.fetch(At::Header, 4);
            for (var, offset) in [(Var::IcmpType, 0), (Var::IcmpCode, 1)] {
                if let Some(home) = self.home(var) {
                    self.field_home(home, Width::U8, offset);
                }
            }
        }
    }

    /// Copies the source and destination addresses the filter reads
    /// (`size` bytes at `offsets` of the IP header) into their cells, byte
    /// for byte.
    fn copy_addresses(&mut self, size: i16, offsets: [i16; 2]) {
        let width = if size == 4 { Width::U32 } else { Width::U64 };
        for (addr, cell) in self.g.addr_cells().to_vec() {
            let offset = offsets[addr as usize];
            for part in (0..size).step_by(width.bytes()) {
                self.field(At::Ip, width, SCRATCH, offset + part);
                self.g.store(width, Reg::R10, cell + part, SCRATCH);
            }
        }
    }

    /// Makes `len` bytes of a header readable with `field`, or leaves for
    /// `short`.
    fn fetch(&mut self, at: At, len: i32) {
        let short = self.short;
        let base = base(at);
        self.g.mov(SCRATCH, base);
        self.g.alu(AluOp::Add, SCRATCH, len);
        self.g.jump(Cond::Gt, SCRATCH, DATA_END, short);
    }

    /// `dst = *(width *)(header + off)`, from a part `fetch` made readable.
    fn field(&mut self, at: At, width: Width, dst: Reg, off: i16) {
        self.g.load(width, dst, base(at), off);
    }

    /// A big-endian field of the current header into an integer variable's
    /// home, in host order.
    fn field_home(&mut self, home: Home, width: Width, off: i16) {
        let dst = match home {
            Home::Reg(r) => r,
            Home::Stack(_) => SCRATCH,
        };
        self.field(At::Header, width, dst, off);
        if width != Width::U8 {
            let bits = 8 * width.bytes() as u8;
            self.g.push(Insn::ToBe { dst, bits });
        }
        if let Home::Stack(_) = home {
            self.g.set_home(home, SCRATCH);
        }
    }

    /// `dst = *(width *)(base + off)` into an integer variable's home.
    fn load_home(&mut self, home: Home, width: Width, base: Reg, off: i16) {
        match home {
            Home::Reg(r) => self.g.load(width, r, base, off),
            Home::Stack(_) => {
                self.g.load(width, SCRATCH, base, off);
                self.g.set_home(home, SCRATCH);
            }
        }
    }

    /// HEADER = data + OFFSET.
    fn point_at_offset(&mut self) {
        self.g.mov(HEADER, DATA);
        self.g.alu(AluOp::Add, HEADER, OFFSET);
    }

    /// Points HEADER at OFFSET, leaving for `short` when that is beyond
    /// the packet (a header longer than what is left of it).
    fn check_offset(&mut self) {
        let short = self.short;
        self.point_at_offset();
        self.g.jump(Cond::Gt, HEADER, DATA_END, short);
    }
}

/// The register a header's fields are read through.
fn base(at: At) -> Reg {
    match at {
        At::Ip => DATA,
        At::Header => HEADER,
    }
}

/// Jumps to `header` when KIND is an extension header, to `done` when
/// not. Ordered for the common case: TCP (6) and UDP (17) leave after two
/// comparisons; ICMPv6 (58) lies inside the 43..60 range of extension
/// header numbers and takes six.
fn dispatch_extension(g: &mut Gen, header: Label, done: Label) {
    let kind = regs::KIND;
    g.jump(Cond::Eq, kind, i32::from(proto::HOP_BY_HOP), header);
    g.jump(Cond::Lt, kind, i32::from(proto::ROUTING), done);
    g.jump(Cond::Gt, kind, i32::from(proto::DEST_OPTS), done);
    for ext in [proto::ROUTING, proto::DEST_OPTS, proto::FRAGMENT, proto::AH] {
        g.jump(Cond::Eq, kind, i32::from(ext), header);
    }
    g.push(Insn::Goto(done));
}
