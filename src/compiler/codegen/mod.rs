//! Code generation: a checked filter to cgroup_skb instructions.
//!
//! The program is built by a short list of named steps:
//! 1. `lang::fold` simplifies the expression;
//! 2. `Gen::plan` lays out where values live: registers for the integer
//!    variables read most, stack cells for the rest, for addresses and
//!    for set lookups;
//! 3. `headers::emit` parses the packet exactly as far as the filter
//!    needs, leaving the variables in their homes (see [`regs`]) and
//!    jumping to `drop` on a needed header that is malformed, or to the
//!    slow path on one that is not in the linear data;
//! 4. `expr::emit` evaluates the expression with short-circuit jumps to
//!    `drop`, falling through when the packet may pass;
//! 5. the verdict tails `r0 = 1` and `drop: r0 = 0` end the program; a
//!    tail is emitted only when something reaches it;
//! 6. `headers::emit_slow_path` adds the parse through
//!    `bpf_skb_load_bytes`, after the tails, off the hot path.
//!
//! Only instructions and features Linux 5.10 has are used (no cpu-v4
//! instructions, no bounded loops; helpers that 5.10 offers cgroup_skb
//! programs), so the programs load on today's long-term distribution
//! kernels.

mod counting;
mod dispatcher;
mod expr;
mod headers;
mod sets;

pub use counting::{
    COUNTER_SLOTS, Counting, TRACE_SLOT_DROP, TRACE_SLOT_FORWARD, TRACE_SLOTS, counter_key,
};
pub use dispatcher::dispatcher;
pub use sets::{SetOptions, SetStrategy, SetTable, TableContents};

use super::asm::{AluOp, Asm, AsmError, Cond, Insn, Label, Operand, Program, Reg, Width};
use crate::lang::fold::fold;
use crate::lang::ir::{AddrVar, Expr, Filter, Var};
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
    /// Homes for the integer variables the filter reads most (ports,
    /// `proto`, `len`, ICMP type and code); the rest live in stack cells.
    pub const VALUES: [Reg; 2] = [Reg::R8, Reg::R9];
}

/// Offsets into `struct __sk_buff` (include/uapi/linux/bpf.h).
pub mod skb {
    pub const LEN: i16 = 0;
    pub const PROTOCOL: i16 = 16;
    pub const INGRESS_IFINDEX: i16 = 36;
    /// `cb[0]`, where a filter hands its verdict to the tracer.
    pub const CB0: i16 = 48;
    pub const DATA: i16 = 76;
    pub const DATA_END: i16 = 80;
}

/// The BPF helper functions programs call, by number (`enum bpf_func_id`).
pub mod helpers {
    pub const MAP_LOOKUP_ELEM: i32 = 1;
    pub const KTIME_GET_NS: i32 = 5;
    pub const TAIL_CALL: i32 = 12;
    pub const SKB_LOAD_BYTES: i32 = 26;
    pub const SKB_CGROUP_ID: i32 = 79;
    pub const RINGBUF_RESERVE: i32 = 131;
    pub const RINGBUF_SUBMIT: i32 = 132;
}

/// Where an integer variable lives once the headers are parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Home {
    /// A callee-saved register (one of [`regs::VALUES`]).
    Reg(Reg),
    /// An 8-byte stack cell at this offset from the frame pointer.
    Stack(i16),
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

impl std::ops::Deref for Generated {
    type Target = Program;

    fn deref(&self) -> &Program {
        &self.program
    }
}

impl std::fmt::Display for Generated {
    /// The listing, then one line per table.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.program)?;
        for (i, table) in self.tables.iter().enumerate() {
            match &table.contents {
                TableContents::Data(bytes) => writeln!(
                    f,
                    "; map_value[{i}]: read-only table, {} bytes",
                    bytes.len()
                )?,
                TableContents::LpmTrie { entries, .. } => {
                    writeln!(f, "; map[{i}]: LPM trie, {} prefixes", entries.len())?
                }
            }
        }
        Ok(())
    }
}

/// Compiles a checked filter into a cgroup_skb program (1 = forward,
/// 0 = drop), counting every verdict when `counting` is given.
pub fn generate_with(
    filter: &Filter,
    counting: Option<&Counting>,
    sets: &SetOptions,
) -> Result<Generated, CodegenError> {
    let options = CodegenOptions {
        sets: sets.clone(),
        ..CodegenOptions::default()
    };
    generate_with_options(filter, counting, &options)
}

