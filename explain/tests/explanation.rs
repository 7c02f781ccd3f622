//! What the explanation says: the comparison's causes, what would isolate
//! a shared group, and which ports isolate.

use std::path::PathBuf;

use explain::input::acs_override;
use explain::{analyse, lspci};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures").join(name)).unwrap()
}

/// `default` with Linux's group of 05:00.1 recorded as a group of its own
/// (as a kernel with an ACS override would report it).
fn split_input() -> explain::Input {
    let text = lspci::strip_hex(&fixture("default.linux-6.1.lspci"));
    let mut out = String::new();
    let mut in_target = false;
    for l in text.lines() {
        if !l.starts_with('\t') {
            in_target = l.starts_with("05:00.1 ");
        }
        if in_target && l.starts_with("\tIOMMU group: ") {
            out.push_str("\tIOMMU group: 999\n");
        } else {
            out.push_str(l);
            out.push('\n');
        }
    }
    lspci::parse(&out, "split").unwrap()
}

#[test]
fn a_difference_is_put_down_to_an_acs_override_then_the_kernel_version_then_the_rules() {
    let mut input = split_input();
    let r = analyse(&input);
    let c = r.comparison.unwrap();
    assert!(!c.agree);
    assert_eq!(c.differences.len(), 1);
    let d = &c.differences[0];
    assert_eq!(d.cause_kind, "rule");
    assert_eq!(d.ours, vec![vec!["0000:00:02.1", "0000:05:00.0", "0000:05:00.1"]]);
    assert_eq!(d.linux, vec![vec!["0000:00:02.1", "0000:05:00.0"], vec!["0000:05:00.1"]]);

    input.source.linux = Some("5.10.0-20-amd64".into());
    let d = analyse(&input).comparison.unwrap().differences.remove(0);
    assert_eq!(d.cause_kind, "kernel-version");
    assert!(d.cause.contains("Linux 5.10, not 6.1"), "{}", d.cause);

    input.source.acs_override = acs_override("quiet pcie_acs_override=downstream,multifunction");
    let d = analyse(&input).comparison.unwrap().differences.remove(0);
    assert_eq!(d.cause_kind, "acs-override");
    assert!(d.cause.contains("pcie_acs_override=downstream,multifunction"), "{}", d.cause);
}

#[test]
fn devices_without_a_group_line_are_not_covered_and_left_out() {
    let text = lspci::strip_hex(&fixture("basic.linux-6.1.lspci"));
    let mut out = String::new();
    let mut skip = false;
    for l in text.lines() {
        if !l.starts_with('\t') {
            skip = l.starts_with("00:00.0 ");
        }
        if !(skip && l.starts_with("\tIOMMU group: ")) {
            out.push_str(l);
            out.push('\n');
        }
    }
    let r = analyse(&lspci::parse(&out, "uncovered").unwrap());
    let host = r.functions.iter().find(|f| f.bdf == "0000:00:00.0").unwrap();
    assert_eq!(host.group, None);
    assert!(host.unknown.iter().any(|u| u.contains("no IOMMU covers it")));
    let c = r.comparison.unwrap();
    assert!(c.agree);
    assert_eq!(c.compared as usize, r.functions.len() - 1);
}

#[test]
fn a_shared_group_names_the_port_without_acs_and_the_ports_that_isolate() {
    let r = analyse(&lspci::parse(&fixture("default.linux-6.1.lspci"), "default").unwrap());
    let i = r.isolation.iter().find(|i| i.members.contains(&"0000:05:00.0".to_string())).unwrap();
    assert_eq!(i.gaps.len(), 1);
    assert_eq!(i.gaps[0].device, "0000:00:02.1");
    assert_eq!(i.gaps[0].lacks, "no ACS capability");
    assert!(i.gaps[0].acs_possible);
    assert_eq!(i.later_quirk, None);
    // Behind the PCIe-to-PCI bridge: an alias, not an ACS matter.
    let b = r.isolation.iter().find(|i| i.members.contains(&"0000:07:01.0".to_string())).unwrap();
    assert!(b.advice.iter().any(|a| a.contains("shares a requester id with 0000:06:00.0")), "{:?}", b.advice);
    for port in ["0000:00:02.0 (root port)", "0000:00:03.0 (root port)", "0000:40:00.0 (root port)"] {
        assert!(r.isolating_ports.contains(&port.to_string()), "{port}: {:?}", r.isolating_ports);
    }
    for port in ["0000:00:02.1", "0000:00:04.0", "0000:02:00.0"] {
        assert!(!r.isolating_ports.iter().any(|p| p.starts_with(port)), "{port}");
    }
}

