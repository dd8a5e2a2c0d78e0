//! Header parsing: the program's half of `packet::headers`.
//!
//! Packet bytes are read with direct packet access (`skb->data` ..
//! `skb->data_end`); every read is preceded by an explicit bounds check
//! that jumps to `drop`, which is also what the verifier demands. One check
//! covers each header's fixed part, so the hot path has few of them.
//!
//! Registers while parsing: r2 = data, r3 = data_end, r4 = offset of the
//! current header, r5 = pointer to it, r0 = scratch; results land in
//! [`regs`].

use super::{Gen, regs, skb};
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
/// simplified expression reads `used`. Falls through with the variables
/// loaded.
pub(super) fn emit(g: &mut Gen, need: Need, used: &[Var]) {
    let uses = |v: Var| used.contains(&v);
    let needs_protocol = need.network || uses(Var::Ip) || uses(Var::Ipv6);
    if needs_protocol {
        g.load(Width::U32, regs::PROTOCOL, CTX, skb::PROTOCOL);
    }
    if !need.network {
        return;
    }
    g.load(Width::U32, DATA, CTX, skb::DATA);
    g.load(Width::U32, DATA_END, CTX, skb::DATA_END);
    // Variables of headers a packet turns out not to have read as 0.
    g.mov(regs::KIND, 0);
    if uses(Var::DstPort) {
        g.mov(regs::DST_PORT, 0);
    }
    if uses(Var::SrcPort) {
        g.mov(regs::SRC_PORT, 0);
    }

    let parsed = g.label("parsed");
    let ipv4 = g.label("ipv4");
    let transport = g.label("transport");
    let no_transport = g.label("no_transport");
    g.jump(Cond::Eq, regs::PROTOCOL, i32::from(ETH_P_IP.to_be()), ipv4);
    g.jump(
        Cond::Ne,
        regs::PROTOCOL,
        i32::from(ETH_P_IPV6.to_be()),
        parsed,
    );

    ipv6_header(g, uses(Var::Icmp), transport, no_transport);
    g.push(Insn::Goto(transport));

    g.bind(ipv4);
    ipv4_header(g, no_transport);

    g.bind(transport);
    if need.ports {
        ports(g, uses(Var::DstPort), uses(Var::SrcPort));
    }
    g.push(Insn::Goto(parsed));

    g.bind(no_transport);
    g.mov(regs::KIND, 0);
    g.bind(parsed);
}

/// IPv4: a 20-byte fixed header, then the header length from the low
/// nibble of byte 0; a non-zero fragment offset means no transport header.
/// Falls through with HEADER at the transport header and KIND = protocol.
fn ipv4_header(g: &mut Gen, no_transport: Label) {
    let drop = g.drop;
    check_bounds(g, DATA, 20);
    g.load(Width::U8, OFFSET, DATA, 0);
    g.alu(AluOp::And, OFFSET, 0x0f);
    g.alu(AluOp::Lsh, OFFSET, 2);
    g.jump(Cond::Lt, OFFSET, 20, drop);
    pointer_at(g, OFFSET);
    g.jump(Cond::Gt, HEADER, DATA_END, drop);
    g.load(Width::U8, regs::KIND, DATA, 9);
    // Flags and fragment offset, loaded as a host-order (little-endian)
    // u16: the 13 offset bits are 0xff1f there.
    g.load(Width::U16, SCRATCH, DATA, 6);
    g.jump(Cond::Set, SCRATCH, 0xff1f, no_transport);
}

