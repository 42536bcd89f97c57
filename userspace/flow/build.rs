//! Compiles bpf/flow.bpf.c with clang into $OUT_DIR/flow.bpf.o, which
//! src/meter.rs embeds with include_bytes!. The headers come from the
//! libbpf-dev and linux-libc-dev packages.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let source = "bpf/flow.bpf.c";
    println!("cargo:rerun-if-changed={source}");
    println!("cargo:rerun-if-env-changed=CLANG");

    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".to_string());
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("flow.bpf.o");

    // <linux/bpf.h> includes <asm/types.h>, which Debian keeps in the
    // multiarch include directory that the BPF target does not search.
    // NOTE: this is the build host's directory, which is enough because
    // asm/types.h defines the same fixed-size types on every architecture.
    let multiarch = Command::new(&clang)
        .arg("-print-multiarch")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string())
        .unwrap_or_default();

    // The object must have the byte order of the target that loads it,
    // which differs from the build host when cross-compiling.
    let target = match env::var("CARGO_CFG_TARGET_ENDIAN").as_deref() {
        Ok("big") => "bpfeb",
        _ => "bpfel",
    };

    let mut command = Command::new(&clang);
    command.args(["-O2", "-g", "-target", target, "-mcpu=v3", "-Wall"]);
    if !multiarch.is_empty() {
        command.arg(format!("-I/usr/include/{multiarch}"));
    }
    command.arg("-c").arg(source).arg("-o").arg(&out);

    let status = match command.status() {
        Ok(status) => status,
        Err(err) => panic!(
            "failed to run {clang} to compile {source}: {err}; install clang, libbpf-dev \
             and linux-libc-dev (scripts/setup.d/flow.packages) or set CLANG"
        ),
    };
    if !status.success() {
        panic!("{clang} failed to compile {source} ({status}); see the compiler output above");
    }
}
