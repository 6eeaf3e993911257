//! Fault injection for tests of supervision, compiled into debug builds
//! only: a release binary has no such switch.

/// Panics the engine once `GWANJE_TEST_ENGINE_PANIC` is set (debug builds),
/// so tests can check that a dead engine ends the process.
pub fn engine_tick() {
    #[cfg(debug_assertions)]
    if std::env::var_os("GWANJE_TEST_ENGINE_PANIC").is_some() {
        panic!("engine panic injected by GWANJE_TEST_ENGINE_PANIC");
    }
}