/// Choices that change how a program is built, never its verdicts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CodegenOptions {
    /// How set lookups are compiled, and where their tables go.
    pub sets: SetOptions,
    /// Start in the slow path, which reads every header through
    /// `bpf_skb_load_bytes`, instead of direct packet access. For tests:
    /// `BPF_PROG_TEST_RUN` builds linear socket buffers, where the slow
    /// path otherwise runs only for packets that are really cut short.
    pub force_slow_path: bool,
}

/// As [`generate_with`], with `options`.
pub fn generate_with_options(
    filter: &Filter,
    counting: Option<&Counting>,
    options: &CodegenOptions,
) -> Result<Generated, CodegenError> {
    let expr = fold(&filter.expr);
    let mut g = Gen::new();
    g.sets = sets::SetState::new(options.sets.clone());
    if counting.is_some() {
        counting::save_context(&mut g);
    }
    g.plan(&expr);
    let need = filter.need;
    // `check::need_of` counts the IP header for addresses.
    debug_assert!(g.addrs.is_empty() || need.network, "{need:?}");
    let slow_path = headers::emit(&mut g, need, &expr.vars(), options.force_slow_path);
    expr::emit(&mut g, &expr)?;
    match counting {
        Some(c) => counting::tails(&mut g, c),
        None => g.tails(),
    }
    if let Some(slow_path) = slow_path {
        headers::emit_slow_path(&mut g, slow_path);
    }
    g.asm.remove_dead_code();
    Ok(Generated {
        program: g.asm.finish()?,
        tables: g.sets.into_tables(),
    })
}

/// The BPF stack: 512 bytes below the frame pointer.
pub(crate) const STACK_SIZE: i16 = 512;

