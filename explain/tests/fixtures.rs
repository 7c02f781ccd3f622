//! Every QEMU fixture's `lspci -vvnnxxxx` (taken inside the Linux 6.1
//! guest): the tool must print that fixture's Linux group list byte for
//! byte, from the hex dumps and again from the decoded text alone.

use std::fs;
use std::path::PathBuf;

use explain::{analyse, lspci};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// Every fixture that has an lspci dump, with its Linux group list.
fn cases() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for e in fs::read_dir(fixtures()).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".qemu") {
            let lspci = fixtures().join(format!("{stem}.linux-6.1.lspci"));
            let groups = fixtures().join(format!("{stem}.linux-6.1.groups"));
            let lspci = fs::read_to_string(&lspci).unwrap_or_else(|e| panic!("{}: {e}", lspci.display()));
            out.push((stem.to_string(), lspci, fs::read_to_string(groups).unwrap()));
        }
    }
    out.sort();
    out
}

fn groups_of(text: &str, name: &str) -> String {
    let input = lspci::parse(text, name).unwrap_or_else(|e| panic!("{name}: {e}"));
    report::render::canonical(&analyse(&input))
}

#[test]
fn every_fixture_has_an_lspci_dump() {
    let n = cases().len();
    assert!(n >= 29, "only {n} fixtures with a .linux-6.1.lspci");
}

#[test]
fn hex_dumps_give_linuxs_groups_byte_for_byte() {
    for (name, text, expected) in cases() {
        let input = lspci::parse(&text, &name).unwrap();
        assert_eq!(input.source.detail, "hex dumps and decoded text", "{name}");
        assert!(input.devices.iter().all(|d| d.exact), "{name}: every function from its hex dump");
        assert_eq!(groups_of(&text, &name), expected, "{name} (hex dumps)");
    }
}

#[test]
fn decoded_text_alone_gives_linuxs_groups_byte_for_byte() {
    for (name, text, expected) in cases() {
        let stripped = lspci::strip_hex(&text);
        assert!(stripped.len() < text.len() / 2, "{name}: hex rows stripped");
        let input = lspci::parse(&stripped, &name).unwrap();
        assert_eq!(input.source.detail, "decoded text", "{name}");
        assert!(input.devices.iter().all(|d| !d.exact), "{name}: every function rebuilt from text");
        assert_eq!(groups_of(&stripped, &name), expected, "{name} (decoded text)");
    }
}

#[test]
fn the_fixtures_agree_with_their_own_iommu_group_lines() {
    for (name, text, _) in cases() {
        let input = lspci::parse(&lspci::strip_hex(&text), &name).unwrap();
        let with_group = input.devices.iter().filter(|d| d.linux_group.is_some()).count();
        let r = analyse(&input);
        let c = r.comparison.unwrap_or_else(|| panic!("{name}: IOMMU group lines read"));
        assert!(c.agree, "{name}: {:?}", c.differences);
        assert_eq!(c.compared as usize, with_group, "{name}");
        // A function without a group line is one no IOMMU covers: no group.
        let uncovered = r.functions.iter().filter(|f| f.linux_group.is_none());
        assert!(uncovered.clone().all(|f| f.group.is_none()), "{name}");
        assert_eq!(uncovered.count(), r.functions.len() - with_group, "{name}");
    }
}

#[test]
fn json_reads_back_with_the_same_types_and_matches_groups() {
    for (name, text, expected) in cases().into_iter().take(5) {
        let r = analyse(&lspci::parse(&text, &name).unwrap());
        let back: report::Report = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r, "{name}");
        assert_eq!(report::render::canonical(&back), expected, "{name}");
        assert!(back.functions.iter().all(|f| f.group.is_some()), "{name}");
    }
}
