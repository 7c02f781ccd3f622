//! Real machines (public hardware probes, `fixtures/real-machines/ID/`):
//! `--check` against the groups Linux formed there. Each machine's
//! `expected-check.txt` holds the verdict byte for byte: "agree", or each
//! difference with the rule that config space cannot show.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

fn machines() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/real-machines");
    let mut v: Vec<PathBuf> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.join("lspci-vvnn.txt").exists()).collect();
    v.sort();
    v
}

fn kernel(dir: &std::path::Path) -> String {
    let meta: serde_json::Value = serde_json::from_str(&fs::read_to_string(dir.join("meta.json")).unwrap()).unwrap();
    meta["kernel"].as_str().unwrap().split_whitespace().next().unwrap().to_string()
}

/// `--check` as a user runs it with what the probe published: the lspci
/// output and, when there is one, the dmesg of the same boot (kernel
/// version and command line); otherwise the kernel named in meta.json.
fn check(dir: &std::path::Path) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_iommu-explain"));
    cmd.arg("--lspci").arg(dir.join("lspci-vvnn.txt")).arg("--check");
    if dir.join("dmesg-excerpt.txt").exists() {
        cmd.arg("--dmesg").arg(dir.join("dmesg-excerpt.txt"));
    } else {
        cmd.args(["--kernel-version", &kernel(dir)]);
    }
    let out = cmd.output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8(out.stdout).unwrap())
}

#[test]
fn there_are_real_machines() {
    assert!(machines().len() >= 4);
}

#[test]
fn check_gives_the_recorded_verdict_on_every_real_machine() {
    for dir in machines() {
        let (status, out) = check(&dir);
        let expected = fs::read_to_string(dir.join("expected-check.txt")).unwrap();
        assert_eq!(out, expected, "{}", dir.display());
        let agree = expected.starts_with("agree:");
        assert_eq!(status, if agree { 0 } else { 1 }, "{}", dir.display());
    }
}

#[test]
fn where_they_agree_the_group_list_is_linuxs() {
    for dir in machines() {
        let text = fs::read_to_string(dir.join("lspci-vvnn.txt")).unwrap();
        let r = explain::analyse(&explain::lspci::parse(&text, "m").unwrap());
        if r.comparison.as_ref().unwrap().agree {
            let groups = fs::read_to_string(dir.join("groups.txt")).unwrap();
            assert_eq!(report::render::canonical(&r), groups, "{}", dir.display());
        }
    }
}

/// An Intel PCH (C220) whose root ports Linux isolates through the
/// chipset's RCBA register, which lspci text never shows: the tool takes
/// the quirk as succeeding (firmware leaves RCBA enabled), says so on each
/// port, marks the run partial, and so agrees with Linux there.
#[test]
fn the_c220_pch_ports_are_isolated_by_the_assumed_chipset_quirk() {
    let dir = machines().into_iter().find(|d| d.ends_with("8617185FDC")).unwrap();
    let text = fs::read_to_string(dir.join("lspci-vvnn.txt")).unwrap();
    let r = explain::analyse(&explain::lspci::parse(&text, "m").unwrap());
    assert!(r.partial);
    let group_of = |bdf: &str| r.functions.iter().find(|f| f.bdf == bdf).unwrap().group;
    let ports = ["0000:00:1c.0", "0000:00:1c.2", "0000:00:1c.3", "0000:00:1c.4"];
    for port in ports {
        let f = r.functions.iter().find(|f| f.bdf == port).unwrap();
        assert!(
            f.unknown
                .iter()
                .any(|u| u.starts_with("chipset quirk, not visible in config space")
                    && u.contains("taken as succeeding")),
            "{port}"
        );
        assert_eq!(r.functions.iter().filter(|g| g.group == group_of(port)).count(), 1, "{port} alone");
    }
    assert!(r.comparison.unwrap().agree);
}
