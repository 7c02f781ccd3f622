//! The live-machine and saved-copy paths against fake sysfs trees built in
//! a temporary directory from a fixture's hex dumps (the root is a
//! parameter, so nothing here reads the real /sys).

use std::fs;
use std::path::{Path, PathBuf};

use explain::{analyse, lspci, sysfs};

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("iommu-explain-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn fixture(name: &str) -> (String, String) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    (
        fs::read_to_string(dir.join(format!("{name}.linux-6.1.lspci"))).unwrap(),
        fs::read_to_string(dir.join(format!("{name}.linux-6.1.groups"))).unwrap(),
    )
}

/// A sysfs tree under `root` as Linux lays it out: config files (the first
/// `config_len` bytes), driver links, groups, osrelease, cmdline.
fn fake_machine(root: &Path, lspci_text: &str, config_len: usize, cmdline: &str) {
    let input = lspci::parse(lspci_text, "fixture").unwrap();
    let devices = root.join("sys/bus/pci/devices");
    for d in &input.devices {
        let bdf = d.bdf.unwrap().to_string();
        let dir = devices.join(&bdf);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("config"), &d.config[..config_len.min(d.config.len())]).unwrap();
        if let Some(driver) = &d.driver {
            std::os::unix::fs::symlink(format!("../../../bus/pci/drivers/{driver}"), dir.join("driver")).unwrap();
        }
        if let Some(g) = d.linux_group {
            let gdir = root.join(format!("sys/kernel/iommu_groups/{g}/devices"));
            fs::create_dir_all(&gdir).unwrap();
            std::os::unix::fs::symlink(format!("../../../../devices/pci0000:00/{bdf}"), gdir.join(&bdf)).unwrap();
        }
    }
    fs::create_dir_all(root.join("proc/sys/kernel")).unwrap();
    fs::write(root.join("proc/sys/kernel/osrelease"), "6.1.0-56-amd64\n").unwrap();
    fs::write(root.join("proc/cmdline"), format!("{cmdline}\n")).unwrap();
}

#[test]
fn live_machine_as_root_gives_linuxs_groups_and_agrees() {
    let t = TempDir::new("live");
    let (text, groups) = fixture("default");
    fake_machine(&t.0, &text, 4096, "console=ttyS0 intel_iommu=on");
    let input = sysfs::read_live(&t.0).unwrap();
    assert_eq!(input.source.kind, "live");
    assert_eq!(input.source.linux.as_deref(), Some("6.1.0-56-amd64"));
    assert_eq!(input.source.acs_override, None);
    assert!(!input.partial, "{:?}", input.problems);
    let r = analyse(&input);
    assert_eq!(report::render::canonical(&r), groups);
    assert!(r.comparison.unwrap().agree);
    let edu = r.functions.iter().find(|f| f.driver.is_some()).expect("driver links read");
    assert!(!edu.driver.as_deref().unwrap().contains('/'));
}

#[test]
fn as_a_normal_user_only_64_bytes_are_readable_and_the_tool_says_what_to_run() {
    let t = TempDir::new("user");
    let (text, _) = fixture("switch");
    fake_machine(&t.0, &text, 64, "quiet");
    let input = sysfs::read_live(&t.0).unwrap();
    assert!(input.partial);
    let first = &input.problems[0];
    assert!(first.contains("only 64 config bytes are readable as a normal user"), "{first}");
    assert!(first.contains("sudo iommu-explain"), "{first}");
    let r = analyse(&input);
    assert!(r.partial);
    assert!(r.functions.iter().all(|f| f.unknown.iter().any(|u| u.contains("only 64 config bytes"))));
}

#[test]
fn an_acs_override_on_the_command_line_is_detected() {
    let t = TempDir::new("override");
    let (text, _) = fixture("basic");
    fake_machine(&t.0, &text, 4096, "quiet pcie_acs_override=downstream,multifunction");
    let input = sysfs::read_live(&t.0).unwrap();
    assert_eq!(input.source.acs_override.as_deref(), Some("pcie_acs_override=downstream,multifunction"));
    assert!(explain::text::explain(&analyse(&input)).contains("ACS override on the command line"));
}

