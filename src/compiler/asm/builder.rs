//! The assembler: instructions go in with symbolic labels, one `finish`
//! step resolves them into slot offsets.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};

use super::insn::{AluOp, Cond, Insn, Operand, Width};
use super::reg::Reg;

/// Gives every `Asm` its own id so a label used with the wrong assembler is
/// an error instead of a silent jump to an unrelated position.
static NEXT_ASM_ID: AtomicU32 = AtomicU32::new(0);

/// A jump target, created by [`Asm::label`] and placed by [`Asm::bind`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Label {
    asm: u32,
    pub(super) index: u32,
}

/// A mistake found while resolving labels or checking instructions.
///
/// Instruction indices count pushed instructions (a `LoadImm64` counts
/// once), matching [`Asm::len`], not encoded slots.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum AsmError {
    /// A jump targets a label that was never bound.
    #[error("instruction {index} jumps to label `{label}`, which is never bound")]
    UnboundLabel {
        /// The label's listing name.
        label: String,
        /// The jumping instruction.
        index: usize,
    },
    /// A label was bound at two positions.
    #[error(
        "label `{label}` is bound twice: before instruction {first} and before instruction {second}"
    )]
    LabelBoundTwice {
        /// The label's listing name.
        label: String,
        /// Position of the first binding.
        first: usize,
        /// Position of the second binding.
        second: usize,
    },
    /// A jump is farther than a 16-bit slot offset can reach.
    #[error(
        "instruction {index} jumps to label `{label}`, {offset} slots away; eBPF jumps reach -32768..=32767 slots"
    )]
    JumpOutOfRange {
        /// The label's listing name.
        label: String,
        /// The jumping instruction.
        index: usize,
        /// The offset that did not fit.
        offset: i64,
    },
    /// A jump targets a label bound after the last instruction, where there
    /// is nothing to run.
    #[error(
        "instruction {index} jumps to label `{label}`, which is bound after the last instruction"
    )]
    LabelAtEnd {
        /// The label's listing name.
        label: String,
        /// The jumping instruction.
        index: usize,
    },
    /// A label made by a different [`Asm`] was bound or jumped to.
    #[error("a label from a different assembler is used at instruction {index}")]
    ForeignLabel {
        /// The instruction using it (or the binding position).
        index: usize,
    },
    /// An instruction the kernel would refuse.
    #[error("instruction {index} is invalid: {reason}")]
    InvalidInsn {
        /// The instruction.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// No instructions were pushed; the kernel refuses empty programs.
    #[error("the program has no instructions")]
    EmptyProgram,
}

#[derive(Debug)]
struct LabelDef {
    name: String,
    pos: Option<usize>,
}

/// Builds a program instruction by instruction.
///
/// ```
/// use portwall::compiler::asm::{Asm, Cond, Reg, Width};
///
/// let mut asm = Asm::new();
/// let drop = asm.label("drop");
/// asm.load(Width::U32, Reg::R6, Reg::R1, 16)
///     .jump(Cond::Ne, Reg::R6, 0x8, drop)
///     .mov64_imm(Reg::R0, 1)
///     .exit();
/// asm.bind(drop);
/// asm.mov64_imm(Reg::R0, 0).exit();
/// let program = asm.finish()?;
/// assert_eq!(program.slots(), 6);
/// # Ok::<(), portwall::compiler::asm::AsmError>(())
/// ```
#[derive(Debug)]
pub struct Asm {
    id: u32,
    insns: Vec<Insn>,
    labels: Vec<LabelDef>,
    used_names: HashSet<String>,
    // Next suffix to try per base name, so repeated names stay cheap.
    next_suffix: HashMap<String, usize>,
    // `bind` returns nothing (labels are placed inline while emitting), so
    // its mistakes wait here for `finish`.
    deferred: Vec<AsmError>,
}

impl Default for Asm {
    fn default() -> Self {
        Self::new()
    }
}

