//! The report of one run: the machine's functions and groups with each
//! member's rule (the kernel's wording), the comparison with the groups
//! Linux formed, and what would isolate each shared group.

use std::collections::{BTreeMap, BTreeSet};

use iommu::group::Reason;
use pci::acs::{AcsFail, pci_acs_check, pci_acs_path_check, pci_acs_path_enabled};
use pci::acs_quirks::{AcsQuirk, PCI_ANY_ID, PCI_DEV_ACS_ENABLED, intel_pch_acs_match};
use pci::caps::PcieType;
use pci::{Bdf, REQ_ACS_FLAGS, Topology};
use report::names::{class_name, device_name};
use report::{AcsGap, Comparison, Difference, Function, Group, Isolation, Report};

use crate::input::Input;
use crate::machine::Machine;

/// ACS quirks that Linux gained after the 6.1.192 table the rules carry
/// (`pci::acs_quirks`, which already has what 6.1 stable took from later
/// releases: Wangxun NICs, Loongson root ports, Broadcom BCM5760X, more
/// Zhaoxin ports): vendor, device range, quirk. No entry has been verified
/// against a later quirks.c yet, so the list is empty and the explanation
/// says "none known" rather than guessing.
const LATER_ACS_QUIRKS: &[(u16, u16, u16, &str)] = &[];

/// How a note about a rule config space cannot show starts.
const HIDDEN: &str = "chipset quirk, not visible in config space:";

