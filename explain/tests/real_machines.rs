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

/// The one difference known: an Intel PCH (C220) whose root ports Linux
/// isolates through the chipset's RCBA register. Every difference there
/// is that rule, and nothing else differs.
#[test]
fn the_c220_pch_difference_is_the_chipset_register_quirk() {
    let dir = machines().into_iter().find(|d| d.ends_with("8617185FDC")).unwrap();
    let text = fs::read_to_string(dir.join("lspci-vvnn.txt")).unwrap();
    let r = explain::analyse(&explain::lspci::parse(&text, "m").unwrap());
    // Each PCH port says what config space cannot show, and the run is partial.
    assert!(r.partial);
    for port in ["0000:00:1c.0", "0000:00:1c.2", "0000:00:1c.3", "0000:00:1c.4"] {
        let f = r.functions.iter().find(|f| f.bdf == port).unwrap();
        assert!(f.unknown.iter().any(|u| u.starts_with("chipset quirk, not visible in config space")), "{port}");
    }
    let c = r.comparison.unwrap();
    assert_eq!(c.differences.len(), 1);
    let d = &c.differences[0];
    assert_eq!(d.cause_kind, "chipset-quirk");
    assert!(d.cause.contains("Intel PCH root port 0000:00:1c.0 [8086:8c10]"), "{}", d.cause);
    assert_eq!(d.ours.len(), 1, "the rules merge the four PCH ports and everything below them");
    assert!(
        ["0000:00:1c.0", "0000:00:1c.2", "0000:00:1c.3", "0000:00:1c.4"]
            .iter()
            .all(|p| d.linux.contains(&vec![p.to_string()]))
    );
}