/// The code generator's state: the instruction builder, the labels shared
/// by every step, and the stack frame's layout.
///
/// The frame is laid out before any code is emitted: the tails' cells
/// (when counting), then the homes of integer variables that did not get
/// a register, the address cells, the set lookups' scratch and spill
/// areas; expression temporaries take what is left below
/// `reserved_stack`.
pub(crate) struct Gen {
    pub asm: Asm,
    /// Where a packet goes to be dropped.
    pub drop: Label,
    /// Labels some instruction jumps to, so unused tails are left out.
    referenced: HashSet<Label>,
    /// Bytes at the top of the stack frame taken by fixed cells;
    /// expression temporaries live below them.
    pub reserved_stack: i16,
    /// The stack cell holding the context pointer, when something saved it
    /// there (r1 is an expression temporary and a helper argument).
    pub ctx_cell: Option<i16>,
    /// Homes of the integer variables the expression reads.
    homes: Vec<(Var, Home)>,
    /// A 16-byte cell per address the expression reads: the address bytes
    /// as on the wire (4 for IPv4, then zeros; 16 for IPv6).
    addrs: Vec<(AddrVar, i16)>,
    /// 32 bytes of scratch for set lookups, as an offset from the frame
    /// pointer to its lowest byte (8-byte aligned). Allocated only when the
    /// expression has a set; 0 otherwise.
    pub set_scratch: i16,
    /// Four cells where the expression saves r0-r3 around a set lookup
    /// (offset of the lowest); 0 when the expression has no set.
    pub spill: i16,
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
            ctx_cell: None,
            homes: Vec::new(),
            addrs: Vec::new(),
            set_scratch: 0,
            spill: 0,
            sets: sets::SetState::new(SetOptions::default()),
        }
    }

    /// Reserves `bytes` (rounded up to whole 8-byte cells) at the top of
    /// the frame and returns the offset of their lowest byte from the
    /// frame pointer. Only before code that uses expression temporaries is
    /// emitted: those live below the reserved bytes.
    pub fn alloc_stack(&mut self, bytes: i16) -> i16 {
        let cells = (bytes + 7) / 8;
        self.reserved_stack += cells * 8;
        -self.reserved_stack
    }

    /// Decides where every value the expression reads lives: registers for
    /// the integer variables read most, stack cells for the others and for
    /// addresses, and the set lookups' scratch.
    fn plan(&mut self, expr: &Expr) {
        let mut counts: Vec<(Var, usize)> = Vec::new();
        let mut has_sets = false;
        expr.visit(&mut |e| match e {
            Expr::Var(v) if !is_flag(*v) => match counts.iter_mut().find(|(u, _)| u == v) {
                Some((_, n)) => *n += 1,
                None => counts.push((*v, 1)),
            },
            Expr::InSet(..) | Expr::AddrIn(..) => has_sets = true,
            _ => {}
        });
        // Most read first; ties in a fixed order, ports first as they are
        // the common case.
        counts.sort_by_key(|&(v, n)| (std::cmp::Reverse(n), register_priority(v)));
        for (i, (var, _)) in counts.into_iter().enumerate() {
            let home = match regs::VALUES.get(i) {
                Some(r) => Home::Reg(*r),
                None => Home::Stack(self.alloc_stack(8)),
            };
            self.homes.push((var, home));
        }
        for addr in expr.addr_vars() {
            let cell = self.alloc_stack(16);
            self.addrs.push((addr, cell));
        }
        if has_sets {
            self.set_scratch = self.alloc_stack(32);
            self.spill = self.alloc_stack(32);
        }
    }

    /// Where an integer variable the expression reads lives.
    pub fn home(&self, var: Var) -> Option<Home> {
        self.homes
            .iter()
            .find(|(v, _)| *v == var)
            .map(|(_, home)| *home)
    }

    /// The addresses the expression reads, with their cells.
    pub fn addr_cells(&self) -> &[(AddrVar, i16)] {
        &self.addrs
    }

    /// The 16-byte cell holding an address the expression reads.
    pub fn addr_cell(&self, addr: AddrVar) -> Option<i16> {
        self.addrs
            .iter()
            .find(|(a, _)| *a == addr)
            .map(|(_, cell)| *cell)
    }

    /// Sets an integer variable's home to `src` (a register or an immediate).
    pub fn set_home(&mut self, home: Home, src: impl Into<Operand>) {
        match home {
            Home::Reg(r) => self.mov(r, src),
            Home::Stack(off) => self.push(Insn::Store {
                width: Width::U64,
                base: Reg::R10,
                off,
                src: src.into(),
            }),
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

    pub fn store(&mut self, width: Width, base: Reg, off: i16, src: impl Into<Operand>) {
        self.push(Insn::Store {
            width,
            base,
            off,
            src: src.into(),
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

    pub fn goto(&mut self, target: Label) {
        self.push(Insn::Goto(target));
    }

    /// `dst = imm` for any 64-bit value: one instruction when it fits the
    /// sign-extended 32-bit immediate, the two-slot load otherwise.
    pub fn mov_imm64(&mut self, dst: Reg, imm: i64) {
        match i32::try_from(imm) {
            Ok(small) => self.mov(dst, small),
            Err(_) => self.push(Insn::LoadImm64 { dst, imm }),
        }
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

/// Whether a variable is a truth value tested on [`regs::PROTOCOL`] or
/// [`regs::KIND`] (see [`flag_test`]) rather than an integer with a home.
pub(crate) fn is_flag(var: Var) -> bool {
    matches!(var, Var::Ip | Var::Ipv6 | Var::Tcp | Var::Udp | Var::Icmp)
}

/// Which integer variables get the value registers when there are more
/// than two: lower first.
fn register_priority(var: Var) -> usize {
    [
        Var::DstPort,
        Var::SrcPort,
        Var::Proto,
        Var::IcmpType,
        Var::IcmpCode,
        Var::Len,
    ]
    .iter()
    .position(|v| *v == var)
    .unwrap_or(usize::MAX)
}

/// For a truth-valued variable, the register it is tested on and the
/// value that makes it 1; `None` for integer variables.
pub(crate) fn flag_test(var: Var) -> Option<(Reg, i32)> {
    use crate::packet::headers::proto;
    use crate::packet::{ETH_P_IP, ETH_P_IPV6};
    Some(match var {
        // skb->protocol holds the EtherType in network byte order; the
        // 32-bit load sees it in host order, hence the swap.
        Var::Ip => (regs::PROTOCOL, i32::from(ETH_P_IP.to_be())),
        Var::Ipv6 => (regs::PROTOCOL, i32::from(ETH_P_IPV6.to_be())),
        Var::Tcp => (regs::KIND, i32::from(proto::TCP)),
        Var::Udp => (regs::KIND, i32::from(proto::UDP)),
        Var::Icmp => (regs::KIND, i32::from(proto::ICMP)),
        Var::SrcPort | Var::DstPort | Var::Proto | Var::Len | Var::IcmpType | Var::IcmpCode => {
            return None;
        }
    })
}
