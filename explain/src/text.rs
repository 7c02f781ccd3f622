//! The default explanation: the tree and groups (shared rendering from the
//! `report` crate, as the kernel prints them), then the comparison with
//! Linux's groups, what would isolate each shared group, and what the
//! input could not say.

use std::fmt::Write;

use report::{Comparison, Report, render};

pub fn explain(r: &Report) -> String {
    let mut out = String::new();
    let src = r.source.clone().unwrap_or_default();
    let _ = writeln!(out, "{} on {} {} ({})", r.kernel, src.kind, src.path, src.detail);
    if let Some(v) = &src.linux {
        let _ = writeln!(out, "  the machine ran Linux {v}");
    }
    if let Some(o) = &src.acs_override {
        let _ = writeln!(out, "  ACS override on the command line: {o} (groups Linux reported are not isolation)");
    }
    if r.partial {
        let _ = writeln!(out, "  PARTIAL: some facts are missing from the input (see \"Unknown\" below)");
    }
    let _ = writeln!(out, "== PCI tree: {} functions", r.functions.len());
    out.push_str(&render::tree(r));
    for e in &r.pci_errors {
        let _ = writeln!(out, "  error: {e}");
    }
    let _ = writeln!(out, "== IOMMU groups (Linux 6.1 rules): {}", r.groups.len());
    out.push_str(&render::groups(r));
    if let Some(c) = &r.comparison {
        if c.agree {
            let _ = writeln!(
                out,
                "== Compared with the groups Linux formed: the same partition on all {} devices with a group",
                c.compared
            );
        } else {
            let _ = writeln!(
                out,
                "== Compared with the groups Linux formed: {} difference(s) over {} devices with a group",
                c.differences.len(),
                c.compared
            );
            differences(&mut out, c);
        }
    }
    if !r.isolation.is_empty() {
        let _ = writeln!(out, "== What would isolate each shared group");
        for i in &r.isolation {
            let _ = writeln!(out, "  group {}: {}", i.group, i.members.join(" "));
            for g in &i.gaps {
                let _ = writeln!(out, "    {} ({}): {}", g.device, g.kind, g.lacks);
            }
            match &i.later_quirk {
                Some(q) => {
                    let _ = writeln!(out, "    later Linux: {q}");
                }
                None => {
                    let _ =
                        writeln!(out, "    later Linux: no ACS quirk known for these ids beyond Linux 6.1.192's table");
                }
            }
            for a in &i.advice {
                let _ = writeln!(out, "    {a}");
            }
        }
    }
    if !r.isolating_ports.is_empty() {
        let _ = writeln!(out, "== Ports that isolate: a single-function device below one gets its own group");
        for p in &r.isolating_ports {
            let _ = writeln!(out, "  {p}");
        }
    }
    let unknown: Vec<_> = r.functions.iter().filter(|f| !f.unknown.is_empty()).collect();
    if !unknown.is_empty() {
        let _ = writeln!(out, "== Unknown from the input");
        for f in unknown {
            for u in &f.unknown {
                let _ = writeln!(out, "  {}: {u}", f.bdf);
            }
        }
    }
    if !r.problems.is_empty() {
        let _ = writeln!(out, "== Problems");
        for p in &r.problems {
            let _ = writeln!(out, "  {p}");
        }
    }
    out
}

/// Each difference from Linux's groups with its likely cause.
fn differences(out: &mut String, c: &Comparison) {
    for d in &c.differences {
        let _ =
            writeln!(out, "  at {}: the rules give {}; Linux gave {}", d.device, brackets(&d.ours), brackets(&d.linux));
        let _ = writeln!(out, "    likely cause ({}): {}", d.cause_kind, d.cause);
    }
}

/// `--check`: one line of verdict, then each difference with its cause.
pub fn check(r: &Report) -> String {
    let mut out = String::new();
    let Some(c) = &r.comparison else { return out };
    if c.agree {
        let _ = writeln!(out, "agree: the same partition on all {} devices with a group in the input", c.compared);
    } else {
        let _ = writeln!(
            out,
            "differ: {} difference(s) over {} devices with a group in the input",
            c.differences.len(),
            c.compared
        );
        differences(&mut out, c);
    }
    out
}

/// `[a b] [c]`.
fn brackets(groups: &[Vec<String>]) -> String {
    groups.iter().map(|g| format!("[{}]", g.join(" "))).collect::<Vec<_>>().join(" ")
}
