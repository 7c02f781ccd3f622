//! Text forms of a grouping: the oracle's canonical form, and a report with
//! each member's reason.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use pci::Topology;

use super::Groups;

/// The oracle's canonical form (`*.linux-6.1.groups`): one group per line,
/// members as `SSSS:BB:DD.F` sorted and space-separated, lines sorted
/// bytewise (as `LC_ALL=C sort`), each ending in a newline. Group ids do
/// not appear, so the form compares partitions only.
pub fn canonical(groups: &Groups, topo: &Topology) -> String {
    let mut lines: Vec<String> = groups
        .groups
        .iter()
        .map(|g| {
            let mut names: Vec<String> =
                g.members.iter().map(|m| alloc::format!("{}", topo.functions[m.function].bdf)).collect();
            names.sort();
            names.join(" ")
        })
        .collect();
    lines.sort();
    let mut out = String::new();
    for line in lines {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// One line per member, by group id: "group 3: 0000:02:00.0 — reason".
pub fn report(groups: &Groups, topo: &Topology) -> String {
    let mut by_id: Vec<&super::Group> = groups.groups.iter().collect();
    by_id.sort_by_key(|g| g.id);
    let mut out = String::new();
    for g in by_id {
        for m in &g.members {
            let _ = writeln!(out, "group {}: {} {}", g.id, topo.functions[m.function].bdf, m);
        }
    }
    out
}
