//! The eleven eBPF registers.

use std::fmt;

/// An eBPF register.
///
/// `R0` holds helper results and the program's return value, `R1`-`R5`
/// carry helper arguments (and are clobbered by calls), `R6`-`R9` survive
/// calls, and `R10` is the read-only frame pointer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Reg {
    /// Return value and helper result.
    R0,
    /// First argument; holds the context (`struct __sk_buff *`) on entry.
    R1,
    /// Second helper argument.
    R2,
    /// Third helper argument.
    R3,
    /// Fourth helper argument.
    R4,
    /// Fifth helper argument.
    R5,
    /// Callee-saved.
    R6,
    /// Callee-saved.
    R7,
    /// Callee-saved.
    R8,
    /// Callee-saved.
    R9,
    /// Read-only frame pointer; the stack is the 512 bytes below it.
    R10,
}

impl Reg {
    /// Every register, in encoding order.
    pub const ALL: [Reg; 11] = [
        Reg::R0,
        Reg::R1,
        Reg::R2,
        Reg::R3,
        Reg::R4,
        Reg::R5,
        Reg::R6,
        Reg::R7,
        Reg::R8,
        Reg::R9,
        Reg::R10,
    ];

    /// The register number as encoded in the `dst_reg`/`src_reg` nibbles.
    pub const fn index(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for Reg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.index())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_follow_encoding_order() {
        for (i, reg) in Reg::ALL.iter().enumerate() {
            assert_eq!(usize::from(reg.index()), i);
        }
        assert_eq!(Reg::R10.to_string(), "r10");
    }
}