impl Asm {
    /// An empty assembler.
    pub fn new() -> Asm {
        Asm {
            id: NEXT_ASM_ID.fetch_add(1, Ordering::Relaxed),
            insns: Vec::new(),
            labels: Vec::new(),
            used_names: HashSet::new(),
            next_suffix: HashMap::new(),
            deferred: Vec::new(),
        }
    }

    /// Creates a new unbound label.
    ///
    /// `name` is what the listing and errors show; when it is already taken
    /// a suffix makes it unique (`true`, `true_2`, `true_3`, ...), so code
    /// generators can reuse names freely.
    pub fn label(&mut self, name: &str) -> Label {
        let unique = if self.used_names.contains(name) {
            let next = self.next_suffix.entry(name.to_string()).or_insert(2);
            loop {
                let candidate = format!("{name}_{next}");
                *next += 1;
                if !self.used_names.contains(&candidate) {
                    break candidate;
                }
            }
        } else {
            name.to_string()
        };
        self.used_names.insert(unique.clone());
        let index = u32::try_from(self.labels.len()).unwrap_or(u32::MAX);
        self.labels.push(LabelDef {
            name: unique,
            pos: None,
        });
        Label {
            asm: self.id,
            index,
        }
    }

    /// The listing name given to `label`.
    pub fn label_name(&self, label: Label) -> Option<&str> {
        self.def(label).map(|def| def.name.as_str())
    }

    /// Binds `label` to the current position: it then names the next
    /// instruction pushed. Binding a label twice is reported by
    /// [`finish`](Asm::finish).
    pub fn bind(&mut self, label: Label) {
        let here = self.insns.len();
        let Some(def) = self.def_mut(label) else {
            self.deferred.push(AsmError::ForeignLabel { index: here });
            return;
        };
        match def.pos {
            None => def.pos = Some(here),
            Some(first) => {
                let label = def.name.clone();
                self.deferred.push(AsmError::LabelBoundTwice {
                    label,
                    first,
                    second: here,
                });
            }
        }
    }

    /// Whether `label` has been bound.
    pub fn is_bound(&self, label: Label) -> bool {
        self.def(label).is_some_and(|def| def.pos.is_some())
    }

    /// Appends an instruction.
    pub fn push(&mut self, insn: Insn) -> &mut Self {
        self.insns.push(insn);
        self
    }

    /// Number of instructions pushed (a `LoadImm64` counts once).
    pub fn len(&self) -> usize {
        self.insns.len()
    }

