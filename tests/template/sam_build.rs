//! `sam build`: the function is built for arm64 as the template asks.

use super::*;

/// ELF `e_machine` for 64-bit ARM.
pub(crate) const EM_AARCH64: u16 = 183;

/// The machine an ELF executable is built for, or why the bytes are not a 64-bit little-endian ELF.
pub(crate) fn elf_machine(bytes: &[u8]) -> Result<u16, String> {
    match bytes {
        [0x7f, b'E', b'L', b'F', class, data, ..] if bytes.len() >= 20 => {
            if *class != 2 {
                return Err(format!("ELF class {class}, not 64-bit"));
            }
            if *data != 1 {
                return Err(format!("ELF data encoding {data}, not little-endian"));
            }
            Ok(u16::from_le_bytes([bytes[18], bytes[19]]))
        }
        _ => Err("not an ELF file".to_owned()),
    }
}

#[test]
fn sam_build_produces_an_arm64_bootstrap() {
    let Some(sam) = find_tool("sam") else {
        missing("`sam` (AWS SAM CLI) is not installed: cannot run sam build");
        return;
    };
    if find_tool("cargo-lambda").is_none() {
        missing(
            "`cargo-lambda` is not installed: sam build (BuildMethod rust-cargolambda) needs it",
        );
        return;
    }
    if find_tool("zig").is_none() && find_tool("python-zig").is_none() {
        missing("zig (pip package `ziglang`) is not installed: cargo-lambda needs it for arm64");
        return;
    }
    let build_dir = tempfile::tempdir().expect("a temporary directory");
    // Not the target directory `cargo test` uses: cargo holds its build lock while the tests run,
    // and a nested build waiting for it would never finish. Kept between runs, so only the first
    // build is slow (release, fat LTO, cross-compiled).
    let cargo_target = std::env::var_os("LCW_SAM_CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("sam-build-target"));
    let out = run(
        "sam build",
        tool_command(&sam)
            .args(["build", "--template"])
            .arg(template_path())
            .arg("--build-dir")
            .arg(build_dir.path())
            .env("CARGO_TARGET_DIR", &cargo_target),
        60 * MINUTE,
    );
    assert!(out.status.success(), "sam build failed: {}", out.report());

    // One directory per function in the build dir; the Lambda runtime runs `bootstrap`.
    let bootstraps: Vec<PathBuf> = std::fs::read_dir(build_dir.path())
        .expect("sam build created the build directory")
        .filter_map(|entry| Some(entry.ok()?.path().join("bootstrap")))
        .filter(|path| path.is_file())
        .collect();
    assert_eq!(
        bootstraps.len(),
        1,
        "expected one bootstrap in {}, found {bootstraps:?}; sam build said: {}",
        build_dir.path().display(),
        out.report()
    );
    let bootstrap = &bootstraps[0];
    assert!(
        is_executable(bootstrap),
        "{} is not executable",
        bootstrap.display()
    );
    let bytes = std::fs::read(bootstrap).expect("read bootstrap");
    assert_eq!(
        elf_machine(&bytes),
        Ok(EM_AARCH64),
        "{} must be an arm64 (aarch64, e_machine 183) executable for `Architectures: [arm64]`",
        bootstrap.display()
    );
}

#[test]
fn elf_machine_reads_the_header() {
    let mut header = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
    header.resize(18, 0);
    header.extend_from_slice(&EM_AARCH64.to_le_bytes());
    assert_eq!(elf_machine(&header), Ok(EM_AARCH64));
    header[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86-64
    assert_eq!(elf_machine(&header), Ok(62));
    header[4] = 1;
    assert!(elf_machine(&header).is_err(), "32-bit must be refused");
    assert!(elf_machine(b"#!/bin/sh\n").is_err());
    assert!(elf_machine(&[]).is_err());
}
