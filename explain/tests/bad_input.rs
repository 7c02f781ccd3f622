//! Bad input: a clear error naming the line or path, partial results
//! marked as such, never a panic; the command's exit statuses.

use std::path::PathBuf;
use std::process::Command;

use explain::{analyse, lspci, synthetic};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures").join(name)).unwrap()
}

fn run(args: &[&str], stdin: &str) -> (i32, String, String) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_iommu-explain"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn a_truncated_dump_names_the_line_and_the_rest_is_rebuilt_from_text() {
    let text = fixture("switch.linux-6.1.lspci");
    // Cut in the middle of the 0x30 row of the first dump.
    let at = text.find("\n30: ").unwrap() + 12;
    let cut = &text[..at];
    let line = cut.lines().count();
    let input = lspci::parse(cut, "cut.txt").unwrap();
    let p = input.problems.iter().find(|p| p.starts_with(&format!("cut.txt:{line}:"))).expect("problem names the line");
    assert!(p.contains("hex row at offset 30 has"), "{p}");
    assert!(input.partial);
    let r = analyse(&input);
    assert_eq!(r.functions.len(), 1);
    assert!(r.partial);
}

#[test]
fn a_bad_hex_line_is_named_and_that_function_falls_back_to_its_text() {
    let text = fixture("switch.linux-6.1.lspci");
    let row = "\n40: ";
    let at = text.find(row).unwrap() + row.len();
    let bad = format!("{}zz{}", &text[..at], &text[at + 2..]);
    let line = text[..at].lines().count();
    let input = lspci::parse(&bad, "bad.txt").unwrap();
    assert!(
        input
            .problems
            .iter()
            .any(|p| p.starts_with(&format!("bad.txt:{line}: hex row at offset 40: \"zz\" is not a byte"))),
        "{:?}",
        input.problems
    );
    // The function is rebuilt from its decoded text: groups unchanged.
    let r = analyse(&input);
    assert_eq!(report::render::canonical(&r), fixture("switch.linux-6.1.groups"));
}

#[test]
fn text_from_another_tool_and_an_empty_file_are_unusable_with_status_2() {
    let wiki = "IOMMU Group 1 00:01.0 PCI bridge [0604]: Intel Corporation Device [8086:1901] (rev 07)\n";
    let (status, out, err) = run(&["--lspci", "-"], wiki);
    assert_eq!(status, 2);
    assert!(out.is_empty());
    assert!(err.contains("<stdin>:1: not lspci output"), "{err}");
    let (status, _, err) = run(&["--lspci", "-", "--groups"], "");
    assert_eq!((status, err.contains("empty input")), (2, true), "{err}");
    let (status, _, err) = run(&["--lspci", "/nonexistent/lspci.txt"], "");
    assert_eq!(status, 2);
    assert!(err.contains("/nonexistent/lspci.txt: cannot read"), "{err}");
}

#[test]
fn usage_errors_have_status_2_and_check_without_groups_too() {
    assert_eq!(run(&["--frobnicate"], "").0, 2);
    assert_eq!(run(&["--json", "--groups"], "").0, 2);
    assert_eq!(run(&["--lspci"], "").0, 2);
    let (status, out, _) = run(&["--help"], "");
    assert_eq!(status, 0);
    assert!(out.contains("--lspci FILE"));
    let text = lspci::strip_hex(&fixture("basic.linux-6.1.lspci"));
    let no_groups: String = text.lines().filter(|l| !l.contains("IOMMU group:")).map(|l| format!("{l}\n")).collect();
    let (status, _, err) = run(&["--lspci", "-", "--check"], &no_groups);
    assert_eq!(status, 2, "{err}");
    let (status, out, _) = run(&["--lspci", "-", "--check"], &text);
    assert_eq!((status, out.starts_with("agree:")), (0, true), "{out}");
    let (status, out, _) = run(&["--lspci", "-", "--json"], &text);
    assert_eq!(status, 0);
    let r: report::Report = serde_json::from_str(&out).unwrap();
    assert_eq!(report::render::canonical(&r), fixture("basic.linux-6.1.groups"));
}

