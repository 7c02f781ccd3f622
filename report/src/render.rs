//! The shared text rendering of a report's PCI part: the tree
//! (`lspci -tv` style) with each function's ACS words and group, the groups
//! with each member's rule, and the canonical group list. The kernel's
//! report and `iommu-explain` print these same lines.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write;

use crate::schema::{Function, Group, Report};

/// `Function::iommu` of a function no DMA-remapping unit covers.
pub const NO_IOMMU: &str = "no IOMMU";

/// `BDF VVVV:DDDD name (kind)`.
pub fn describe(f: &Function) -> String {
    format!("{} {:04x}:{:04x} {} ({})", f.bdf, f.vendor, f.device, f.name, f.kind)
}

/// `ACS cap XXXX ctrl XXXX` or `no ACS`.
pub fn acs_state(f: &Function) -> String {
    match f.acs {
        Some(a) => format!("ACS cap {:04x} ctrl {:04x}", a.cap, a.ctrl),
        None => String::from("no ACS"),
    }
}

/// The tree of a report's functions.
pub fn tree(report: &Report) -> String {
    tree_of(&report.functions)
}

/// The tree: each bridge's subtree right below it, two spaces a level,
/// every line indented by two spaces.
pub fn tree_of(fns: &[Function]) -> String {
    let index: BTreeMap<&str, usize> = fns.iter().enumerate().map(|(i, f)| (f.bdf.as_str(), i)).collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); fns.len()];
    let mut top = Vec::new();
    for (i, f) in fns.iter().enumerate() {
        match f.parent.as_deref().and_then(|p| index.get(p)) {
            Some(&p) if p != i => children[p].push(i),
            _ => top.push(i),
        }
    }
    let mut out = String::new();
    let mut seen = vec![false; fns.len()];
    let mut stack: Vec<(usize, usize)> = top.iter().rev().map(|&i| (i, 0)).collect();
    while let Some((i, depth)) = stack.pop() {
        if core::mem::replace(&mut seen[i], true) {
            continue;
        }
        let f = &fns[i];
        let group = match (f.group, f.iommu.as_deref()) {
            (Some(g), _) => format!("group {g}"),
            (None, Some(NO_IOMMU)) => String::from(NO_IOMMU),
            (None, _) => String::from("group -"),
        };
        let _ = writeln!(out, "  {:indent$}{}  [{}] {}", "", describe(f), acs_state(f), group, indent = depth * 2);
        stack.extend(children[i].iter().rev().map(|&c| (c, depth + 1)));
    }
    out
}

/// A report's groups with each member's rule.
pub fn groups(report: &Report) -> String {
    groups_of(&report.groups)
}

/// One line per member, groups by id: `  group 3: 0000:02:00.0 reason`.
pub fn groups_of(groups: &[Group]) -> String {
    let mut by_id: Vec<_> = groups.iter().collect();
    by_id.sort_by_key(|g| g.id);
    let mut out = String::new();
    for g in by_id {
        for line in &g.explanation {
            let _ = writeln!(out, "  group {}: {line}", g.id);
        }
    }
    out
}

/// The oracle's canonical form: one group a line, members sorted and
/// space-separated, lines sorted bytewise, each ending in a newline.
pub fn canonical(report: &Report) -> String {
    canonical_of(report.groups.iter().map(|g| g.members.clone()))
}

/// The canonical form of any partition.
pub fn canonical_of(groups: impl Iterator<Item = Vec<String>>) -> String {
    let mut lines: Vec<String> = groups
        .filter(|m| !m.is_empty())
        .map(|mut m| {
            m.sort();
            m.join(" ")
        })
        .collect();
    lines.sort();
    let mut out = String::new();
    for l in lines {
        out.push_str(&l);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Acs;
    use alloc::string::ToString;

    fn f(bdf: &str, parent: Option<&str>, group: Option<u32>) -> Function {
        Function {
            bdf: bdf.to_string(),
            vendor: 0x1b36,
            device: 0x000c,
            name: "pcie-root-port".to_string(),
            kind: "root port".to_string(),
            parent: parent.map(|p| p.to_string()),
            group,
            ..Function::default()
        }
    }

    fn report() -> Report {
        let mut rp = f("0000:00:02.0", None, Some(1));
        rp.acs = Some(Acs { offset: 0x148, cap: 0x5f, ctrl: 0x1d });
        let mut ep = f("0000:01:00.0", Some("0000:00:02.0"), Some(1));
        ep.name = "edu".to_string();
        ep.kind = "PCIe function".to_string();
        let host = f("0000:00:00.0", None, None);
        Report {
            functions: vec![host, rp, ep],
            groups: vec![Group {
                id: 1,
                members: vec!["0000:01:00.0".to_string(), "0000:00:02.0".to_string()],
                explanation: vec!["0000:00:02.0 a".to_string(), "0000:01:00.0 b".to_string()],
                ..Group::default()
            }],
            ..Report::default()
        }
    }

    #[test]
    fn tree_puts_children_below_their_bridge_with_acs_words_and_group() {
        let t = tree(&report());
        let expected = "  0000:00:00.0 1b36:000c pcie-root-port (root port)  [no ACS] group -\n\
                        \x20 0000:00:02.0 1b36:000c pcie-root-port (root port)  [ACS cap 005f ctrl 001d] group 1\n\
                        \x20   0000:01:00.0 1b36:000c edu (PCIe function)  [no ACS] group 1\n";
        assert_eq!(t, expected);
    }

    #[test]
    fn canonical_sorts_members_and_lines() {
        assert_eq!(canonical(&report()), "0000:00:02.0 0000:01:00.0\n");
        let g = [vec!["b".to_string()], vec!["a".to_string(), "0".to_string()]];
        assert_eq!(canonical_of(g.into_iter()), "0 a\nb\n");
    }

    #[test]
    fn groups_prints_each_members_rule_by_id() {
        assert_eq!(groups(&report()), "  group 1: 0000:00:02.0 a\n  group 1: 0000:01:00.0 b\n");
    }

    #[test]
    fn json_round_trip_keeps_every_field() {
        let r = report();
        let text = serde_json::to_string(&r).unwrap();
        let back: Report = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
    }
}
