//! Finds the external programs some integration tests drive (`redis-cli`,
//! `redis-benchmark`, `redis-server`, `python3`, `ss`, `ip`, `chromium`) and sets
//! `have_<name>` for each one on `PATH`. Tests that need a program are
//! `#[cfg_attr(not(have_x), ignore = "...")]`: without it `cargo test` lists them as
//! ignored, with the reason, instead of passing them silently. Under CI (`CI` set)
//! every one is set whatever is installed, so a missing program fails its tests: CI
//! installs them, and a missing one is a broken CI.
//!
//! `have_netns` is set (and always under CI) when `ip` is on `PATH` and this process
//! may make a network namespace, where the protected-mode test's peer lives: that
//! takes `CAP_SYS_ADMIN` and `CAP_NET_ADMIN`, which root has and a developer's own
//! account does not.

use std::path::Path;

const PROGRAMS: &[(&str, &str)] = &[
    ("redis-cli", "have_redis_cli"),
    ("redis-benchmark", "have_redis_benchmark"),
    ("redis-server", "have_redis_server"),
    ("python3", "have_python3"),
    ("ss", "have_ss"),
    ("ip", "have_ip"),
    ("chromium", "have_chromium"),
];

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| Path::new(&dir).join(program).is_file())
    })
}

/// Whether the effective capabilities include those `ip netns add` needs.
fn may_make_netns() -> bool {
    const CAP_NET_ADMIN: u32 = 12;
    const CAP_SYS_ADMIN: u32 = 21;
    let needed = (1u64 << CAP_NET_ADMIN) | (1u64 << CAP_SYS_ADMIN);
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|caps| u64::from_str_radix(caps.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & needed == needed)
}

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-env-changed=CI");
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
    for (program, cfg) in PROGRAMS {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        if ci || on_path(program) {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
    println!("cargo::rustc-check-cfg=cfg(have_netns)");
    if ci || (on_path("ip") && may_make_netns()) {
        println!("cargo::rustc-cfg=have_netns");
    }
}
