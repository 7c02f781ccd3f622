//! Boot the kernel through `run-qemu.sh`, exactly as a user does, and hand
//! back what it printed and how it ended.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root (this crate lives one level below it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("crate has a parent directory").to_path_buf()
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
            Err(format!("{what}\n--- status {}\n--- stdout\n{}\n--- stderr\n{}", self.status, self.stdout, self.stderr))
        }
    }

    /// The JSON report read back with the shared schema's types (the
    /// `report` crate, as `iommu-explain` writes it too).
    pub fn report(&self) -> Result<report::Report, String> {
        serde_json::from_str(&self.stdout)
            .map_err(|e| format!("report does not parse as the shared schema: {e}\n{}", self.stdout))
    }

    /// The JSON report as a generic value, after checking that it parses as
    /// the shared schema.
    pub fn json(&self) -> Result<serde_json::Value, String> {
        self.report()?;
        serde_json::from_str(&self.stdout).map_err(|e| format!("report is not JSON: {e}\n{}", self.stdout))
    }
}

/// QEMU's trace lines in a run's stderr. The kernel's log (stderr in
/// `--json` mode) and QEMU's trace share the stream, so a trace line can
/// land glued to the end of an unfinished log line ("...Intel VT-dvtd_dmar_enable
/// enable 1"): each line is cut at its first trace event name.
pub fn trace_lines(stderr: &str) -> Vec<&str> {
    const EVENTS: [&str; 3] = ["pci_cfg_read ", "pci_cfg_write ", "vtd_"];
    stderr.lines().filter_map(|l| EVENTS.iter().filter_map(|e| l.find(e)).min().map(|at| &l[at..])).collect()
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

/// One `dev` line of an oracle `.linux-6.1.raw` file: what Linux enumerated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OracleDevice {
    /// `SSSS:BB:DD.F` (the raw file omits the segment; it is always 0000).
    pub bdf: String,
    pub vendor: u64,
    pub device: u64,
    pub class: u64,
    /// Config space bytes Linux reads (`dev->cfg_size`): 256 or 4096.
    pub cfglen: u64,
    pub pcie_type: Option<u64>,
    pub acs_cap: Option<u64>,
    pub acs_ctrl: Option<u64>,
}

/// Parse the `dev` lines of a `.linux-6.1.raw` file.
pub fn parse_oracle_raw(text: &str) -> Vec<OracleDevice> {
    let hex = |v: &str| u64::from_str_radix(v, 16).ok();
    text.lines()
        .filter_map(|l| l.strip_prefix("dev "))
        .map(|l| {
            let mut words = l.split_whitespace();
            let mut d = OracleDevice {
                bdf: format!("0000:{}", words.next().unwrap_or("")),
                vendor: 0,
                device: 0,
                class: 0,
                cfglen: 0,
                pcie_type: None,
                acs_cap: None,
                acs_ctrl: None,
            };
            for w in words {
                let Some((k, v)) = w.split_once('=') else {
                    continue;
                };
                match k {
                    "vid" => d.vendor = hex(v).unwrap_or(0),
                    "did" => d.device = hex(v).unwrap_or(0),
                    "class" => d.class = hex(v).unwrap_or(0),
                    "cfglen" => d.cfglen = v.parse().unwrap_or(0),
                    "pcie_type" => d.pcie_type = hex(v),
                    "acs_cap" => d.acs_cap = hex(v),
                    "acs_ctrl" => d.acs_ctrl = hex(v),
                    _ => {}
                }
            }
            d
        })
        .collect()
}

#[cfg(test)]
mod tests {
    /// The failure seen in a CI run: the first trace event glued to the
    /// kernel's banner, which had not ended its line yet.
    #[test]
    fn a_trace_line_glued_to_a_log_line_is_found() {
        let stderr = "vtd-kernel 0.1.0: Intel VT-dvtd_dmar_enable enable 1\nvtd_ir_enable enable 1\n[INFO ] boot\n\
                      pci_cfg_read edu 00:05.0 @0x4 -> 0x103\n";
        assert_eq!(
            super::trace_lines(stderr),
            ["vtd_dmar_enable enable 1", "vtd_ir_enable enable 1", "pci_cfg_read edu 00:05.0 @0x4 -> 0x103"]
        );
    }
}
