//! Wraps an assembled program in a relocatable ELF object that aya's
//! `Ebpf::load` and `bpftool prog load` both accept, as clang would emit it.

use object::write::{Object, Symbol, SymbolSection};
use object::{
    Architecture, BinaryFormat, Endianness, SectionKind, SymbolFlags, SymbolKind, SymbolScope,
};

use crate::compiler::asm::Program;

/// The section holding the program. This legacy name sets the program
/// type (`BPF_PROG_TYPE_CGROUP_SKB`) without an expected attach type, so
/// one loaded program can be attached for ingress and egress alike;
/// `cgroup_skb/ingress` would pin it to one direction.
pub const PROGRAM_SECTION: &str = "cgroup/skb";

/// The default name of the program's function symbol.
pub const DEFAULT_PROGRAM_NAME: &str = "portwall";

/// The longest program name the kernel keeps: `BPF_OBJ_NAME_LEN` is 16
/// bytes including the terminating NUL, and aya silently truncates longer
/// names.
pub const MAX_PROGRAM_NAME_LEN: usize = 15;

/// A map the program uses, as declared in the object.
///
/// Written to the legacy `maps` section (`struct bpf_map_def`), which aya
/// reads; `MapRef(i)` in the program is `maps[i]`. A map with `data` is
/// instead a read-only data section (see [`MapDef::rodata`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapDef {
    /// The map's name (at most 15 bytes are kept by the kernel).
    pub name: String,
    /// `BPF_MAP_TYPE_*`.
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub flags: u32,
    /// The contents of a read-only table, or `None` for a map the loader
    /// creates empty.
    pub data: Option<std::sync::Arc<[u8]>>,
}

/// Prefix of the data sections that hold read-only tables. Loaders (aya,
/// libbpf) turn each into a one-element array map named after the section,
/// write the contents, freeze it and create it with `BPF_F_RDONLY_PROG`,
/// all before the program is loaded, so the program never sees the table
/// empty and nothing can change it afterwards.
pub const RODATA_PREFIX: &str = ".rodata.";

impl MapDef {
    /// A read-only table: a one-element array whose value is `data`,
    /// written as the section `.rodata.NAME`. The kernel keeps 15 bytes of
    /// a map name, so `NAME` should have at most 7. Programs read it with
    /// `Insn::LoadMapValue`.
    pub fn rodata(name: &str, data: std::sync::Arc<[u8]>) -> MapDef {
        MapDef {
            name: name.to_string(),
            map_type: map_type::ARRAY,
            key_size: 4,
            value_size: data.len() as u32,
            max_entries: 1,
            flags: map_flags::RDONLY_PROG,
            data: Some(data),
        }
    }