#[test]
fn a_quirk_6_1_stable_took_from_later_linux_isolates_the_functions() {
    // A two-function Wangxun NIC without ACS below an ACS root port.
    let text = "\
00:00.0 Host bridge [0600]: Intel Corporation 82G33/G31/P35/P31 Express DRAM Controller [8086:29c0]
00:02.0 PCI bridge [0604]: Red Hat, Inc. QEMU PCIe Root port [1b36:000c] (prog-if 00 [Normal decode])
\tBus: primary=00, secondary=01, subordinate=01, sec-latency=0
\tCapabilities: [54] Express (v2) Root Port (Slot+), MSI 00
\tCapabilities: [100 v1] Access Control Services
\t\tACSCap:\tSrcValid+ TransBlk+ ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl- DirectTrans+
\t\tACSCtl:\tSrcValid+ TransBlk- ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl- DirectTrans-
01:00.0 Ethernet controller [0200]: Beijing Wangxun Technology Co., Ltd. Device [8088:1001] (rev 01)
\tCapabilities: [40] Express (v2) Endpoint, MSI 00
01:00.1 Ethernet controller [0200]: Beijing Wangxun Technology Co., Ltd. Device [8088:1001] (rev 01)
\tCapabilities: [40] Express (v2) Endpoint, MSI 00
";
    // Wangxun's quirk reached 6.1 stable (Debian 6.1.192 has it): each
    // function is isolated, so no group is shared and nothing is "later".
    let r = analyse(&lspci::parse(text, "wangxun").unwrap());
    assert!(r.isolation.is_empty(), "{:?}", r.isolation);
    let nic = r.groups.iter().find(|g| g.members.contains(&"0000:01:00.1".to_string())).unwrap();
    assert_eq!(nic.members.len(), 1);
}

#[test]
fn the_same_input_with_and_without_the_domain_gives_the_same_groups() {
    let text = fixture("pxb-two.linux-6.1.lspci");
    let with_domain: String = text
        .lines()
        .map(|l| {
            let header = l.len() > 8 && l.as_bytes()[2] == b':' && l.as_bytes()[5] == b'.';
            if header { format!("0000:{l}\n") } else { format!("{l}\n") }
        })
        .collect();
    let a = analyse(&lspci::parse(&text, "a").unwrap());
    let b = analyse(&lspci::parse(&with_domain, "b").unwrap());
    assert_eq!(report::render::canonical(&a), report::render::canonical(&b));
    assert_eq!(report::render::canonical(&a), fixture("pxb-two.linux-6.1.groups"));
}

#[test]
fn linux_merging_more_on_an_amd_iommu_machine_is_put_down_to_ivrs_aliases() {
    // A real AMD machine, with two groups Linux formed recorded as one.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/real-machines/DC43DDB50C");
    let text = std::fs::read_to_string(dir.join("lspci-vvnn.txt")).unwrap();
    let mut out = String::new();
    let mut target = false;
    for l in text.lines() {
        if !l.starts_with('\t') && !l.is_empty() {
            target = l.starts_with("11:00.1 ");
        }
        if target && l.starts_with("\tIOMMU group: ") {
            // 11:00.1 joins 11:00.0's group.
            let g = text.split("11:00.0 ").nth(1).unwrap().split("IOMMU group: ").nth(1).unwrap();
            out.push_str(&format!("\tIOMMU group: {}\n", g.lines().next().unwrap()));
        } else {
            out.push_str(l);
            out.push('\n');
        }
    }
    let c = analyse(&lspci::parse(&out, "amd").unwrap()).comparison.unwrap();
    assert_eq!(c.differences.len(), 1);
    assert_eq!(c.differences[0].cause_kind, "firmware-alias", "{}", c.differences[0].cause);
    assert_eq!(c.differences[0].linux, vec![vec!["0000:11:00.0", "0000:11:00.1"]]);
}

#[test]
fn vfs_on_their_pfs_bus_are_added_as_vfs_not_scanned_as_a_multifunction_device() {
    // An integrated PF on the root bus (00:05.0) with two VFs at offset 8,
    // stride 1: 00:06.0 and 00:06.1, which lspci names with their ids. A
    // scan of slot 06 would take them for one multifunction device without
    // ACS; Linux adds them as VFs, each single-function, each its own group.
    let vf = |f: u8| {
        format!(
            "00:06.{f} Display controller [0380]: Intel Corporation Device [8086:9a49] (rev 01)\n\
             \tCapabilities: [ac] MSI: Enable- Count=1/1 Maskable+ 64bit-\n\
             \tCapabilities: [d0] Express (v2) Root Complex Integrated Endpoint, MSI 00\n\
             \tIOMMU group: {}\n",
            10 + f
        )
    };
    let text = format!(
        "00:00.0 Host bridge [0600]: Intel Corporation Device [8086:9a14] (rev 01)
\tIOMMU group: 1
00:05.0 VGA compatible controller [0300]: Intel Corporation Device [8086:9a49] (rev 01)
\tCapabilities: [40] Express (v2) Root Complex Integrated Endpoint, MSI 00
\tCapabilities: [100 v1] Single Root I/O Virtualization (SR-IOV)
\t\tIOVCap:\tMigration-, Interrupt Message Number: 000
\t\tIOVCtl:\tEnable+ Migration- Interrupt- MSE+ ARIHierarchy-
\t\tIOVSta:\tMigration-
\t\tInitial VFs: 7, Total VFs: 7, Number of VFs: 2, Function Dependency Link: 00
\t\tVF offset: 8, stride: 1, Device ID: 9a49
\tIOMMU group: 2
{}{}",
        vf(0),
        vf(1)
    );
    let r = analyse(&lspci::parse(&text, "vf").unwrap());
    assert_eq!(
        report::render::canonical(&r),
        "0000:00:00.0\n0000:00:05.0\n0000:00:06.0\n0000:00:06.1\n",
        "{}",
        explain::text::explain(&r)
    );
    let vf0 = r.functions.iter().find(|f| f.bdf == "0000:00:06.0").unwrap();
    assert!(!vf0.multifunction);
    assert!(r.comparison.unwrap().agree);
}

