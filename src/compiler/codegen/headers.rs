//! Header parsing: the program's half of `packet::headers`.
//!
//! The parser is emitted twice, from one description parametrized by how
//! it reads packet bytes ([`Access`]):
//!
//! - the fast path reads with direct packet access (`skb->data` ..
//!   `skb->data_end`, the linear part of the socket buffer); every read is
//!   preceded by an explicit bounds check, which is also what the verifier
//!   demands. One check covers each header's fixed part, so the hot path
//!   has few of them. A check that fails goes to `short`;
//! - at `short`, a packet whose length (`skb->len`) reaches past
//!   `data_end` has bytes outside the linear part: the slow path parses it
//!   again from the start, copying each header's fixed part to the stack
//!   with `bpf_skb_load_bytes`, which reads non-linear data too. There a
//!   failed copy means the packet really is cut short, and drops it, as a
//!   failed check does when the whole packet is linear. The slow path is
//!   laid out after the verdict tails, off the hot path.
//!
//! The parser reads only what the filter uses: `proto`, the ICMP bytes and
//! the addresses cost nothing unless the filter reads them. Results land in
//! [`regs`] (the EtherType and the transport kind) and in the homes `Gen`
//! planned for the integer variables and addresses.
//!
//! Registers on the fast path: r1 = context, r2 = data, r3 = data_end,
//! r4 = offset of the current header, r5 = pointer to it, r0 = scratch.
//! On the slow path helper calls clobber r0-r5: the offset lives in r6
//! (reloaded with `skb->protocol` at the end) and the context in a stack
//! cell.

use super::{Gen, Home, helpers, regs, skb};
use crate::compiler::asm::{AluOp, Cond, Insn, Label, Reg, Width};
use crate::lang::ir::{Need, Var};
use crate::packet::headers::{MAX_IPV6_EXT_HEADERS, proto};
use crate::packet::{ETH_P_IP, ETH_P_IPV6};

const CTX: Reg = Reg::R1;
const DATA: Reg = Reg::R2;
const DATA_END: Reg = Reg::R3;
const HEADER: Reg = Reg::R5;
const SCRATCH: Reg = Reg::R0;
/// The largest fixed part copied at once: the IPv6 header.
const COPY_BUFFER: i16 = 40;
/// A packet longer than this goes to the slow path without comparing its
/// length with the linear part: the comparison adds the length to a
/// packet pointer, which the verifier wants bounded.
const MAX_LINEAR_CHECK: i32 = 0xffff;

/// How the parser reads packet bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    /// Direct packet access to the linear part; reads beyond it go to
    /// `short`.
    Direct,
    /// `bpf_skb_load_bytes` copies each header's fixed part to the
    /// `buffer` cell and fields are read from there; the context is kept
    /// in the `ctx` cell. A failed copy drops.
    Copy { buffer: i16, ctx: i16 },
}

/// The slow path still to emit, once the verdict tails are out of the way.
pub(super) struct SlowPath {
    need: Need,
    used: Vec<Var>,
    /// Where the fast path's failed bounds checks go.
    short: Label,
    /// The start of the slow parse.
    entry: Label,
    /// Where the expression starts.
    parsed: Label,
    buffer: i16,
    ctx: i16,
    /// Whether the context still has to be saved in `ctx` (counting
    /// saves it at the program's start).
    save_ctx: bool,
}

/// Emits the parsing code for a filter that needs `need` and whose
/// simplified expression reads `used` (and the addresses `g` has cells
/// for). Falls through with the variables loaded. Returns the slow path
/// to emit after the tails ([`emit_slow_path`]), if the filter reads the
/// packet at all; with `force_slow_path` the program starts there.
pub(super) fn emit(
    g: &mut Gen,
    need: Need,
    used: &[Var],
    force_slow_path: bool,
) -> Option<SlowPath> {
    let parsed = g.label("parsed");
    let slow = need.network.then(|| {
        let (ctx, save_ctx) = match g.ctx_cell {
            Some(cell) => (cell, false),
            None => (g.alloc_stack(8), true),
        };
        SlowPath {
            need,
            used: used.to_vec(),
            short: g.label("short"),
            entry: g.label("slow_path"),
            parsed,
            buffer: g.alloc_stack(COPY_BUFFER),
            ctx,
            save_ctx,
        }
    });
    if let (true, Some(slow)) = (force_slow_path, &slow) {
        g.goto(slow.entry);
    }
    Parser {
        short: slow.as_ref().map_or(g.drop, |s| s.short),
        g,
        access: Access::Direct,
        need,
        used,
        parsed,
    }
    .parse();
    g.bind(parsed);
    slow
}

