//! The committed C header must match what cbindgen generates from the crate.
//! Regenerate with `IOT_UPDATE_HEADER=1 cargo test -p iouring_transport --test header`.

use std::path::Path;

#[test]
fn committed_header_is_up_to_date() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut generated);
    let path = crate_dir.join("include/iouring_transport.h");
    if std::env::var_os("IOT_UPDATE_HEADER").is_some() {
        std::fs::write(&path, &generated).expect("write header");
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "native/include/iouring_transport.h is out of date; run \
         IOT_UPDATE_HEADER=1 cargo test -p iouring_transport --test header and commit it"
    );
}