#[test]
fn capabilities_access_denied_is_marked_unknown_and_partial() {
    let text = lspci::strip_hex(&fixture("basic.linux-6.1.lspci"));
    // What lspci prints without root: no capability is decoded.
    let mut out = String::new();
    let mut skipping = false;
    let mut denied_added = false;
    for l in text.lines() {
        if l.starts_with('\t') && l.starts_with("\tCapabilities:") {
            if !denied_added {
                out.push_str("\tCapabilities: <access denied>\n");
                denied_added = true;
            }
            skipping = true;
            continue;
        }
        if skipping && l.starts_with("\t\t") {
            continue;
        }
        skipping = false;
        if !l.starts_with('\t') {
            denied_added = false;
        }
        out.push_str(l);
        out.push('\n');
    }
    let r = analyse(&lspci::parse(&out, "user.txt").unwrap());
    assert!(r.partial);
    assert!(r.functions.iter().any(|f| f.unknown.iter().any(|u| u.contains("access denied"))));
    let c = r.comparison.unwrap();
    if !c.agree {
        assert!(c.differences.iter().all(|d| d.cause_kind == "unknown-text"), "{:?}", c.differences);
    }
}

#[test]
fn a_machine_with_4000_functions_is_read_and_grouped() {
    let text = synthetic::lspci_text(2, 255, 7);
    let input = lspci::parse(&text, "big").unwrap();
    assert_eq!(input.devices.len(), 2 * 255 * 8);
    assert!(input.problems.is_empty(), "{:?}", &input.problems[..3.min(input.problems.len())]);
    let r = analyse(&input);
    assert_eq!(r.functions.len(), 4080);
    assert!(r.functions.iter().all(|f| f.group.is_some()));
    // Per slot of eight ports: the four without ACS share one group with
    // their endpoints; each port with ACS has its own, and so has each
    // endpoint below it (its functions share it: multifunction, no ACS).
    // 255 ports a segment: 31 full slots and one of seven (4 with ACS).
    assert_eq!(r.groups.len(), 2 * (31 * 9 + 9));
}

#[test]
fn a_64_byte_dump_as_a_normal_user_prints_it_is_marked_partial() {
    // `lspci -xnn` without root: 64 bytes, nothing decoded.
    let text = fixture("switch.linux-6.1.lspci");
    let mut out = String::new();
    for l in text.lines() {
        let hex_offset =
            l.split_once(':').and_then(|(o, _)| usize::from_str_radix(o, 16).ok().filter(|_| o.len() <= 3));
        match (l.starts_with('\t'), hex_offset) {
            (true, _) => {}
            (false, Some(off)) if off >= 0x40 => {}
            _ => {
                out.push_str(l);
                out.push('\n');
            }
        }
    }
    let input = lspci::parse(&out, "x.txt").unwrap();
    assert!(input.partial);
    assert!(input.devices.iter().all(|d| d.unknown.iter().any(|u| u.contains("only 64 config bytes"))));
    let r = analyse(&input);
    assert!(r.partial && !r.groups.is_empty());
}

/// Keep hex rows below `limit` only (what `lspci -xxx` prints: 256 bytes).
fn cut_dumps(text: &str, limit: usize, keep_text: bool) -> String {
    let mut out = String::new();
    for l in text.lines() {
        let off = l.split_once(':').and_then(|(o, r)| {
            (o.len() <= 3 && r.starts_with(' ')).then(|| usize::from_str_radix(o, 16).ok()).flatten()
        });
        let keep = match off {
            Some(o) => o < limit,
            None => keep_text || !l.starts_with('\t'),
        };
        if keep {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

#[test]
fn a_256_byte_dump_is_completed_from_the_decoded_text() {
    // lspci -vvnnxxx as root: 256 bytes each, the extended capabilities decoded.
    let text = cut_dumps(&fixture("default.linux-6.1.lspci"), 0x100, true);
    let input = lspci::parse(&text, "xxx.txt").unwrap();
    assert!(!input.partial, "{:?}", input.devices.iter().flat_map(|d| d.unknown.clone()).collect::<Vec<_>>());
    assert_eq!(report::render::canonical(&analyse(&input)), fixture("default.linux-6.1.groups"));
}

#[test]
fn a_256_byte_dump_without_text_says_the_extended_capabilities_are_unknown() {
    // lspci -xxx alone: PCIe functions lose ACS.
    let text = cut_dumps(&fixture("default.linux-6.1.lspci"), 0x100, false);
    let input = lspci::parse(&text, "xxx.txt").unwrap();
    assert!(input.partial);
    let port = input.devices.iter().find(|d| d.bdf.unwrap().to_string() == "0000:00:02.0").unwrap();
    assert!(port.unknown.iter().any(|u| u.contains("extended capabilities (ACS, ARI) unknown")), "{:?}", port.unknown);
    let host = input.devices.iter().find(|d| d.bdf.unwrap().to_string() == "0000:00:00.0").unwrap();
    assert!(host.unknown.is_empty(), "a conventional function's 256 bytes are all of it");
}