/// Emits the slow path: the decision at `short`, then the parse through
/// `bpf_skb_load_bytes`, which ends at the expression.
pub(super) fn emit_slow_path(g: &mut Gen, slow: SlowPath) {
    let drop = g.drop;
    g.bind(slow.short);
    // r1-r3 are still the context, data and data_end here: the fast path
    // writes none of them.
    g.load(Width::U32, SCRATCH, CTX, skb::LEN);
    g.jump(Cond::Gt, SCRATCH, MAX_LINEAR_CHECK, slow.entry);
    g.mov(Reg::R4, DATA);
    g.alu(AluOp::Add, Reg::R4, SCRATCH);
    g.jump(Cond::Gt, Reg::R4, DATA_END, slow.entry);
    // Every byte is in the linear part, which the failed check saw.
    g.goto(drop);

    g.bind(slow.entry);
    if slow.save_ctx {
        g.store(Width::U64, Reg::R10, slow.ctx, CTX);
    }
    let done = g.label("slow_parsed");
    Parser {
        g,
        access: Access::Copy {
            buffer: slow.buffer,
            ctx: slow.ctx,
        },
        need: slow.need,
        used: &slow.used,
        short: drop,
        parsed: done,
    }
    .parse();
    g.bind(done);
    g.load(Width::U64, CTX, Reg::R10, slow.ctx);
    g.load(Width::U32, regs::PROTOCOL, CTX, skb::PROTOCOL);
    g.goto(slow.parsed);
}

/// One emission of the parsing code.
struct Parser<'a> {
    g: &'a mut Gen,
    access: Access,
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
    /// The offset of the current header: r4 on the fast path, r6 on the
    /// slow one, where it must survive helper calls (and `skb->protocol`
    /// is not needed until the end).
    fn offset(&self) -> Reg {
        match self.access {
            Access::Direct => Reg::R4,
            Access::Copy { .. } => regs::PROTOCOL,
        }
    }

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
        if self.access == Access::Direct {
            self.g.load(Width::U32, DATA, CTX, skb::DATA);
            self.g.load(Width::U32, DATA_END, CTX, skb::DATA_END);
        }
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
        let offset = self.offset();
        self.fetch(At::Ip, 20);
        self.field(At::Ip, Width::U8, offset, 0);
        self.g.alu(AluOp::And, offset, 0x0f);
        self.g.alu(AluOp::Lsh, offset, 2);
        self.g.jump(Cond::Lt, offset, 20, drop);
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
        let offset = self.offset();
        self.fetch(At::Ip, 40);
        self.field(At::Ip, Width::U8, regs::KIND, 6);
        self.copy_addresses(16, [8, 24]);
        self.g.mov(offset, 40);
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
            self.g.alu(AluOp::Add, offset, SCRATCH);
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
    /// `short`. On the fast path the header at the offset must be pointed
    /// at already (`point_at_offset`); on the slow path the bytes are
    /// copied, replacing the previous header's.
    fn fetch(&mut self, at: At, len: i16) {
        let short = self.short;
        match self.access {
            Access::Direct => {
                let base = match at {
                    At::Ip => DATA,
                    At::Header => HEADER,
                };
                self.g.mov(SCRATCH, base);
                self.g.alu(AluOp::Add, SCRATCH, i32::from(len));
                self.g.jump(Cond::Gt, SCRATCH, DATA_END, short);
            }
            Access::Copy { buffer, ctx } => {
                debug_assert!(len <= COPY_BUFFER);
                self.g.load(Width::U64, Reg::R1, Reg::R10, ctx);
                match at {
                    At::Ip => self.g.mov(Reg::R2, 0),
                    At::Header => self.g.mov(Reg::R2, self.offset()),
                }
                self.g.mov(Reg::R3, Reg::R10);
                self.g.alu(AluOp::Add, Reg::R3, i32::from(buffer));
                self.g.mov(Reg::R4, i32::from(len));
                self.g.push(Insn::Call(helpers::SKB_LOAD_BYTES));
                self.g.jump(Cond::Ne, Reg::R0, 0, short);
            }
        }
    }

    /// `dst = *(width *)(header + off)`, from a part `fetch` made readable.
    fn field(&mut self, at: At, width: Width, dst: Reg, off: i16) {
        match self.access {
            Access::Direct => {
                let base = match at {
                    At::Ip => DATA,
                    At::Header => HEADER,
                };
                self.g.load(width, dst, base, off);
            }
            Access::Copy { buffer, .. } => self.g.load(width, dst, Reg::R10, buffer + off),
        }
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

    /// On the fast path, HEADER = data + offset.
    fn point_at_offset(&mut self) {
        if self.access == Access::Direct {
            self.g.mov(HEADER, DATA);
            self.g.alu(AluOp::Add, HEADER, Reg::R4);
        }
    }

    /// Leaves for `short` when the offset is beyond the packet (a header
    /// longer than what is left of it); on the fast path, points HEADER
    /// at it.
    fn check_offset(&mut self) {
        let short = self.short;
        match self.access {
            Access::Direct => {
                self.point_at_offset();
                self.g.jump(Cond::Gt, HEADER, DATA_END, short);
            }
            Access::Copy { ctx, .. } => {
                self.g.load(Width::U64, Reg::R1, Reg::R10, ctx);
                self.g.load(Width::U32, SCRATCH, Reg::R1, skb::LEN);
                self.g.jump(Cond::Gt, self.offset(), SCRATCH, short);
            }
        }
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
