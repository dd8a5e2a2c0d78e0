//! Loading an object file's cgroup_skb program into the kernel with aya.

use std::os::fd::{AsFd, BorrowedFd};

use aya::maps::MapData;
use aya::programs::{CgroupSkb, Program, ProgramError, ProgramFd};
use aya::sys::SyscallError;
use aya::{Ebpf, EbpfLoader};

use super::error::KernelError;
use crate::compiler::codegen::{SetTable, TableContents};

/// A cgroup_skb program loaded into the kernel (verified and JIT-compiled),
/// not yet attached anywhere. Dropping it unloads the program unless it
/// was pinned or attached with a link that outlives it.
#[derive(Debug)]
pub struct LoadedFilter {
    ebpf: Ebpf,
    name: String,
    // A duplicate of the program fd, so borrowing it cannot fail; the
    // kernel keeps the program alive while either fd is open.
    fd: ProgramFd,
}

impl LoadedFilter {
    /// The program's name in the object (and in the kernel).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The program's file descriptor, e.g. for `BPF_PROG_ATTACH` or pinning.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The loaded program, for attaching and pinning through aya.
    pub fn program(&self) -> Result<&CgroupSkb, KernelError> {
        let name = &self.name;
        let program = self
            .ebpf
            .program(name)
            .ok_or_else(|| not_found(&self.ebpf, name))?;
        program.try_into().map_err(|_| wrong_type(name, program))
    }

    /// The loaded program, mutably (attaching records links in it).
    pub fn program_mut(&mut self) -> Result<&mut CgroupSkb, KernelError> {
        cgroup_skb_mut(&mut self.ebpf, &self.name)
    }

    /// The whole aya object, for maps once there are any.
    pub fn ebpf(&self) -> &Ebpf {
        &self.ebpf
    }

    /// The whole aya object, mutably.
    pub fn ebpf_mut(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }

    /// The maps that hold the program's set tables, by table index, as
    /// the loader named them (see `compiler::set_table_index`).
    pub fn set_tables(&self) -> Vec<(usize, &MapData)> {
        let mut out: Vec<(usize, &MapData)> = self
            .ebpf
            .maps()
            .filter_map(|(name, map)| {
                Some((crate::compiler::set_table_index(name)?, map_data(map)?))
            })
            .collect();
        out.sort_by_key(|(i, _)| *i);
        out
    }

    /// Fills the tables the loader cannot: the LPM tries of
    /// `SetStrategy::LpmTrie`, from the compiled filter's `tables`. Data
    /// tables are already filled and frozen by the loader.
    pub fn fill_tables(&self, tables: &[SetTable]) -> Result<(), KernelError> {
        let maps = self.set_tables();
        for (index, table) in tables.iter().enumerate() {
            let TableContents::LpmTrie { entries, .. } = &table.contents else {
                continue;
            };
            let map = maps
                .iter()
                .find(|(i, _)| *i == index)
                .map(|(_, m)| *m)
                .ok_or(KernelError::MissingMap(SetTable::name(index)))?;
            for key in entries {
                super::sys::map_update_bytes(map.fd().as_fd(), key, &[1]).map_err(|io_error| {
                    KernelError::MapUpdate {
                        name: SetTable::name(index),
                        io_error,
                    }
                })?;
            }
        }
        Ok(())
    }
}

/// The map's data, for the map kinds set tables use.
fn map_data(map: &aya::maps::Map) -> Option<&MapData> {
    match map {
        aya::maps::Map::Array(data) | aya::maps::Map::LpmTrie(data) => Some(data),
        _ => None,
    }
}

/// Loads the cgroup_skb program `program_name` from an ELF object.
pub fn load(elf: &[u8], program_name: &str) -> Result<LoadedFilter, KernelError> {
    load_with_pins(elf, program_name, &[])
}