    /// Whether nothing has been pushed yet.
    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }

    /// `dst = imm` (64-bit, sign-extended).
    pub fn mov64_imm(&mut self, dst: Reg, imm: i32) -> &mut Self {
        self.alu64(AluOp::Mov, dst, imm)
    }

    /// `dst = src` (64-bit).
    pub fn mov64_reg(&mut self, dst: Reg, src: Reg) -> &mut Self {
        self.alu64(AluOp::Mov, dst, src)
    }

    /// `dst = imm` (32-bit, upper half cleared).
    pub fn mov32_imm(&mut self, dst: Reg, imm: i32) -> &mut Self {
        self.alu32(AluOp::Mov, dst, imm)
    }

    /// 64-bit `dst = dst <op> src`.
    pub fn alu64(&mut self, op: AluOp, dst: Reg, src: impl Into<Operand>) -> &mut Self {
        let src = src.into();
        self.push(Insn::Alu64 { op, dst, src })
    }

    /// 32-bit `dst = dst <op> src`, zero-extending the result.
    pub fn alu32(&mut self, op: AluOp, dst: Reg, src: impl Into<Operand>) -> &mut Self {
        let src = src.into();
        self.push(Insn::Alu32 { op, dst, src })
    }

    /// `dst = -dst` (64-bit).
    pub fn neg64(&mut self, dst: Reg) -> &mut Self {
        self.alu64(AluOp::Neg, dst, 0)
    }

    /// Converts the low `bits` of `dst` from host order to big endian.
    pub fn to_be(&mut self, dst: Reg, bits: u8) -> &mut Self {
        self.push(Insn::ToBe { dst, bits })
    }

    /// `dst = imm` for a full 64-bit value (two slots).
    pub fn load_imm64(&mut self, dst: Reg, imm: i64) -> &mut Self {
        self.push(Insn::LoadImm64 { dst, imm })
    }

    /// `dst = *(width *)(base + off)`.
    pub fn load(&mut self, width: Width, dst: Reg, base: Reg, off: i16) -> &mut Self {
        self.push(Insn::Load {
            width,
            dst,
            base,
            off,
        })
    }

    /// `*(width *)(base + off) = src`.
    pub fn store(
        &mut self,
        width: Width,
        base: Reg,
        off: i16,
        src: impl Into<Operand>,
    ) -> &mut Self {
        let src = src.into();
        self.push(Insn::Store {
            width,
            base,
            off,
            src,
        })
    }

    /// `if dst <cond> src goto target`.
    pub fn jump(
        &mut self,
        cond: Cond,
        dst: Reg,
        src: impl Into<Operand>,
        target: Label,
    ) -> &mut Self {
        let src = src.into();
        self.push(Insn::Jump {
            cond,
            dst,
            src,
            target,
        })
    }

    /// `goto target`.
    pub fn goto(&mut self, target: Label) -> &mut Self {
        self.push(Insn::Goto(target))
    }

    /// `call helper`.
    pub fn call(&mut self, helper: i32) -> &mut Self {
        self.push(Insn::Call(helper))
    }

    /// `exit`: return `r0`.
    pub fn exit(&mut self) -> &mut Self {
        self.push(Insn::Exit)
    }

    /// Checks every instruction and resolves every jump into a slot
    /// offset, counting a `LoadImm64` as two slots.
    ///
    /// Labels that nothing jumps to may be left unbound. The first problem
    /// found is returned.
    /// Drops instructions no path from the entry reaches (the verifier
    /// refuses a program that has any: code generators emit them naturally,
    /// e.g. after a condition that turned out constant), then jumps to the
    /// very next instruction. Runs to a fixed point, as each step can
    /// enable the other.
    pub fn remove_dead_code(&mut self) {
        loop {
            let n = self.insns.len();
            let pos = |label: Label, labels: &[LabelDef]| -> Option<usize> {
                labels.get(label.index as usize).and_then(|d| d.pos)
            };
            // Reachability from instruction 0.
            let mut reachable = vec![false; n];
            let mut work = vec![0usize];
            while let Some(i) = work.pop() {
                if i >= n || reachable[i] {
                    continue;
                }
                reachable[i] = true;
                match self.insns[i] {
                    Insn::Exit => {}
                    Insn::Goto(l) => work.extend(pos(l, &self.labels)),
                    Insn::Jump { target, .. } => {
                        work.push(i + 1);
                        work.extend(pos(target, &self.labels));
                    }
                    _ => work.push(i + 1),
                }
            }
            // A jump to the instruction right after it does nothing.
            for i in 0..n {
                if let Insn::Goto(l) = self.insns[i] {
                    let falls_through = pos(l, &self.labels)
                        .is_some_and(|p| p > i && p < n && (i + 1..p).all(|j| !reachable[j]));
                    if reachable[i] && falls_through {
                        reachable[i] = false;
                    }
                }
            }
            if reachable.iter().all(|r| *r) {
                return;
            }
            // new_index[i]: how many kept instructions precede i.
            let mut new_index = Vec::with_capacity(n + 1);
            let mut kept = 0;
            for r in &reachable {
                new_index.push(kept);
                kept += usize::from(*r);
            }
            new_index.push(kept);
            for def in &mut self.labels {
                if let Some(p) = def.pos {
                    def.pos = Some(new_index[p.min(n)]);
                }
            }
            let mut i = 0;
            self.insns.retain(|_| {
                i += 1;
                reachable[i - 1]
            });
        }
    }

    pub fn finish(mut self) -> Result<Program, AsmError> {
        if let Some(err) = std::mem::take(&mut self.deferred).into_iter().next() {
            return Err(err);
        }
        if self.insns.is_empty() {
            return Err(AsmError::EmptyProgram);
        }

        // slot_of[i] is where instruction i starts; slot_of[len] is the
        // total, which is also where a label bound at the end would point.
        let mut slot_of = Vec::with_capacity(self.insns.len() + 1);
        let mut slot = 0;
        for insn in &self.insns {
            slot_of.push(slot);
            slot += insn.slots();
        }
        slot_of.push(slot);

        let mut offsets = vec![0i16; self.insns.len()];
        for (index, insn) in self.insns.iter().enumerate() {
            if let Some(reason) = insn.invalid_reason() {
                return Err(AsmError::InvalidInsn { index, reason });
            }
            let Some(target) = insn.target() else {
                continue;
            };
            if target.asm != self.id {
                return Err(AsmError::ForeignLabel { index });
            }
            let def = usize::try_from(target.index)
                .ok()
                .and_then(|i| self.labels.get(i))
                .ok_or(AsmError::ForeignLabel { index })?;
            let label = || def.name.clone();
            let pos = def.pos.ok_or_else(|| AsmError::UnboundLabel {
                label: label(),
                index,
            })?;
            if pos == self.insns.len() {
                return Err(AsmError::LabelAtEnd {
                    label: label(),
                    index,
                });
            }
            // Offsets count slots from the slot after the jump.
            let offset = slot_of[pos] as i64 - slot_of[index] as i64 - 1;
            offsets[index] = i16::try_from(offset).map_err(|_| AsmError::JumpOutOfRange {
                label: label(),
                index,
                offset,
            })?;
        }

        let mut labels: Vec<(usize, String)> = self
            .labels
            .iter()
            .filter_map(|def| Some((def.pos?, def.name.clone())))
            .collect();
        let label_names = self.labels.into_iter().map(|def| def.name).collect();
        // Stable, so labels at one position list in creation order.
        labels.sort_by_key(|(pos, _)| *pos);

        Ok(Program {
            insns: self.insns,
            offsets,
            slot_of,
            labels,
            label_names,
        })
    }

    fn def(&self, label: Label) -> Option<&LabelDef> {
        if label.asm != self.id {
            return None;
        }
        self.labels.get(usize::try_from(label.index).ok()?)
    }

    fn def_mut(&mut self, label: Label) -> Option<&mut LabelDef> {
        if label.asm != self.id {
            return None;
        }
        self.labels.get_mut(usize::try_from(label.index).ok()?)
    }
}