#[test]
fn save_then_read_the_copy_gives_the_same_report() {
    let t = TempDir::new("save");
    let (text, groups) = fixture("pcie-pci-bridge");
    let live = t.0.join("live");
    fake_machine(&live, &text, 4096, "intel_iommu=on");
    let copy = t.0.join("copy");
    sysfs::save(&live, &copy).unwrap();
    let a = analyse(&sysfs::read_live(&live).unwrap());
    let mut b = analyse(&sysfs::read_copy(&copy).unwrap());
    assert_eq!(report::render::canonical(&b), groups);
    b.source = a.source.clone();
    assert_eq!(a, b);
}

#[test]
fn a_copy_with_missing_files_names_each_path_and_goes_on() {
    let t = TempDir::new("missing");
    let (text, _) = fixture("switch");
    fake_machine(&t.0, &text, 4096, "quiet");
    let gone = t.0.join("sys/bus/pci/devices/0000:00:1f.2/config");
    fs::remove_file(&gone).unwrap();
    fs::remove_dir_all(t.0.join("proc")).unwrap();
    let input = sysfs::read_copy(&t.0).unwrap();
    assert!(input.partial);
    assert!(input.problems.iter().any(|p| p.contains(&gone.display().to_string())), "{:?}", input.problems);
    assert!(input.problems.iter().any(|p| p.contains("0000:00:1f.2 has no config file")), "{:?}", input.problems);
    let r = analyse(&input);
    assert!(r.functions.len() > 5);
    // No devices directory at all: unusable, naming the path.
    let empty = TempDir::new("empty");
    let e = sysfs::read_copy(&empty.0).unwrap_err();
    assert!(e.0.contains("bus/pci/devices"), "{e}");
}

/// A DMAR table (VT-d §8.1, §8.3) with one DRHD at `base`: INCLUDE_PCI_ALL,
/// or one PCI sub-hierarchy scope for the bridge at 00:DD.0.
fn dmar(base: u64, subtree_of: Option<u8>) -> Vec<u8> {
    let mut drhd = vec![0u8, 0, 0, 0, u8::from(subtree_of.is_none()), 0, 0, 0];
    drhd.extend_from_slice(&base.to_le_bytes());
    if let Some(dev) = subtree_of {
        drhd.extend_from_slice(&[2, 8, 0, 0, 0, 0, dev, 0]);
    }
    let len = drhd.len() as u16;
    drhd[2..4].copy_from_slice(&len.to_le_bytes());
    let mut t = vec![0u8; 48];
    t[0..4].copy_from_slice(b"DMAR");
    t.extend_from_slice(&drhd);
    let total = t.len() as u32;
    t[4..8].copy_from_slice(&total.to_le_bytes());
    t[8] = 1;
    t[36] = 38; // host address width - 1
    let sum = t.iter().fold(0u8, |a, b| a.wrapping_add(*b));
    t[9] = 0u8.wrapping_sub(sum);
    t
}

#[test]
fn without_groups_the_dmar_table_says_which_functions_an_iommu_covers() {
    let t = TempDir::new("dmar");
    let (text, groups) = fixture("default");
    fake_machine(&t.0, &text, 4096, "quiet");
    fs::remove_dir_all(t.0.join("sys/kernel/iommu_groups")).unwrap();
    let tables = t.0.join("sys/firmware/acpi/tables");
    fs::create_dir_all(&tables).unwrap();

    // One unit for everything: Linux's groups, each function on that unit.
    fs::write(tables.join("DMAR"), dmar(0xfed9_0000, None)).unwrap();
    let r = analyse(&sysfs::read_live(&t.0).unwrap());
    assert_eq!(r.dmar.as_ref().unwrap().units.len(), 1);
    assert_eq!(report::render::canonical(&r), groups);
    assert!(r.functions.iter().all(|f| f.iommu.as_deref() == Some("DRHD 0xfed90000")));

    // A unit covering only the switch below 00:02.0: nothing else is grouped.
    fs::write(tables.join("DMAR"), dmar(0xfed9_0000, Some(2))).unwrap();
    let r = analyse(&sysfs::read_live(&t.0).unwrap());
    let grouped: Vec<&str> = r.functions.iter().filter(|f| f.group.is_some()).map(|f| f.bdf.as_str()).collect();
    assert_eq!(
        grouped,
        ["0000:00:02.0", "0000:01:00.0", "0000:02:00.0", "0000:02:01.0", "0000:03:00.0", "0000:04:00.0"]
    );
    let lpc = r.functions.iter().find(|f| f.bdf == "0000:00:1f.0").unwrap();
    assert!(lpc.unknown.iter().any(|u| u.contains("no DMAR unit covers it")), "{:?}", lpc.unknown);
}
