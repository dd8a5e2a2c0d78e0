//! Code generation: a checked filter to cgroup_skb instructions.
//!
//! The program is built by a short list of named steps:
//! 1. `lang::fold` simplifies the expression;
//! 2. `headers::emit` parses the packet exactly as far as the filter
//!    needs, leaving the variables in fixed registers (see [`regs`]) and
//!    jumping to `drop` on a needed header that is malformed or short;
//! 3. `expr::emit` evaluates the expression with short-circuit jumps to
//!    `drop`, falling through when the packet may pass;
//! 4. the verdict tails `r0 = 1` and `drop: r0 = 0` end the program; a
//!    tail is emitted only when something reaches it.
//!
//! Only instructions and features Linux 5.10 has are used (no cpu-v4
//! instructions, no bounded loops, no helpers), so the programs load on
//! today's long-term distribution kernels.

mod counting;
mod dispatcher;
mod expr;
mod headers;
mod sets;

pub use counting::{COUNTER_SLOTS, Counting, counter_key};
pub use dispatcher::dispatcher;
pub use sets::{SetOptions, SetStrategy, SetTable, TableContents};

use super::asm::{AluOp, Asm, AsmError, Cond, Insn, Label, Operand, Program, Reg, Width};
use crate::lang::fold::fold;
use crate::lang::ir::{Filter, Var};
use std::collections::HashSet;

/// Where the parsed packet variables live while the expression runs.
/// Callee-saved registers, so helper calls (for set lookups) keep them.
pub mod regs {
    use super::Reg;
    /// `skb->protocol` as loaded from the context (network byte order in
    /// the low 16 bits).
    pub const PROTOCOL: Reg = Reg::R6;
    /// The transport kind: the final IP protocol, 0 when the packet has no
    /// transport header; ICMPv6 is normalized to 1 (the ICMP test) and a
    /// protocol 1 in IPv6 to 0, so `icmp` is one comparison.
    pub const KIND: Reg = Reg::R7;
    pub const DST_PORT: Reg = Reg::R8;
    pub const SRC_PORT: Reg = Reg::R9;
}

/// Offsets into `struct __sk_buff` (include/uapi/linux/bpf.h).
pub mod skb {
    pub const PROTOCOL: i16 = 16;
    pub const DATA: i16 = 76;
    pub const DATA_END: i16 = 80;
}