/// A program whose labels are resolved: ready to encode or list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    pub(super) insns: Vec<Insn>,
    /// Resolved slot offset per instruction (0 for non-jumps).
    pub(super) offsets: Vec<i16>,
    /// First slot of each instruction, plus the total at the end.
    pub(super) slot_of: Vec<usize>,
    /// Bound labels as (instruction position, name), sorted by position.
    pub(super) labels: Vec<(usize, String)>,
    /// Every label's name, indexed by `Label::index`, for naming jump
    /// targets.
    pub(super) label_names: Vec<String>,
}

impl Program {
    /// Encoded instruction count: what the kernel counts and limits.
    pub fn slots(&self) -> usize {
        self.slot_of.last().copied().unwrap_or(0)
    }

    /// The instructions, in order.
    pub fn insns(&self) -> &[Insn] {
        &self.insns
    }

    /// The slot where instruction `index` starts (as in the listing and
    /// the verifier log), or `None` past the end.
    pub fn slot_of(&self, index: usize) -> Option<usize> {
        self.slot_of.get(index).copied()
    }

    /// The resolved jump offset of instruction `index` in slots, relative
    /// to the slot after it; `None` if it is not a jump.
    pub fn jump_offset(&self, index: usize) -> Option<i16> {
        self.insns.get(index)?.target()?;
        self.offsets.get(index).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_code_and_jumps_to_the_next_instruction_go() {
        let mut asm = Asm::new();
        let (skip, end) = (asm.label("skip"), asm.label("end"));
        asm.jump(Cond::Eq, Reg::R1, 0, skip)
            .mov64_imm(Reg::R0, 1)
            .goto(end)
            .mov64_imm(Reg::R0, 7) // unreachable: after a goto, not a target
            .exit();
        asm.bind(skip);
        asm.mov64_imm(Reg::R0, 2).goto(end); // goto the next instruction
        asm.bind(end);
        asm.exit();
        asm.remove_dead_code();
        let listing = asm.finish().expect("assembles").to_string();
        assert_eq!(
            listing,
            "  0: if r1 == 0x0 goto skip\n  1: r0 = 1\n  2: goto end\nskip:\n  3: r0 = 2\nend:\n  4: exit\n"
        );
    }

    #[test]
    fn forward_jump_skips_the_instructions_between() {
        let mut asm = Asm::new();
        let out = asm.label("out");
        asm.jump(Cond::Eq, Reg::R1, 0, out)
            .mov64_imm(Reg::R0, 1)
            .mov64_imm(Reg::R0, 2);
        asm.bind(out);
        asm.exit();
        let program = asm.finish().expect("assembles");
        assert_eq!(program.jump_offset(0), Some(2));
        assert_eq!(program.jump_offset(1), None);
    }

    #[test]
    fn backward_jump_is_negative() {
        let mut asm = Asm::new();
        let top = asm.label("top");
        asm.mov64_imm(Reg::R0, 0);
        asm.bind(top);
        asm.alu64(AluOp::Add, Reg::R0, 1)
            .jump(Cond::Lt, Reg::R0, 10, top)
            .exit();
        let program = asm.finish().expect("assembles");
        // From slot 2, the next slot is 3; `top` is slot 1.
        assert_eq!(program.jump_offset(2), Some(-2));
    }

    #[test]
    fn jumps_count_load_imm64_as_two_slots() {
        let mut asm = Asm::new();
        let fwd = asm.label("fwd");
        let back = asm.label("back");
        asm.bind(back);
        asm.jump(Cond::Eq, Reg::R1, 0, fwd)
            .load_imm64(Reg::R2, 0x1122_3344_5566_7788)
            .goto(back);
        asm.bind(fwd);
        asm.exit();
        let program = asm.finish().expect("assembles");
        assert_eq!(program.slots(), 5);
        assert_eq!(program.slot_of(2), Some(3));
        // Slot 0 jumps over slots 1-3 to slot 4.
        assert_eq!(program.jump_offset(0), Some(3));
        // Slot 3 jumps back to slot 0: 0 - (3 + 1).
        assert_eq!(program.jump_offset(2), Some(-4));
    }

    #[test]
    fn reused_names_get_unique_suffixes() {
        let mut asm = Asm::new();
        let names: Vec<String> = ["true", "true", "drop", "true", "true_4", "true"]
            .iter()
            .map(|n| {
                let label = asm.label(n);
                asm.label_name(label).unwrap_or_default().to_string()
            })
            .collect();
        assert_eq!(
            names,
            ["true", "true_2", "drop", "true_3", "true_4", "true_5"]
        );
    }

    #[test]
    fn unused_unbound_labels_are_fine() {
        let mut asm = Asm::new();
        let never = asm.label("never");
        let dangling = asm.label("dangling");
        asm.mov64_imm(Reg::R0, 0).exit();
        asm.bind(dangling);
        assert!(!asm.is_bound(never));
        assert!(asm.is_bound(dangling));
        assert!(asm.finish().is_ok());
    }

    #[test]
    fn unbound_label_names_label_and_instruction() {
        let mut asm = Asm::new();
        let nowhere = asm.label("nowhere");
        asm.mov64_imm(Reg::R0, 0).goto(nowhere).exit();
        let err = asm.finish().expect_err("must fail");
        assert_eq!(
            err,
            AsmError::UnboundLabel {
                label: "nowhere".into(),
                index: 1
            }
        );
        assert_eq!(
            err.to_string(),
            "instruction 1 jumps to label `nowhere`, which is never bound"
        );
    }

    #[test]
    fn label_bound_twice() {
        let mut asm = Asm::new();
        let twice = asm.label("twice");
        asm.bind(twice);
        asm.mov64_imm(Reg::R0, 0);
        asm.bind(twice);
        asm.exit();
        assert_eq!(
            asm.finish(),
            Err(AsmError::LabelBoundTwice {
                label: "twice".into(),
                first: 0,
                second: 1
            })
        );
    }

    #[test]
    fn jump_out_of_range() {
        let mut asm = Asm::new();
        let far = asm.label("far");
        asm.goto(far);
        for _ in 0..32_768 {
            asm.mov64_imm(Reg::R0, 0);
        }
        asm.bind(far);
        asm.exit();
        assert_eq!(
            asm.finish(),
            Err(AsmError::JumpOutOfRange {
                label: "far".into(),
                index: 0,
                offset: 32_768
            })
        );
    }

    #[test]
    fn longest_forward_jump_fits() {
        let mut asm = Asm::new();
        let far = asm.label("far");
        asm.goto(far);
        for _ in 0..32_767 {
            asm.mov64_imm(Reg::R0, 0);
        }
        asm.bind(far);
        asm.exit();
        assert_eq!(asm.finish().map(|p| p.jump_offset(0)), Ok(Some(32_767)));
    }

    #[test]
    fn label_at_end_that_is_jumped_to() {
        let mut asm = Asm::new();
        let end = asm.label("end");
        asm.mov64_imm(Reg::R0, 0)
            .jump(Cond::Eq, Reg::R1, 0, end)
            .exit();
        asm.bind(end);
        assert_eq!(
            asm.finish(),
            Err(AsmError::LabelAtEnd {
                label: "end".into(),
                index: 1
            })
        );
    }

    #[test]
    fn labels_from_another_assembler_are_refused() {
        let mut other = Asm::new();
        let foreign = other.label("foreign");
        let mut asm = Asm::new();
        asm.goto(foreign).exit();
        assert!(!asm.is_bound(foreign));
        assert_eq!(asm.finish(), Err(AsmError::ForeignLabel { index: 0 }));

        let mut asm = Asm::new();
        asm.exit();
        asm.bind(foreign);
        assert_eq!(asm.finish(), Err(AsmError::ForeignLabel { index: 1 }));
    }

    #[test]
    fn invalid_instructions_are_refused_with_their_index() {
        let cases: [(Insn, &str); 6] = [
            (
                Insn::Alu64 {
                    op: AluOp::Mov,
                    dst: Reg::R10,
                    src: Operand::Imm(0),
                },
                "r10 is the read-only frame pointer",
            ),
            (
                Insn::Alu64 {
                    op: AluOp::Div,
                    dst: Reg::R1,
                    src: Operand::Imm(0),
                },
                "division by the constant zero",
            ),
            (
                Insn::Alu32 {
                    op: AluOp::Lsh,
                    dst: Reg::R1,
                    src: Operand::Imm(32),
                },
                "shift by 32 is outside 0..32",
            ),
            (
                Insn::Alu64 {
                    op: AluOp::Neg,
                    dst: Reg::R1,
                    src: Operand::Reg(Reg::R2),
                },
                "neg takes no source operand; pass Operand::Imm(0)",
            ),
            (
                Insn::ToBe {
                    dst: Reg::R1,
                    bits: 8,
                },
                "byte swap width must be 16, 32 or 64 bits, not 8",
            ),
            (
                Insn::Load {
                    width: Width::U8,
                    dst: Reg::R10,
                    base: Reg::R1,
                    off: 0,
                },
                "r10 is the read-only frame pointer",
            ),
        ];
        for (insn, reason) in cases {
            let mut asm = Asm::new();
            asm.mov64_imm(Reg::R0, 0).push(insn).exit();
            assert_eq!(
                asm.finish(),
                Err(AsmError::InvalidInsn {
                    index: 1,
                    reason: reason.into()
                }),
                "{insn:?}"
            );
        }
    }

    #[test]
    fn empty_program() {
        assert_eq!(Asm::new().finish(), Err(AsmError::EmptyProgram));
    }
}