/// As [`load`], with some of the object's maps pinned in bpffs: a map
/// whose pin exists is reused (so a new program shares it with the old
/// one), otherwise it is created and pinned there.
pub fn load_with_pins(
    elf: &[u8],
    program_name: &str,
    map_pins: &[(&str, &std::path::Path)],
) -> Result<LoadedFilter, KernelError> {
    let aligned = Aligned::copy_of(elf);
    let mut loader = EbpfLoader::new();
    // Our objects carry no BTF and so no CO-RE relocations: loading
    // without the kernel's BTF skips relocation work that cannot apply.
    loader.btf(None);
    for (map, path) in map_pins {
        loader.map_pin_path(map, *path);
    }
    let mut ebpf = loader.load(aligned.bytes()).map_err(object_error)?;
    let cgroup = cgroup_skb_mut(&mut ebpf, program_name)?;
    cgroup.load().map_err(|err| load_error(program_name, err))?;
    let fd = cgroup
        .fd()
        .and_then(|fd| {
            fd.try_clone().map_err(|io_error| {
                SyscallError {
                    call: "dup",
                    io_error,
                }
                .into()
            })
        })
        .map_err(|source| KernelError::Program {
            call: "duplicating the loaded program's file descriptor",
            source,
        })?;

    Ok(LoadedFilter {
        ebpf,
        name: program_name.to_string(),
        fd,
    })
}

/// Map creation is the first privileged step of a load: an EPERM there
/// means the same as one from the program load.
fn object_error(err: aya::EbpfError) -> KernelError {
    match err {
        aya::EbpfError::MapError(aya::maps::MapError::CreateError { io_error, .. })
            if io_error.raw_os_error() == Some(libc::EPERM) =>
        {
            KernelError::PermissionDenied {
                call: "BPF_MAP_CREATE",
                io_error,
            }
        }
        err => KernelError::Object(Box::new(err)),
    }
}

fn load_error(name: &str, err: ProgramError) -> KernelError {
    match err {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            let verifier_log = verifier_log.to_string();
            // The kernel checks privileges before running the verifier, so
            // EPERM without a log means "not allowed", not "not safe".
            if io_error.raw_os_error() == Some(libc::EPERM) && verifier_log.trim().is_empty() {
                KernelError::PermissionDenied {
                    call: "BPF_PROG_LOAD",
                    io_error,
                }
            } else {
                KernelError::VerifierRejected {
                    name: name.to_string(),
                    io_error,
                    verifier_log,
                }
            }
        }
        source => KernelError::Program {
            call: "loading the program",
            source,
        },
    }
}

fn cgroup_skb_mut<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut CgroupSkb, KernelError> {
    // Looked up twice because returning the `program_mut` borrow from one
    // branch of a match would keep `ebpf` borrowed in the other.
    if ebpf.program(name).is_none() {
        return Err(not_found(ebpf, name));
    }
    let program = ebpf
        .program_mut(name)
        .ok_or_else(|| KernelError::ProgramNotFound {
            name: name.to_string(),
            available: Vec::new(),
        })?;
    let found = format!("{:?}", program.prog_type());
    program
        .try_into()
        .map_err(|_| KernelError::WrongProgramType {
            name: name.to_string(),
            found,
        })
}

fn not_found(ebpf: &Ebpf, name: &str) -> KernelError {
    let mut available: Vec<String> = ebpf.programs().map(|(n, _)| n.to_string()).collect();
    available.sort();
    KernelError::ProgramNotFound {
        name: name.to_string(),
        available,
    }
}

fn wrong_type(name: &str, program: &Program) -> KernelError {
    KernelError::WrongProgramType {
        name: name.to_string(),
        found: format!("{:?}", program.prog_type()),
    }
}

/// An 8-byte aligned copy of an object file: aya parses ELF headers in
/// place and needs them aligned, but callers may hand us any slice.
struct Aligned {
    buf: Vec<u8>,
    start: usize,
    len: usize,
}

impl Aligned {
    fn copy_of(bytes: &[u8]) -> Aligned {
        let mut buf = vec![0u8; bytes.len() + 8];
        let start = buf.as_ptr().align_offset(8).min(8);
        buf[start..start + bytes.len()].copy_from_slice(bytes);
        Aligned {
            buf,
            start,
            len: bytes.len(),
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_copy_is_aligned_and_equal() {
        let data: Vec<u8> = (0..=255).collect();
        for skip in 0..8 {
            let slice = &data[skip..];
            let copy = Aligned::copy_of(slice);
            assert_eq!(copy.bytes(), slice);
            assert_eq!(copy.bytes().as_ptr() as usize % 8, 0);
        }
    }
}
