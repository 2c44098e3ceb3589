//! Build script: board link address and the payload list.
//!
//! 1. The kernel is linked at the board's load address (RAM base + 0x80000),
//!    written into `board.ld`, which `linker.ld` includes. The board comes from
//!    `KESTREL_BOARD` (`virt` or `rpi4`; `virt` when unset).
//! 2. Every `tests/*.rs` file is a payload. This script writes `payloads.rs`,
//!    which declares each file as a module and lists its `CASES`, so that
//!    adding a payload needs no other edit.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

/// Load address of the kernel image on each board.
const BOARDS: &[(&str, u64)] = &[("virt", 0x4008_0000), ("rpi4", 0x0008_0000)];

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));
    println!("cargo::rerun-if-env-changed=KESTREL_BOARD");
    println!("cargo::rerun-if-changed=linker.ld");
    println!("cargo::rerun-if-changed=tests");
    println!("cargo::rustc-check-cfg=cfg(board, values(\"virt\", \"rpi4\"))");

    let board = env::var("KESTREL_BOARD").unwrap_or_else(|_| "virt".into());
    let Some(&(_, base)) = BOARDS.iter().find(|(name, _)| *name == board) else {
        panic!("KESTREL_BOARD={board}: expected one of virt, rpi4");
    };
    println!("cargo::rustc-cfg=board=\"{board}\"");

    if env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("aarch64") {
        let board_ld = format!("KERNEL_BASE = {base:#x};\n");
        fs::write(out.join("board.ld"), board_ld).expect("write board.ld");
        println!("cargo::rustc-link-search=native={}", out.display());
        println!(
            "cargo::rustc-link-arg=-T{}",
            manifest.join("linker.ld").display()
        );
    }

    write_payloads(&manifest, &out);
}

/// Writes `payloads.rs`: one module per `tests/*.rs`, sorted by file name.
fn write_payloads(manifest: &std::path::Path, out: &std::path::Path) {
    let mut files: Vec<PathBuf> = fs::read_dir(manifest.join("tests"))
        .map(|dir| dir.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "rs"));
    files.sort();

    let mut code = String::new();
    let mut suites = String::new();
    for file in &files {
        println!("cargo::rerun-if-changed={}", file.display());
        let stem = file.file_stem().expect("file name").to_string_lossy();
        let module: String = stem
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        writeln!(
            code,
            "#[path = {:?}]\npub mod {module};",
            file.display().to_string()
        )
        .expect("write to string");
        writeln!(
            suites,
            "    crate::api::test::Suite {{ name: {stem:?}, cases: {module}::CASES }},"
        )
        .expect("write to string");
    }
    writeln!(
        code,
        "\n/// Every payload file's cases, in file-name order."
    )
    .expect("write");
    writeln!(
        code,
        "pub static SUITES: &[crate::api::test::Suite] = &[\n{suites}];"
    )
    .expect("write to string");
    fs::write(out.join("payloads.rs"), code).expect("write payloads.rs");
}
