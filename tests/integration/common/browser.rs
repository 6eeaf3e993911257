//! Headless Chromium (Debian `chromium`) for what a person looks at.

use std::path::Path;
use std::process::Command;

/// Opens `page` (a local HTML file) in headless Chromium: writes a
/// screenshot to `png` and returns the DOM after it rendered, or `None`
/// when Chromium is not installed (and not required).
pub fn render(page: &Path, png: &Path) -> Option<String> {
    let url = format!("file://{}", page.display());
    let run = |extra: &[String]| {
        Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--no-first-run",
                "--disable-extensions",
                "--window-size=1100,1700",
            ])
            .args(extra)
            .arg(&url)
            .output()
    };
    let shot = match run(&[format!("--screenshot={}", png.display())]) {
        Ok(o) => o,
        Err(_) => {
            assert!(!super::required("chromium (Debian package chromium)"));
            return None;
        }
    };
    assert!(
        png.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let dom = run(&["--dump-dom".to_string()]).expect("chromium runs");
    Some(String::from_utf8_lossy(&dom.stdout).into_owned())
}
