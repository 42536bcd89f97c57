//! Classification of a file as an ELF executable, shared object, script or
//! data, from its first bytes and its ELF headers.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use object::elf::{
    FileHeader32, FileHeader64, DF_1_PIE, DT_FLAGS_1, DT_SONAME, ET_DYN, ET_EXEC, PT_INTERP,
};
use object::read::elf::{Dyn, FileHeader, ProgramHeader};
use object::{Endianness, ReadCache};

use crate::Kind;

const ELF_MAGIC: &[u8; 4] = b"\x7fELF";
const EI_CLASS: usize = 4;
const ELFCLASS32: u8 = 1;
const ELFCLASS64: u8 = 2;

/// File name suffixes of compressed kernel modules, with the magic bytes of
/// their compression format. finit_module(2) with MODULE_INIT_COMPRESSED_FILE
/// passes the compressed file to kernel_read_file, and so to the LSM hook,
/// before it decompresses (init_module_from_file in kernel/module/main.c,
/// Linux 6.12). So the compressed file's digest is the one to approve.
const COMPRESSED_MODULES: &[(&str, &[u8])] = &[
    (".ko.xz", b"\xfd7zXZ\x00"),
    (".ko.zst", b"\x28\xb5\x2f\xfd"),
    (".ko.gz", b"\x1f\x8b"),
];

/// Classifies `file`, whose name is `name`. Returns `None` for a file the
/// policy does not need: one that is neither ELF, nor a `#!` script, nor a
/// compressed kernel module, or a script without any execute bit in `mode`,
/// because exec(2) rejects it.
///
/// ELF files are classified whatever their mode, because shared objects are
/// mapped with mmap and often have no execute bit. A file with the ELF magic
/// but headers that do not parse is [`Kind::Other`], and so is a compressed
/// kernel module.
pub(crate) fn classify(file: &File, mode: u32, name: &str) -> io::Result<Option<Kind>> {
    let mut start = [0u8; 6];
    let length = read_prefix(file, &mut start)?;
    let start = &start[..length];

    if start.starts_with(ELF_MAGIC) {
        return Ok(Some(classify_elf(file, start.get(EI_CLASS).copied())));
    }
    if start.starts_with(b"#!") && mode & 0o111 != 0 {
        return Ok(Some(Kind::Script));
    }
    let is_compressed_module = COMPRESSED_MODULES
        .iter()
        .any(|(suffix, magic)| name.ends_with(suffix) && start.starts_with(magic));
    if is_compressed_module {
        return Ok(Some(Kind::Other));
    }
    Ok(None)
}

/// Reads up to `buffer.len()` bytes from the start of `file`, fewer only at
/// the end of the file.
fn read_prefix(file: &File, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read_at(&mut buffer[filled..], filled as u64) {
            Ok(0) => break,
            Ok(count) => filled += count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

fn classify_elf(file: &File, class: Option<u8>) -> Kind {
    let data = ReadCache::new(file);
    let kind = match class {
        Some(ELFCLASS64) => classify_header::<FileHeader64<Endianness>>(&data),
        Some(ELFCLASS32) => classify_header::<FileHeader32<Endianness>>(&data),
        _ => None,
    };
    kind.unwrap_or(Kind::Other)
}

/// Classifies by e_type. ET_DYN is used both for shared objects and for
/// PIE executables, so for ET_DYN the dynamic section decides: DF_1_PIE in
/// DT_FLAGS_1 marks an executable, and DT_SONAME marks a shared object.
/// Without either, PT_INTERP marks an executable. PT_INTERP alone is not
/// enough, because glibc's libc.so.6 has one so that it can be run.
/// Returns `None` when the headers do not parse.
fn classify_header<Elf: FileHeader<Endian = Endianness>>(data: &ReadCache<&File>) -> Option<Kind> {
    let header = Elf::parse(data).ok()?;
    let endian = header.endian().ok()?;
    let program_headers = header.program_headers(endian, data).ok()?;

    let kind = match header.e_type(endian) {
        ET_EXEC => Kind::ElfExecutable,
        ET_DYN => {
            let dynamic = read_dynamic::<Elf>(program_headers, endian, data);
            let has_interpreter = program_headers
                .iter()
                .any(|ph| ph.p_type(endian) == PT_INTERP);
            if dynamic.pie || (has_interpreter && !dynamic.soname) {
                Kind::ElfExecutable
            } else {
                Kind::ElfSharedObject
            }
        }
        _ => Kind::Other,
    };
    Some(kind)
}

/// The dynamic section flags that tell a PIE from a shared object.
#[derive(Default)]
struct DynamicFlags {
    /// DT_FLAGS_1 has DF_1_PIE.
    pie: bool,
    /// DT_SONAME is present.
    soname: bool,
}

/// Reads the dynamic section. A dynamic section that does not parse counts
/// as empty.
fn read_dynamic<Elf: FileHeader<Endian = Endianness>>(
    program_headers: &[Elf::ProgramHeader],
    endian: Endianness,
    data: &ReadCache<&File>,
) -> DynamicFlags {
    let mut flags = DynamicFlags::default();
    let entries = program_headers
        .iter()
        .filter_map(|ph| ph.dynamic(endian, data).ok().flatten())
        .flatten();
    for entry in entries {
        match entry.tag32(endian) {
            Some(DT_FLAGS_1) => {
                flags.pie |= entry
                    .val32(endian)
                    .is_some_and(|value| value & DF_1_PIE != 0)
            }
            Some(DT_SONAME) => flags.soname = true,
            _ => {}
        }
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn classify_bytes(bytes: &[u8], mode: u32) -> Option<Kind> {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        classify(&file, mode, "fixture").unwrap()
    }

    #[test]
    fn classify_host_executable() {
        let file = File::open("/bin/true").unwrap();
        assert_eq!(
            classify(&file, 0o755, "fixture").unwrap(),
            Some(Kind::ElfExecutable)
        );
    }

    #[test]
    fn classify_runnable_libc_as_shared_object() {
        // glibc's libc.so.6 has PT_INTERP but also DT_SONAME.
        let libc = [
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib/aarch64-linux-gnu/libc.so.6",
        ]
        .into_iter()
        .find(|path| std::path::Path::new(path).is_file())
        .expect("no host libc.so.6");
        let file = File::open(libc).unwrap();
        assert_eq!(
            classify(&file, 0o755, "fixture").unwrap(),
            Some(Kind::ElfSharedObject)
        );
    }

    #[test]
    fn classify_script_needs_execute_bit() {
        assert_eq!(classify_bytes(b"#!/bin/sh\n", 0o755), Some(Kind::Script));
        assert_eq!(classify_bytes(b"#!/bin/sh\n", 0o644), None);
    }

    #[test]
    fn classify_data_and_short_files() {
        assert_eq!(classify_bytes(b"", 0o755), None);
        assert_eq!(classify_bytes(b"#", 0o755), None);
        assert_eq!(classify_bytes(b"plain text\n", 0o755), None);
    }

    #[test]
    fn classify_compressed_module_by_name_and_magic() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"\xfd7zXZ\x00compressed").unwrap();

        assert_eq!(
            classify(&file, 0o644, "ext4.ko.xz").unwrap(),
            Some(Kind::Other)
        );
        assert_eq!(classify(&file, 0o644, "notes.xz").unwrap(), None);
        assert_eq!(classify(&file, 0o644, "ext4.ko.zst").unwrap(), None);
    }

    #[test]
    fn classify_truncated_elf_as_other() {
        assert_eq!(
            classify_bytes(b"\x7fELF\x02\x01\x01", 0o644),
            Some(Kind::Other)
        );
    }
}