/// IPv6: a 40-byte fixed header, then up to `MAX_IPV6_EXT_HEADERS`
/// extension headers, unrolled (Linux 5.10's verifier would unroll a loop
/// anyway, and straight-line code needs no loop counter). Jumps to
/// `transport` with HEADER at the transport header and KIND = protocol.
fn ipv6_header(g: &mut Gen, normalize_icmp: bool, transport: Label, no_transport: Label) {
    let drop = g.drop;
    let done = g.label("ipv6_done");
    check_bounds(g, DATA, 40);
    g.load(Width::U8, regs::KIND, DATA, 6);
    g.mov(OFFSET, 40);
    for _ in 0..MAX_IPV6_EXT_HEADERS {
        let header = g.label("ext");
        let fragment = g.label("ext_fragment");
        let ah = g.label("ext_ah");
        let advance = g.label("ext_next");
        dispatch_extension(g, header, done);

        // One bounds check for the 8-byte fixed part every kind has.
        g.bind(header);
        pointer_at(g, OFFSET);
        check_bounds(g, HEADER, 8);
        g.jump(Cond::Eq, regs::KIND, i32::from(proto::FRAGMENT), fragment);
        g.load(Width::U8, SCRATCH, HEADER, 1);
        g.jump(Cond::Eq, regs::KIND, i32::from(proto::AH), ah);
        // Hop-by-hop, routing, destination options: (hdr[1] + 1) * 8.
        g.alu(AluOp::Add, SCRATCH, 1);
        g.alu(AluOp::Lsh, SCRATCH, 3);
        g.push(Insn::Goto(advance));

        // AH: (hdr[1] + 2) * 4.
        g.bind(ah);
        g.alu(AluOp::Add, SCRATCH, 2);
        g.alu(AluOp::Lsh, SCRATCH, 2);
        g.push(Insn::Goto(advance));

        // Fragment: 8 bytes. The 13-bit offset is bits 15..3 of bytes 2-3,
        // that is 0xf8ff of the host-order (little-endian) u16.
        g.bind(fragment);
        g.load(Width::U16, SCRATCH, HEADER, 2);
        g.jump(Cond::Set, SCRATCH, 0xf8ff_u16 as i32, no_transport);
        g.mov(SCRATCH, 8);

        g.bind(advance);
        g.load(Width::U8, regs::KIND, HEADER, 0);
        g.alu(AluOp::Add, OFFSET, SCRATCH);
        // The whole extension header must be inside the packet.
        pointer_at(g, OFFSET);
        g.jump(Cond::Gt, HEADER, DATA_END, drop);
    }
    // A chain still going after the limit is malformed.
    dispatch_extension(g, drop, done);

    g.bind(done);
    pointer_at(g, OFFSET);
    if normalize_icmp {
        let not_icmpv6 = g.label("not_icmpv6");
        g.jump(Cond::Ne, regs::KIND, i32::from(proto::ICMPV6), not_icmpv6);
        g.mov(regs::KIND, i32::from(proto::ICMP));
        g.push(Insn::Goto(transport));
        g.bind(not_icmpv6);
        // ICMP for IPv4 (protocol 1) inside IPv6 is not `icmp`.
        g.jump(Cond::Ne, regs::KIND, i32::from(proto::ICMP), transport);
        g.mov(regs::KIND, 0);
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

/// TCP needs 20 bytes and UDP 8; then both ports, converted to host order.
fn ports(g: &mut Gen, dst: bool, src: bool) {
    let parsed_ports = g.label("read_ports");
    let tcp = g.label("tcp");
    let skip = g.label("no_ports");
    g.jump(Cond::Eq, regs::KIND, i32::from(proto::TCP), tcp);
    g.jump(Cond::Ne, regs::KIND, i32::from(proto::UDP), skip);
    check_bounds(g, HEADER, 8);
    g.push(Insn::Goto(parsed_ports));
    g.bind(tcp);
    check_bounds(g, HEADER, 20);
    g.bind(parsed_ports);
    if dst {
        g.load(Width::U16, regs::DST_PORT, HEADER, 2);
        g.push(Insn::ToBe {
            dst: regs::DST_PORT,
            bits: 16,
        });
    }
    if src {
        g.load(Width::U16, regs::SRC_PORT, HEADER, 0);
        g.push(Insn::ToBe {
            dst: regs::SRC_PORT,
            bits: 16,
        });
    }
    g.bind(skip);
}

/// HEADER = data + offset.
fn pointer_at(g: &mut Gen, offset: Reg) {
    g.mov(HEADER, DATA);
    g.alu(AluOp::Add, HEADER, offset);
}

/// Drops the packet unless `len` bytes from `ptr` are inside it.
fn check_bounds(g: &mut Gen, ptr: Reg, len: i32) {
    let drop = g.drop;
    g.mov(SCRATCH, ptr);
    g.alu(AluOp::Add, SCRATCH, len);
    g.jump(Cond::Gt, SCRATCH, DATA_END, drop);
}