/// `basic` twice, in domains 0000 and 0001, the second copy's Linux group
/// numbers moved up by `shift`.
fn two_domains(shift: u32) -> String {
    let text = lspci::strip_hex(&fixture("basic.linux-6.1.lspci"));
    let mut out = String::new();
    for (domain, add) in [("0000", 0), ("0001", shift)] {
        for l in text.lines() {
            if let Some(g) = l.strip_prefix("\tIOMMU group: ") {
                out.push_str(&format!("\tIOMMU group: {}\n", g.parse::<u32>().unwrap() + add));
            } else if !l.starts_with('\t') && !l.is_empty() {
                out.push_str(&format!("{domain}:{l}\n"));
            } else {
                out.push_str(l);
                out.push('\n');
            }
        }
    }
    out
}

#[test]
fn group_ids_are_machine_wide_across_domains() {
    let r = analyse(&lspci::parse(&two_domains(50), "two").unwrap());
    let mut ids: Vec<u32> = r.groups.iter().map(|g| g.id).collect();
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "no id is used twice");
    assert_eq!(ids, (0..n as u32).collect::<Vec<_>>(), "one allocator, segments in order");
    assert!(r.comparison.unwrap().agree);
    // Linux numbers groups machine-wide: the same numbers in both domains
    // would mean groups spanning them, which the rules never form.
    let c = analyse(&lspci::parse(&two_domains(0), "same").unwrap()).comparison.unwrap();
    assert!(!c.agree);
}

/// A C220-like PCH: LPC bridge 00:1f.0 with RCBA at 0xf0, two root ports
/// without an ACS capability in one slot (00:1c.0, 00:1c.2), a device below
/// each. Exact bytes, as a hex dump or sysfs as root gives them.
fn pch_machine(rcba_enabled: bool) -> explain::Input {
    use pci::sim::{SimConfig, SimFn, qemu};
    use pci::{Bdf, ConfigSpace};
    let mut sim = SimConfig::new();
    sim.at(0, 0, 0, qemu::q35_host());
    sim.at(0, 0x1c, 0, SimFn::new(0x8086, 0x8c10).class(0x060400).bridge(0, 1, 1).pcie(4).multifunction());
    sim.at(0, 0x1c, 2, SimFn::new(0x8086, 0x8c14).class(0x060400).bridge(0, 2, 2).pcie(4));
    sim.at(0, 0x1f, 0, SimFn::new(0x8086, 0x8c56).class(0x060100).poke32(0xf0, 0xfed1_c000 | u32::from(rcba_enabled)));
    sim.at(1, 0, 0, qemu::e1000e());
    sim.at(2, 0, 0, qemu::e1000e());
    let bdfs = [(0, 0, 0), (0, 0x1c, 0), (0, 0x1c, 2), (0, 0x1f, 0), (1, 0, 0), (2, 0, 0)];
    let mut input = explain::Input::default();
    for (bus, dev, func) in bdfs {
        let bdf = Bdf::new(0, bus, dev, func);
        let config = (0..4096u16).map(|o| sim.read8(bdf, o)).collect();
        input.devices.push(explain::input::InputDevice { bdf: Some(bdf), config, exact: true, ..Default::default() });
    }
    input
}

#[test]
fn the_intel_pch_quirk_is_known_from_the_lpc_bridges_rcba_register() {
    let on = analyse(&pch_machine(true));
    assert_eq!(
        report::render::canonical(&on),
        "0000:00:00.0\n0000:00:1c.0\n0000:00:1c.2\n0000:00:1f.0\n0000:01:00.0\n0000:02:00.0\n"
    );
    assert!(
        !on.partial,
        "the outcome is known: {:?}",
        on.functions.iter().flat_map(|f| &f.unknown).collect::<Vec<_>>()
    );
    let off = analyse(&pch_machine(false));
    assert_eq!(
        report::render::canonical(&off),
        "0000:00:00.0\n0000:00:1c.0 0000:00:1c.2 0000:01:00.0 0000:02:00.0\n0000:00:1f.0\n"
    );
    let port = off.functions.iter().find(|f| f.bdf == "0000:00:1c.0").unwrap();
    assert!(port.unknown.is_empty(), "RCBA disabled: Linux's quirk failed, and that is known");
}
