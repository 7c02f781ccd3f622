//! Boot the kernel through `run-qemu.sh`, exactly as a user does, and hand
//! back what it printed and how it ended.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root (this crate lives one level below it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crate has a parent directory")
        .to_path_buf()
}

/// One finished run of `run-qemu.sh`.
#[derive(Debug)]
pub struct Run {
    /// run-qemu.sh's exit status: 0 pass, 1 fail, 2 set-up, 3 timeout.
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Fail with the whole output when `cond` is false.
    pub fn check(&self, cond: bool, what: &str) -> Result<(), String> {
        if cond {
            Ok(())
        } else {
            Err(format!(
                "{what}\n--- status {}\n--- stdout\n{}\n--- stderr\n{}",
                self.status, self.stdout, self.stderr
            ))
        }
    }

    pub fn json(&self) -> Result<serde_json::Value, String> {
        serde_json::from_str(&self.stdout)
            .map_err(|e| format!("report is not JSON: {e}\n{}", self.stdout))
    }
}

/// Run `./run-qemu.sh ARGS`.
pub fn run_qemu(args: &[&str]) -> Run {
    let out = Command::new(root().join("run-qemu.sh"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run-qemu.sh can be started");
    Run {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
