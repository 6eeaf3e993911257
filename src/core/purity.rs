//! Mechanical check that the core stays sans-I/O: no clocks, sockets, files or tokio.

use std::path::Path;

const BANNED: &[&str] = &[
    "tokio",
    "std::net",
    "std::fs",
    "std::thread",
    "std::process",
    "Instant",
    "SystemTime",
    "socket",
    "hyper",
    "rand::",
];

#[test]
fn core_sources_use_no_io_or_clock() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("src/core is readable") {
        let path = entry.expect("directory entry").path();
        if path.file_name().is_some_and(|n| n == "purity.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("core source is readable");
        for (no, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for banned in BANNED {
                assert!(
                    !code.contains(banned),
                    "{}:{}: the core must stay pure but uses `{banned}`",
                    path.display(),
                    no + 1
                );
            }
        }
        checked += 1;
    }
    assert!(
        checked >= 3,
        "expected the core's source files, found {checked}"
    );
}
