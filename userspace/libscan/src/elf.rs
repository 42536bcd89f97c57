//! ELF header facts the inventory needs: whether a file is a shared library
//! or a program, its SONAME, and its architecture.

use object::elf;
use object::read::elf::{Dyn, ElfFile, FileHeader};
use object::{Endianness, Object, ReadRef};
use serde::{Deserialize, Serialize};

/// Role of an ELF file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ElfKind {
    SharedLibrary,
    Executable,
    /// Relocatable objects and core dumps, which the inventory skips.
    Other,
}

/// The facts read from one ELF file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElfInfo {
    pub kind: ElfKind,
    pub soname: Option<String>,
    pub architecture: String,
    /// DT_NEEDED entries: the libraries the file loads at run time.
    #[serde(default)]
    pub needed: Vec<String>,
}

/// Returns true when the bytes start with the ELF magic number.
pub fn is_elf(data: &[u8]) -> bool {
    data.starts_with(b"\x7fELF")
}

/// Parses the ELF header and dynamic section of `data`: a byte slice, or a
/// `object::ReadCache` over a file, which reads only the parts it needs.
pub fn parse<'data, R: ReadRef<'data>>(data: R, file_name: &str) -> Result<ElfInfo, String> {
    match object::FileKind::parse(data).map_err(|error| error.to_string())? {
        object::FileKind::Elf32 => parse_class::<elf::FileHeader32<Endianness>, R>(data, file_name),
        object::FileKind::Elf64 => parse_class::<elf::FileHeader64<Endianness>, R>(data, file_name),
        _ => Err("not an ELF file".to_string()),
    }
}

fn parse_class<'data, H: FileHeader<Endian = Endianness>, R: ReadRef<'data>>(
    data: R,
    file_name: &str,
) -> Result<ElfInfo, String> {
    let file = ElfFile::<H, R>::parse(data).map_err(|error| error.to_string())?;
    let header = file.elf_header();
    let endian = file.endian();
    let architecture = format!("{:?}", file.architecture()).to_ascii_lowercase();

    let (soname, needed) = read_dynamic(&file, endian, data)?;
    // libc.so.6 is both a library and runnable, and PIE programs (static
    // ones without an interpreter too) are ET_DYN like libraries: a SONAME
    // or a .so name decides for a library.
    let kind = match header.e_type(endian) {
        elf::ET_DYN if soname.is_some() || file_name.contains(".so") => ElfKind::SharedLibrary,
        elf::ET_DYN | elf::ET_EXEC => ElfKind::Executable,
        _ => ElfKind::Other,
    };
    Ok(ElfInfo {
        kind,
        soname,
        architecture,
        needed,
    })
}

/// Reads the SONAME and the DT_NEEDED names from the dynamic section. A
/// statically linked file has neither.
fn read_dynamic<'data, H: FileHeader<Endian = Endianness>, R: ReadRef<'data>>(
    file: &ElfFile<'data, H, R>,
    endian: Endianness,
    data: R,
) -> Result<(Option<String>, Vec<String>), String> {
    let sections = file.elf_section_table();
    let Some((entries, link)) = sections
        .dynamic(endian, data)
        .map_err(|error| error.to_string())?
    else {
        return Ok((None, Vec::new()));
    };
    let strings = sections
        .strings(endian, data, link)
        .map_err(|error| error.to_string())?;
    let mut soname = None;
    let mut needed = Vec::new();
    for entry in entries {
        let tag = entry.tag32(endian);
        if tag == Some(elf::DT_SONAME) || tag == Some(elf::DT_NEEDED) {
            let offset: u64 = entry.d_val(endian).into();
            let name = u32::try_from(offset)
                .ok()
                .and_then(|offset| strings.get(offset).ok())
                .ok_or("invalid string offset in the dynamic section")?;
            let name = String::from_utf8_lossy(name).into_owned();
            if tag == Some(elf::DT_SONAME) {
                soname = Some(name);
            } else {
                needed.push(name);
            }
        }
    }
    Ok((soname, needed))
}

/// Builds the smallest ELF file `parse` accepts: a 64-bit little-endian
/// x86-64 header with no sections, followed by `payload`.
#[cfg(test)]
pub(crate) fn minimal_elf(payload: &[u8]) -> Vec<u8> {
    let mut data = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    data.extend_from_slice(&elf::ET_DYN.to_le_bytes());
    data.extend_from_slice(&elf::EM_X86_64.to_le_bytes());
    data.extend_from_slice(&1u32.to_le_bytes());
    data.extend_from_slice(&[0; 24]);
    data.extend_from_slice(&0u32.to_le_bytes());
    for field in [64u16, 56, 0, 64, 0, 0] {
        data.extend_from_slice(&field.to_le_bytes());
    }
    data.extend_from_slice(payload);
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_header_parses() {
        let info = parse(&minimal_elf(b"")[..], "libdemo.so.1").unwrap();
        assert_eq!(info.kind, ElfKind::SharedLibrary);
        assert_eq!(info.soname, None);
        assert_eq!(info.architecture, "x86_64");

        let info = parse(&minimal_elf(b"")[..], "demo").unwrap();
        assert_eq!(info.kind, ElfKind::Executable);
        assert!(parse(&b"\x7fELF\x02"[..], "short").is_err());
    }
}