    /// The name loaders give the map: the section name for a table.
    pub fn loaded_name(&self) -> String {
        match self.data {
            Some(_) => format!("{RODATA_PREFIX}{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// `BPF_MAP_TYPE_*` numbers portwall uses (include/uapi/linux/bpf.h).
pub mod map_type {
    pub const ARRAY: u32 = 2;
    pub const PROG_ARRAY: u32 = 3;
    pub const PERCPU_ARRAY: u32 = 6;
    pub const LPM_TRIE: u32 = 11;
}

/// `BPF_F_*` map creation flags portwall uses.
pub mod map_flags {
    /// Required for LPM tries.
    pub const NO_PREALLOC: u32 = 1 << 0;
    /// Programs may only read the map.
    pub const RDONLY_PROG: u32 = 1 << 7;
}

/// How to write the object file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectOptions {
    /// Name of the function symbol: what aya looks the program up by and
    /// what the kernel (`bpftool prog show`) reports. Must match
    /// `[A-Za-z_][A-Za-z0-9_]*` and be at most [`MAX_PROGRAM_NAME_LEN`]
    /// bytes.
    pub program_name: String,
    /// Contents of the `license` section, without the NUL. Helpers that
    /// are GPL-only refuse to load under other licenses.
    pub license: String,
    /// The maps `Insn::LoadMap` instructions refer to, by index.
    pub maps: Vec<MapDef>,
}

impl Default for ObjectOptions {
    fn default() -> Self {
        ObjectOptions {
            program_name: DEFAULT_PROGRAM_NAME.to_string(),
            license: "GPL".to_string(),
            maps: Vec::new(),
        }
    }
}

/// Why an object file could not be written.
#[derive(thiserror::Error, Debug)]
pub enum ElfError {
    /// The program name would be rejected or altered by the kernel.
    #[error(
        "invalid program name `{name}`: use letters, digits and `_`, not starting with a digit, at most {MAX_PROGRAM_NAME_LEN} bytes"
    )]
    InvalidProgramName {
        /// The name given.
        name: String,
    },
    /// The license string cannot be stored as a C string.
    #[error("invalid license `{license}`: it must be non-empty and contain no NUL byte")]
    InvalidLicense {
        /// The license given.
        license: String,
    },
    /// An instruction refers to a map the options do not declare.
    #[error("the program refers to map #{index}, but only {count} maps are declared")]
    UnknownMap {
        /// The index used.
        index: u16,
        /// How many maps were declared.
        count: usize,
    },
    /// A direct value load refers to a map that is not a data section.
    #[error("the program reads map #{index} directly, but it is not a read-only table")]
    NotATable {
        /// The index used.
        index: u16,
    },
    /// The `object` crate failed to lay out the file.
    #[error("could not write the ELF object: {0}")]
    Write(#[from] object::write::Error),
}

/// Writes `program` as a relocatable little-endian ELF64 object for
/// `EM_BPF`: the instructions in section [`PROGRAM_SECTION`] under one
/// global function symbol, and a `license` section with its `_license`
/// symbol.
pub fn write_object(program: &Program, opts: &ObjectOptions) -> Result<Vec<u8>, ElfError> {
    if !valid_program_name(&opts.program_name) {
        return Err(ElfError::InvalidProgramName {
            name: opts.program_name.clone(),
        });
    }
    if opts.license.is_empty() || opts.license.contains('\0') {
        return Err(ElfError::InvalidLicense {
            license: opts.license.clone(),
        });
    }

    let mut obj = Object::new(BinaryFormat::Elf, Architecture::Bpf, Endianness::Little);

    let code = program.encode();
    let text = obj.add_section(
        Vec::new(),
        PROGRAM_SECTION.as_bytes().to_vec(),
        SectionKind::Text,
    );
    obj.set_section_data(text, code.as_slice(), 8);
    obj.add_symbol(Symbol {
        name: opts.program_name.as_bytes().to_vec(),
        value: 0,
        size: code.len() as u64,
        kind: SymbolKind::Text,
        // Dynamic scope is STB_GLOBAL with default visibility, as
        // clang emits for a SEC() function; loaders look up programs by
        // their global function symbols.
        scope: SymbolScope::Dynamic,
        weak: false,
        section: SymbolSection::Section(text),
        flags: SymbolFlags::None,
    });

    write_maps(&mut obj, text, program, &opts.maps)?;

    let mut license = opts.license.as_bytes().to_vec();
    license.push(0);
    let license_section = obj.add_section(Vec::new(), b"license".to_vec(), SectionKind::Data);
    obj.set_section_data(license_section, license.as_slice(), 1);
    obj.add_symbol(Symbol {
        name: b"_license".to_vec(),
        value: 0,
        size: license.len() as u64,
        kind: SymbolKind::Data,
        scope: SymbolScope::Dynamic,
        weak: false,
        section: SymbolSection::Section(license_section),
        flags: SymbolFlags::None,
    });

    Ok(obj.write()?)
}

/// Size of the legacy `struct bpf_map_def` as aya reads it: type, key
/// size, value size, max entries, flags, id, pinning (u32 each).
const MAP_DEF_SIZE: usize = 28;

/// The `maps` section with one symbol per map that has no contents, a
/// `.rodata.NAME` section with one symbol per table, and an `R_BPF_64_64`
/// relocation for each map load, which is how loaders find which map an
/// instruction means.
fn write_maps(
    obj: &mut Object<'_>,
    text: object::write::SectionId,
    program: &Program,
    maps: &[MapDef],
) -> Result<(), ElfError> {
    let loads = program.map_loads();
    if maps.is_empty() && loads.is_empty() {
        return Ok(());
    }
    let legacy: Vec<&MapDef> = maps.iter().filter(|m| m.data.is_none()).collect();
    let section = (!legacy.is_empty())
        .then(|| obj.add_section(Vec::new(), b"maps".to_vec(), SectionKind::Data));
    let mut data = Vec::with_capacity(legacy.len() * MAP_DEF_SIZE);
    let mut symbols = Vec::with_capacity(maps.len());
    for map in maps {
        let symbol = match (&map.data, section) {
            (Some(contents), _) => {
                let table = obj.add_section(
                    Vec::new(),
                    map.loaded_name().into_bytes(),
                    SectionKind::ReadOnlyData,
                );
                obj.set_section_data(table, contents.to_vec(), 8);
                obj.add_symbol(Symbol {
                    name: map.name.as_bytes().to_vec(),
                    value: 0,
                    size: contents.len() as u64,
                    kind: SymbolKind::Data,
                    scope: SymbolScope::Dynamic,
                    weak: false,
                    section: SymbolSection::Section(table),
                    flags: SymbolFlags::None,
                })
            }
            (None, Some(section)) => {
                let offset = data.len();
                for field in [
                    map.map_type,
                    map.key_size,
                    map.value_size,
                    map.max_entries,
                    map.flags,
                    0,
                    0,
                ] {
                    data.extend_from_slice(&field.to_le_bytes());
                }
                obj.add_symbol(Symbol {
                    name: map.name.as_bytes().to_vec(),
                    value: offset as u64,
                    size: MAP_DEF_SIZE as u64,
                    kind: SymbolKind::Data,
                    scope: SymbolScope::Dynamic,
                    weak: false,
                    section: SymbolSection::Section(section),
                    flags: SymbolFlags::None,
                })
            }
            (None, None) => unreachable!("a map without contents makes the maps section"),
        };
        symbols.push(symbol);
    }
    if let Some(section) = section {
        obj.set_section_data(section, data, 4);
    }
    for (slot, map, direct) in loads {
        let index = usize::from(map.0);
        let symbol = *symbols.get(index).ok_or(ElfError::UnknownMap {
            index: map.0,
            count: maps.len(),
        })?;
        if direct && maps[index].data.is_none() {
            return Err(ElfError::NotATable { index: map.0 });
        }
        obj.add_relocation(
            text,
            object::write::Relocation {
                offset: (slot * 8) as u64,
                symbol,
                addend: 0,
                flags: object::RelocationFlags::Elf {
                    r_type: object::elf::R_BPF_64_64,
                },
            },
        )?;
    }
    Ok(())
}

fn valid_program_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    let Some(first) = bytes.next() else {
        return false;
    };
    name.len() <= MAX_PROGRAM_NAME_LEN
        && (first.is_ascii_alphabetic() || first == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use object::elf;
    use object::read::{Object as _, ObjectSection as _, ObjectSymbol as _};

    use super::*;
    use crate::compiler::asm::{Asm, Reg};

    fn return_one() -> Program {
        let mut asm = Asm::new();
        asm.load_imm64(Reg::R0, 1).exit();
        asm.finish().expect("assembles")
    }

    #[test]
    fn object_layout_matches_what_loaders_expect() {
        let program = return_one();
        let bytes = write_object(&program, &ObjectOptions::default()).expect("writes");

        // e_ident: ELF64, little-endian; e_type ET_REL; e_machine EM_BPF.
        assert_eq!(&bytes[..4], b"\x7fELF");
        assert_eq!(bytes[4], elf::ELFCLASS64);
        assert_eq!(bytes[5], elf::ELFDATA2LSB);
        assert_eq!(u16::from_le_bytes([bytes[16], bytes[17]]), elf::ET_REL);
        assert_eq!(u16::from_le_bytes([bytes[18], bytes[19]]), elf::EM_BPF);

        let file = object::File::parse(bytes.as_slice()).expect("parses");
        assert_eq!(file.architecture(), Architecture::Bpf);

        let text = file
            .section_by_name(PROGRAM_SECTION)
            .expect("program section");
        assert_eq!(text.kind(), SectionKind::Text);
        assert_eq!(text.data().expect("data"), program.encode().as_slice());
        match text.flags() {
            object::SectionFlags::Elf { sh_flags } => {
                assert_eq!(sh_flags, u64::from(elf::SHF_ALLOC | elf::SHF_EXECINSTR))
            }
            other => panic!("unexpected flags {other:?}"),
        }

        let license = file.section_by_name("license").expect("license section");
        assert_eq!(license.data().expect("data"), b"GPL\0");

        let func = file
            .symbols()
            .find(|s| s.name() == Ok("portwall"))
            .expect("program symbol");
        assert_eq!(func.kind(), SymbolKind::Text);
        assert!(func.is_global());
        assert_eq!(func.address(), 0);
        assert_eq!(func.size(), 24);
        assert_eq!(func.section_index(), Some(text.index()));

        let lic = file
            .symbols()
            .find(|s| s.name() == Ok("_license"))
            .expect("license symbol");
        assert_eq!(lic.kind(), SymbolKind::Data);
        assert_eq!(lic.size(), 4);
        assert_eq!(lic.section_index(), Some(license.index()));
    }

    #[test]
    fn program_name_and_license_are_configurable() {
        let opts = ObjectOptions {
            program_name: "egress_web_1".into(),
            license: "Dual MIT/GPL".into(),
            maps: Vec::new(),
        };
        let bytes = write_object(&return_one(), &opts).expect("writes");
        let file = object::File::parse(bytes.as_slice()).expect("parses");
        assert!(file.symbols().any(|s| s.name() == Ok("egress_web_1")));
        let license = file.section_by_name("license").expect("license section");
        assert_eq!(license.data().expect("data"), b"Dual MIT/GPL\0");
    }

    #[test]
    fn bad_names_and_licenses_are_refused() {
        for name in ["", "1st", "has-dash", "has.dot", "sixteen_chars_xx"] {
            let opts = ObjectOptions {
                program_name: name.into(),
                ..ObjectOptions::default()
            };
            assert!(
                matches!(
                    write_object(&return_one(), &opts),
                    Err(ElfError::InvalidProgramName { .. })
                ),
                "{name:?}"
            );
        }
        assert!(valid_program_name("fifteen_chars_x"));
        for license in ["", "G\0PL"] {
            let opts = ObjectOptions {
                license: license.into(),
                ..ObjectOptions::default()
            };
            assert!(matches!(
                write_object(&return_one(), &opts),
                Err(ElfError::InvalidLicense { .. })
            ));
        }
    }
}
