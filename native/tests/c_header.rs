//! The generated header compiles as C (strict warnings) and a C program linked against
//! the shared library echoes one message through it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

#[test]
fn c_program_echoes_through_the_header() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    // `cargo test` does not refresh the cdylib; build it so the program links this code.
    let cargo = option_env!("CARGO").unwrap_or("cargo");
    let status = Command::new(cargo)
        .args(["build", "-q", "-p", "iouring_transport", "--lib"])
        .status()
        .expect("run cargo build");
    assert!(status.success(), "building the shared library failed");
    let lib_dir = target_dir().join("debug");
    let out = tempfile::tempdir().unwrap();
    let exe = out.path().join("echo_once");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let compiled = Command::new(&cc)
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic"])
        .arg("-I")
        .arg(manifest.join("include"))
        .arg(manifest.join("tests/c/echo_once.c"))
        .arg("-o")
        .arg(&exe)
        .arg("-L")
        .arg(&lib_dir)
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .arg("-liouring_transport")
        .output()
        .expect("run the C compiler");
    assert!(
        compiled.status.success(),
        "cc failed:\n{}",
        String::from_utf8_lossy(&compiled.stderr)
    );
    let run = Command::new(&exe).output().expect("run echo_once");
    assert!(
        run.status.success(),
        "echo_once failed: {}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        "echoed: hello from C"
    );
}
