//! The generated header compiles as C (strict warnings) and a C program linked against
//! the shared library echoes one message through it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where this test's build lives, read from its own path (`<profile dir>/deps/<exe>`),
/// so any target dir, `--target` and profile work: the profile dir, the target dir,
/// and the `--target` triple when the build used one (the target dir's root holds
/// cargo's CACHEDIR.TAG, a triple's directory does not).
fn build_layout() -> (PathBuf, PathBuf, Option<String>) {
    let exe = std::env::current_exe().expect("the test executable's path");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("cargo runs tests from <profile dir>/deps/")
        .to_path_buf();
    let above = profile
        .parent()
        .expect("the profile dir's parent")
        .to_path_buf();
    if above.join("CACHEDIR.TAG").exists() {
        return (profile, above, None);
    }
    let triple = above.file_name().map(|t| t.to_string_lossy().into_owned());
    let root = above.parent().expect("the target dir").to_path_buf();
    (profile, root, triple)
}

/// The test runs under AddressSanitizer (the C program then needs its runtime too).
fn under_asan() -> bool {
    std::env::var("RUSTFLAGS").is_ok_and(|flags| flags.contains("sanitizer=address"))
}

#[test]
fn c_program_echoes_through_the_header() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    // `cargo test` does not refresh the cdylib; build it so the program links this code.
    let cargo = option_env!("CARGO").unwrap_or("cargo");
    let (lib_dir, target_dir, triple) = build_layout();
    let mut build = Command::new(cargo);
    build
        .args([
            "build",
            "-q",
            "-p",
            "iouring_transport",
            "--lib",
            "--target-dir",
        ])
        .arg(&target_dir);
    if let Some(triple) = &triple {
        build.args(["--target", triple]);
    }
    if lib_dir.ends_with("release") {
        build.arg("--release");
    }
    let status = build.status().expect("run cargo build");
    assert!(status.success(), "building the shared library failed");
    let out = tempfile::tempdir().unwrap();
    let exe = out.path().join("echo_once");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let mut compile = Command::new(&cc);
    if under_asan() {
        compile.arg("-fsanitize=address");
    }
    if triple.as_deref().is_some_and(|t| t.starts_with("i686")) {
        compile.arg("-m32");
    }
    let compiled = compile
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