/// `6.1.2-1-pve` → (6, 1).
fn major_minor(v: &str) -> Option<(u32, u32)> {
    let mut it = v.split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

fn port_type_name(t: PcieType) -> String {
    format!("{t}")
}

/// Build the report of one run.
pub fn build(input: &Input, m: &mut Machine) -> Report {
    let by_bdf: BTreeMap<Bdf, &crate::input::InputDevice> =
        input.devices.iter().filter_map(|d| d.bdf.map(|b| (b, d))).collect();
    let mut report = Report {
        kernel: format!("iommu-explain {}", env!("CARGO_PKG_VERSION")),
        source: Some(input.source.clone()),
        problems: input.problems.clone(),
        partial: input.partial,
        ..Report::default()
    };
    dmar(input, &mut report);
    for seg in &m.segments {
        let topo = &seg.topology;
        for (i, f) in topo.functions.iter().enumerate() {
            let d = by_bdf.get(&f.bdf);
            let acs = f.caps.acs.map(|a| report::Acs {
                offset: a.offset,
                cap: a.cap,
                ctrl: pci::ConfigSpace::read16(&mut m.snapshot, f.bdf, a.offset + pci::regs::PCI_ACS_CTRL),
            });
            let name = device_name(f.vendor, f.device)
                .map(String::from)
                .or_else(|| d.and_then(|d| d.name.clone()))
                .unwrap_or_else(|| class_name(f.class).to_string());
            let mut unknown = d.map(|d| d.unknown.clone()).unwrap_or_default();
            if m.not_covered.contains(&f.bdf) {
                unknown.push(if input.has_linux_groups() {
                    "no IOMMU group in the input: no IOMMU covers it (left out of grouping)".into()
                } else {
                    "no IOMMU group: no DMAR unit covers it (left out of grouping)".into()
                });
            }
            if let Some(rule) = hidden_rule(input, f) {
                unknown.push(format!("{HIDDEN} {rule}"));
                report.partial = true;
            }
            report.functions.push(Function {
                bdf: f.bdf.to_string(),
                vendor: f.vendor,
                device: f.device,
                class: f.class,
                header_type: f.header_type,
                multifunction: f.multifunction,
                port_type: f.pcie_type.map(port_type_name),
                pcie_type: f.caps.pcie.map(|p| p.port_type.raw()),
                acs,
                parent: f.parent.map(|p| topo.functions[p].bdf.to_string()),
                group: seg.group_id(i),
                driver: d.and_then(|d| d.driver.clone()),
                port_services: None,
                rmrr: false,
                name,
                kind: f.kind().to_string(),
                linux_group: d.and_then(|d| d.linux_group),
                iommu: match m.unit_of.get(&f.bdf) {
                    Some(base) => Some(format!("DRHD {base:#x}")),
                    None if m.not_covered.contains(&f.bdf) => Some(report::render::NO_IOMMU.to_string()),
                    None => None,
                },
                port_type_bug: f.port_type_bug.map(port_type_name),
                cfg_size: f.cfg_size,
                unknown,
            });
        }
        for g in &seg.groups.groups {
            report.groups.push(Group {
                id: g.id + seg.id_base,
                members: g.members.iter().map(|x| topo.functions[x.function].bdf.to_string()).collect(),
                explanation: g.members.iter().map(|x| format!("{} {}", topo.functions[x.function].bdf, x)).collect(),
                ..Group::default()
            });
        }
        report.pci_errors.extend(topo.errors.iter().map(|e| e.to_string()));
    }
    for b in &m.unreached {
        report.problems.push(format!(
            "{b}: in the input but not reached by enumeration (no bridge in the input leads to bus {:02x}); no group",
            b.bus
        ));
    }
    if !m.unreached.is_empty() {
        report.partial = true;
    }
    isolation(m, &mut report);
    if input.has_linux_groups() {
        report.comparison = Some(compare(input, m, &report));
    }
    report
}

/// The DMAR table's units (which devices each covers: its scopes, or every
/// device of its segment with INCLUDE_PCI_ALL), parsed with the kernel's
/// own parser; the IVRS table is only noted.
fn dmar(input: &Input, report: &mut Report) {
    if input.ivrs {
        report.problems.push("ACPI IVRS table present: an AMD IOMMU (its coverage is not decoded here)".into());
    }
    let Some(bytes) = &input.dmar else { return };
    match iommu::vtd::dmar::parse(bytes) {
        Ok(d) => {
            report.dmar = Some(report::Dmar {
                host_address_width: d.host_address_width,
                flags: d.flags.bits(),
                units: d
                    .drhds()
                    .map(|h| report::DmarUnit {
                        register_base: h.register_base,
                        segment: h.segment,
                        flags: h.flags.bits(),
                        scopes: h.scopes.len() as u64,
                        ..report::DmarUnit::default()
                    })
                    .collect(),
                rmrr: d.rmrrs().map(|r| report::Rmrr { base: r.base, limit: r.limit }).collect(),
            })
        }
        Err(e) => report.problems.push(format!("DMAR table: {e}")),
    }
}

/// Every port below which a device would get a group of its own: root and
/// downstream ports whose ACS path to the root is complete
/// (`pci_acs_path_enabled(port, NULL, REQ_ACS_FLAGS)`), and every port the
/// rules judge from a quirk the same way.
fn isolating_ports(m: &mut Machine) -> Vec<String> {
    let mut out = Vec::new();
    for seg in &m.segments {
        let topo = &seg.topology;
        for (i, f) in topo.functions.iter().enumerate() {
            if f.pcie_type.is_some_and(PcieType::is_downstream_port)
                && f.secondary_scanned
                && pci_acs_path_enabled(&mut m.snapshot, topo, i, None, REQ_ACS_FLAGS)
            {
                out.push(format!("{} ({})", f.bdf, f.kind()));
            }
        }
    }
    out
}

fn fail_words(why: &AcsFail) -> String {
    match why {
        AcsFail::Missing { missing, .. } => {
            format!("ACS {} not enabled or not implemented", pci::acs::FlagNames(*missing))
        }
        other => other.to_string(),
    }
}

/// For every group of more than one device: the ports and functions whose
/// missing ACS merges it, a later Linux quirk for its ids, and advice.
fn isolation(m: &mut Machine, report: &mut Report) {
    let ports = isolating_ports(m);
    for seg in &m.segments {
        let topo = &seg.topology;
        for g in seg.groups.groups.iter().filter(|g| g.members.len() > 1) {
            let mut gaps: Vec<AcsGap> = Vec::new();
            let add = |gaps: &mut Vec<AcsGap>, topo: &Topology, at: usize, why: &AcsFail, prefix: &str| {
                let bdf = topo.functions[at].bdf.to_string();
                if !gaps.iter().any(|x| x.device == bdf) {
                    let acs_possible = !matches!(why, AcsFail::NotPcie | AcsFail::NeverAcs(_) | AcsFail::EndNotOnPath);
                    let lacks = format!("{prefix}{}", fail_words(why));
                    gaps.push(AcsGap { device: bdf, kind: topo.functions[at].kind().to_string(), lacks, acs_possible });
                }
            };
            let mut aliases = Vec::new();
            for member in &g.members {
                let i = member.function;
                if let Some(p) = topo.functions[i].parent
                    && let Err(brk) = pci_acs_path_check(&mut m.snapshot, topo, p, None, REQ_ACS_FLAGS)
                {
                    add(&mut gaps, topo, brk.at, &brk.why, "");
                }
                match &member.reason {
                    Reason::SharesSlot { with, .. } => {
                        for j in [topo.find(*with), Some(i)].into_iter().flatten() {
                            if let Err(why) = pci_acs_check(&mut m.snapshot, topo, j, REQ_ACS_FLAGS) {
                                add(&mut gaps, topo, j, &why, "multifunction, ");
                            }
                        }
                    }
                    Reason::BehindBridge { bridge, .. } | Reason::DmaAlias { with: bridge, .. } => {
                        aliases.push(format!(
                            "{} shares a requester id with {bridge}: no ACS setting separates them",
                            topo.functions[i].bdf
                        ));
                    }
                    _ => {}
                }
            }
            let involved = g
                .members
                .iter()
                .map(|x| x.function)
                .chain(gaps.iter().filter_map(|x| Bdf::parse(&x.device).and_then(|b| topo.find(b))));
            let later_quirk = involved.into_iter().find_map(|i| {
                let f = &topo.functions[i];
                LATER_ACS_QUIRKS.iter().find(|(v, lo, hi, _)| *v == f.vendor && (*lo..=*hi).contains(&f.device)).map(
                    |q| format!("{} [{:04x}:{:04x}]: {}, added after Linux 6.1.192", f.bdf, f.vendor, f.device, q.3),
                )
            });
            let mut advice = aliases;
            let fixable: Vec<&str> = gaps.iter().filter(|x| x.acs_possible).map(|x| x.device.as_str()).collect();
            let never: Vec<&str> = gaps.iter().filter(|x| !x.acs_possible).map(|x| x.device.as_str()).collect();
            if !fixable.is_empty() {
                advice.push(format!(
                    "ACS (SV/RR/CR/UF implemented and enabled) on {} would split it; no software setting of Linux 6.1 \
                     enables bits a device does not implement (an ACS override patch only pretends)",
                    fixable.join(", ")
                ));
            }
            if !never.is_empty() {
                advice.push(format!(
                    "{}: conventional PCI or a bridge type ACS never applies to: what is below stays together",
                    never.join(", ")
                ));
            }
            if ports.is_empty() {
                advice.push("no port of this machine isolates a device placed below it".into());
            } else {
                advice.push(format!(
                    "a device placed below one of the {} port(s) listed under \"Ports that isolate\" gets its own group",
                    ports.len()
                ));
            }
            report.isolation.push(Isolation {
                group: g.id + seg.id_base,
                members: g.members.iter().map(|x| topo.functions[x.function].bdf.to_string()).collect(),
                gaps,
                later_quirk,
                advice,
            });
        }
    }
    report.isolating_ports = ports;
}

/// A rule that decides this function's isolation from something the input
/// does not show: an Intel PCH root port whose ACS Linux enables through
/// chipset registers (`pci_quirk_enable_intel_pch_acs`) when the LPC
/// bridge's own bytes are not in the input, or an AMD southbridge function
/// whose quirk reads the IVRS table (`pci_quirk_amd_sb_acs`). The Intel
/// quirk is taken as applied (firmware leaves RCBA enabled, and the
/// write then succeeds); the AMD one as not applied (no IVRS is read).
pub fn hidden_rule(input: &Input, f: &pci::Function) -> Option<String> {
    if f.vendor == pci::ids::INTEL && intel_pch_acs_match(f) {
        // With the LPC bridge's own bytes the outcome is known
        // (`machine::intel_pch_acs_outcome`).
        let lpc = Bdf::new(f.bdf.segment, f.bdf.bus, 0x1f, 0);
        if input.devices.iter().any(|d| d.bdf == Some(lpc) && d.exact && d.config.len() >= 0xf4) {
            return None;
        }
        return Some(format!(
            "Intel PCH root port {} [8086:{:04x}]: Linux 6.1 isolates it through the chipset's RCBA register \
             (pci_quirk_enable_intel_pch_acs writes the LPC bridge's memory-mapped UPDCR), which config space \
             and lspci do not show; taken as succeeding (firmware leaves RCBA enabled): each such port gets its \
             own group, and if Linux merged them the write failed there",
            f.bdf, f.device
        ));
    }
    let amd_sb = PCI_DEV_ACS_ENABLED.iter().any(|q| {
        q.quirk == AcsQuirk::AmdSb && q.vendor == f.vendor && (q.device == f.device || q.device == PCI_ANY_ID)
    });
    amd_sb.then(|| {
        format!(
            "AMD southbridge function {} [{:04x}:{:04x}]: pci_quirk_amd_sb_acs decides from the ACPI IVRS table, \
             which config space does not show",
            f.bdf, f.vendor, f.device
        )
    })
}

/// The hidden rule deciding `bdf`'s isolation: its own or a bridge's above.
fn chipset_quirk(input: &Input, m: &Machine, bdf: Bdf) -> Option<String> {
    let idx = m.index();
    let &(s, mut i) = idx.get(&bdf)?;
    let topo = &m.segments[s].topology;
    for _ in 0..=topo.functions.len() {
        let f = &topo.functions[i];
        if let Some(rule) = hidden_rule(input, f) {
            return Some(rule);
        }
        i = f.parent?;
    }
    None
}

/// Compare our partition with Linux's on every device that carries a group
/// in the input, and give each difference its most likely cause.
fn compare(input: &Input, m: &Machine, report: &Report) -> Comparison {
    let ours: BTreeMap<&str, u32> =
        report.functions.iter().filter_map(|f| f.group.map(|g| (f.bdf.as_str(), g))).collect();
    let linux: BTreeMap<String, u32> =
        input.devices.iter().filter_map(|d| Some((d.bdf?.to_string(), d.linux_group?))).collect();
    // Facts missing from the input that can change a group (not the notes
    // that only say what was assumed the way Linux does it).
    let unknown: BTreeSet<&str> = report
        .functions
        .iter()
        .filter(|f| {
            f.unknown.iter().any(|u| {
                !u.starts_with("no IOMMU group") && !u.contains("taken as Linux enables it") && !u.starts_with(HIDDEN)
            })
        })
        .map(|f| f.bdf.as_str())
        .collect();
    let version = input.source.linux.as_deref().and_then(major_minor);
    // An AMD IOMMU shows as a PCI function of class 08 06 (IOMMU).
    let amd_iommu = input.ivrs || report.functions.iter().any(|f| f.vendor == pci::ids::AMD && f.class >> 8 == 0x0806);
    // Pieces: devices linked when they share our group or Linux's group.
    let mut by_ours: BTreeMap<u32, Vec<&str>> = BTreeMap::new();
    let mut by_linux: BTreeMap<u32, Vec<&str>> = BTreeMap::new();
    for d in linux.keys() {
        if let Some(g) = ours.get(d.as_str()) {
            by_ours.entry(*g).or_default().push(d);
        }
        by_linux.entry(linux[d]).or_default().push(d);
    }
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    let mut pieces: Vec<BTreeSet<&str>> = Vec::new();
    for d in linux.keys() {
        if placed.contains(d.as_str()) {
            continue;
        }
        let mut set = BTreeSet::new();
        let mut todo = vec![d.as_str()];
        while let Some(x) = todo.pop() {
            if !set.insert(x) {
                continue;
            }
            let same_ours = ours.get(x).and_then(|g| by_ours.get(g)).into_iter().flatten();
            let same_linux = linux.get(x).and_then(|g| by_linux.get(g)).into_iter().flatten();
            todo.extend(same_ours.chain(same_linux).filter(|y| !set.contains(**y)));
        }
        placed.extend(set.iter().copied());
        pieces.push(set);
    }
    let mut differences: Vec<Difference> = Vec::new();
    for set in pieces {
        let split = |key: &dyn Fn(&str) -> Option<u32>| -> Vec<Vec<String>> {
            let mut by: BTreeMap<Option<u32>, Vec<String>> = BTreeMap::new();
            for x in &set {
                by.entry(key(x)).or_default().push(x.to_string());
            }
            let mut v: Vec<Vec<String>> = by
                .into_iter()
                .flat_map(|(k, m)| match k {
                    Some(_) => vec![m],
                    None => m.into_iter().map(|x| vec![x]).collect(),
                })
                .collect();
            v.sort();
            v
        };
        let our_groups = split(&|x| ours.get(x).copied());
        let linux_groups = split(&|x| linux.get(x).copied());
        if our_groups == linux_groups && set.iter().all(|x| ours.contains_key(x)) {
            continue;
        }
        let first = set.iter().next().map(|s| s.to_string()).unwrap_or_default();
        let involved: Vec<&str> = set.iter().copied().collect();
        let (cause_kind, cause) = if let Some(x) = involved.iter().find(|x| !ours.contains_key(**x)) {
            ("not-found", format!("{x} is not reached by enumeration from the input, so the rules gave it no group"))
        } else if let Some(u) = involved.iter().find(|d| unknown.contains(**d)) {
            let what = report.functions.iter().find(|f| f.bdf == *u).map(|f| f.unknown.join("; ")).unwrap_or_default();
            ("unknown-text", format!("{u}: the input does not say enough: {what}"))
        } else if let Some(o) = &input.source.acs_override {
            (
                "acs-override",
                format!(
                    "the machine's kernel ran with {o}: the ACS override patch reports ACS where the hardware has none and splits groups the rules keep together"
                ),
            )
        } else if let Some(q) = involved.iter().filter_map(|d| Bdf::parse(d)).find_map(|b| chipset_quirk(input, m, b)) {
            ("chipset-quirk", q)
        } else if linux_groups.len() < our_groups.len() && amd_iommu {
            (
                "firmware-alias",
                "Linux put together devices the rules keep apart, on a machine with an AMD IOMMU: \
              the ACPI IVRS table's alias entries (applied by amd_iommu as DMA aliases) merge groups, and lspci does \
              not show them"
                    .to_string(),
            )
        } else if let Some((a, b)) = version.filter(|v| *v != (6, 1)) {
            (
                "kernel-version",
                format!("the machine ran Linux {a}.{b}, not 6.1: its ACS and alias rules or quirk tables differ here"),
            )
        } else {
            ("rule", "the Linux 6.1 rules give a different partition here; see each member's reason above".to_string())
        };
        differences.push(Difference {
            device: first,
            ours: our_groups,
            linux: linux_groups,
            cause,
            cause_kind: cause_kind.to_string(),
        });
    }
    Comparison { compared: linux.len() as u64, agree: differences.is_empty(), differences }
}