/// Why a filter could not be turned into a program.
#[derive(Debug, thiserror::Error)]
pub enum CodegenError {
    #[error("the expression needs more than {0} temporary values at once")]
    TooComplex(usize),
    #[error(transparent)]
    Asm(#[from] AsmError),
    #[error("cannot build the lookup table of a set: {0}")]
    Table(#[from] crate::compiler::tables::RangeTableError),
}

/// A generated program and the tables its set lookups read: table `i` is
/// the object's map `SetOptions::first_map + i`.
#[derive(Debug)]
pub struct Generated {
    pub program: Program,
    pub tables: Vec<SetTable>,
}

/// Compiles a checked filter into a cgroup_skb program (1 = forward, 0 = drop).
pub fn generate(filter: &Filter, sets: &SetOptions) -> Result<Generated, CodegenError> {
    generate_with(filter, None, sets)
}

/// As [`generate`], counting every verdict when `counting` is given.
pub fn generate_with(
    filter: &Filter,
    counting: Option<&Counting>,
    sets: &SetOptions,
) -> Result<Generated, CodegenError> {
    let expr = fold(&filter.expr);
    let mut g = Gen::new();
    g.sets = sets::SetState::new(sets.clone());
    if counting.is_some() {
        counting::save_context(&mut g);
    }
    let used = expr.vars();
    headers::emit(&mut g, filter.need, &used);
    expr::emit(&mut g, &expr)?;
    match counting {
        Some(c) => counting::tails(&mut g, c),
        None => g.tails(),
    }
    g.asm.remove_dead_code();
    Ok(Generated {
        program: g.asm.finish()?,
        tables: g.sets.into_tables(),
    })
}

/// The code generator's state: the instruction builder and the labels
/// shared by every step.
pub(crate) struct Gen {
    pub asm: Asm,
    /// Where a packet goes to be dropped.
    pub drop: Label,
    /// Labels some instruction jumps to, so unused tails are left out.
    referenced: HashSet<Label>,
    /// Bytes at the top of the stack frame kept for the tails; expression
    /// temporaries live below them.
    pub reserved_stack: i16,
    /// Where the 32 bytes set lookups may use as scratch start (relative
    /// to the frame pointer, 8-byte aligned).
    pub set_scratch: i16,
    /// How set lookups are compiled, and the tables they read.
    pub sets: sets::SetState,
}

impl Gen {
    fn new() -> Gen {
        let mut asm = Asm::new();
        let drop = asm.label("drop");
        Gen {
            asm,
            drop,
            referenced: HashSet::new(),
            reserved_stack: 0,
            // Below the tails' two cells.
            set_scratch: -48,
            sets: sets::SetState::new(SetOptions::default()),
        }
    }

    pub fn push(&mut self, insn: Insn) {
        if let Insn::Jump { target, .. } | Insn::Goto(target) = insn {
            self.referenced.insert(target);
        }
        self.asm.push(insn);
    }

    pub fn label(&mut self, name: &str) -> Label {
        self.asm.label(name)
    }

    pub fn bind(&mut self, label: Label) {
        self.asm.bind(label);
    }

    pub fn mov(&mut self, dst: Reg, src: impl Into<Operand>) {
        self.push(Insn::Alu64 {
            op: super::asm::AluOp::Mov,
            dst,
            src: src.into(),
        });
    }

    pub fn load(&mut self, width: Width, dst: Reg, base: Reg, off: i16) {
        self.push(Insn::Load {
            width,
            dst,
            base,
            off,
        });
    }

    pub fn alu(&mut self, op: AluOp, dst: Reg, src: impl Into<Operand>) {
        self.push(Insn::Alu64 {
            op,
            dst,
            src: src.into(),
        });
    }

    pub fn jump(&mut self, cond: Cond, dst: Reg, src: impl Into<Operand>, target: Label) {
        self.push(Insn::Jump {
            cond,
            dst,
            src: src.into(),
            target,
        });
    }

    pub fn is_referenced(&self, label: Label) -> bool {
        self.referenced.contains(&label)
    }

    /// Ends the program with the forward tail, then the drop tail if
    /// anything jumps there.
    fn tails(&mut self) {
        self.mov(Reg::R0, 1);
        self.push(Insn::Exit);
        if self.referenced.contains(&self.drop) {
            let drop = self.drop;
            self.bind(drop);
            self.mov(Reg::R0, 0);
            self.push(Insn::Exit);
        }
    }
}

/// The register holding a variable that lives in one (ports), or the
/// register a boolean variable is tested on, with the value that makes it 1.
pub(crate) fn var_test(var: Var) -> (Reg, i32) {
    use crate::packet::headers::proto;
    use crate::packet::{ETH_P_IP, ETH_P_IPV6};
    match var {
        // skb->protocol holds the EtherType in network byte order; the
        // 32-bit load sees it in host order, hence the swap.
        Var::Ip => (regs::PROTOCOL, i32::from(ETH_P_IP.to_be())),
        Var::Ipv6 => (regs::PROTOCOL, i32::from(ETH_P_IPV6.to_be())),
        Var::Tcp => (regs::KIND, i32::from(proto::TCP)),
        Var::Udp => (regs::KIND, i32::from(proto::UDP)),
        Var::Icmp => (regs::KIND, i32::from(proto::ICMP)),
        Var::DstPort => (regs::DST_PORT, 0),
        Var::SrcPort => (regs::SRC_PORT, 0),
        Var::Proto | Var::Len | Var::IcmpType | Var::IcmpCode => todo!("language v2"),
    }
}
