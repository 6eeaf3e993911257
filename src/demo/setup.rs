//! The shipped demo configuration (config/demo.yaml and config/demo/*.yaml),
//! embedded in the binary so `gwanje demo` needs no files.

use crate::testbed::Setup;

/// The admin token the demo's gwanje is given (it never leaves the demo).
pub const TOKEN: &str = "demo-admin-token";
/// gwanje's API port inside the edge namespace.
pub const PORT: u16 = 9470;
/// The group the demo steers.
pub const GROUP: &str = "data-centre";

const FILES: [(&str, &str); 5] = [
    ("demo.yaml", include_str!("../../config/demo.yaml")),
    (
        "demo/routers.yaml",
        include_str!("../../config/demo/routers.yaml"),
    ),
    (
        "demo/portal.yaml",
        include_str!("../../config/demo/portal.yaml"),
    ),
    (
        "demo/admin-network.yaml",
        include_str!("../../config/demo/admin-network.yaml"),
    ),
    (
        "demo/mobile-id.yaml",
        include_str!("../../config/demo/mobile-id.yaml"),
    ),
];

/// The files to write into the demo's folder.
pub fn setup() -> Setup {
    let mut files: Vec<(String, String)> = FILES
        .iter()
        .map(|(p, t)| ((*p).to_string(), (*t).to_string()))
        .collect();
    files.push(("token".into(), TOKEN.into()));
    Setup {
        files,
        config: "demo.yaml".into(),
        port: PORT,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_shipped_demo_config_is_valid() {
        let dir = std::env::temp_dir().join(format!("gwanje-demo-setup-{}", std::process::id()));
        for (rel, text) in super::setup().files {
            let path = dir.join(rel);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
            crate::config::write_secret_file(&path, &text).expect("write");
        }
        let loaded = crate::config::load(&dir.join("demo.yaml"));
        let _ = std::fs::remove_dir_all(&dir);
        let plan = loaded.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.settings.listen.port(), super::PORT);
        assert!(plan.summary().contains(super::GROUP));
    }
}
