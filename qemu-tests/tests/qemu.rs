//! In-QEMU tests: each trial boots the kernel through run-qemu.sh and
//! asserts on the report and the exit status. Scenario trials are generated
//! from the fixture files: one per `fixtures/NAME.qemu` with a
//! `NAME.linux-6.1.groups` beside it.

use libtest_mimic::{Arguments, Failed, Trial};
use qemu_tests::{OracleDevice, Run, parse_oracle_raw, root, run_qemu};
use std::collections::BTreeMap;

fn ok(r: Result<(), String>) -> Result<(), Failed> {
    r.map_err(Failed::from)
}

fn default_boot_reports_firmware_facts() -> Result<(), String> {
    let run = run_qemu(&["--json"]);
    run.check(run.status == 0, "default boot must pass")?;
    let j = run.json()?;
    let mcfg = &j["acpi"]["mcfg"][0];
    run.check(mcfg["base"] == 0xb000_0000u64 && mcfg["segment"] == 0, "MCFG base 0xb0000000, segment 0")?;
    run.check(mcfg["start_bus"] == 0 && mcfg["end_bus"] == 255, "MCFG buses 0-255")?;
    let units = j["dmar"]["units"].as_array().ok_or("no dmar.units")?;
    run.check(units.iter().any(|u| u["register_base"] == 0xfed9_0000u64), "a DRHD at 0xfed90000")?;
    run.check(j["memory"]["ram_bytes"].as_u64().unwrap_or(0) > 200 << 20, "about 256 MiB of RAM")?;
    Ok(())
}

fn default_text_report() -> Result<(), String> {
    let run = run_qemu(&[]);
    run.check(run.status == 0, "default boot must pass")?;
    run.check(run.stdout.contains("MCFG: segment 0000 base 0xb0000000"), "text report names the MCFG base")?;
    run.check(run.stdout.contains("DRHD 0xfed90000"), "text report names the DRHD")?;
    run.check(run.stdout.contains("== Boot phases"), "text report has boot phases")?;
    Ok(())
}

/// A failing self-test: the message and the failing status, both.
fn fails_with(test: &str, message: &str) -> Result<(), String> {
    let arg = format!("test={test}");
    let run = run_qemu(&["--append", &arg]);
    run.check(run.status == 1, &format!("test={test} must end with status 1 (fail)"))?;
    run.check(run.stdout.contains(message), &format!("test={test} must print {message:?}"))
}

fn no_iommu_reports_no_dmar() -> Result<(), String> {
    let run = run_qemu(&["--no-iommu", "--json"]);
    run.check(run.status == 0, "boot without an IOMMU must pass")?;
    let j = run.json()?;
    run.check(j["acpi"]["dmar_bytes"].is_null(), "no DMAR table")?;
    run.check(j["dmar"].is_null(), "no DMAR units")
}

/// A DMAR table (VT-d spec §8.1) with one INCLUDE_PCI_ALL DRHD whose
/// register base is 0x1000, which is RAM, not a remapping unit.
fn dmar_with_unusable_unit() -> Vec<u8> {
    let mut t = vec![0u8; 48 + 16];
    t[0..4].copy_from_slice(b"DMAR");
    let len = t.len() as u32;
    t[4..8].copy_from_slice(&len.to_le_bytes());
    t[8] = 1;
    t[10..16].copy_from_slice(b"VTDTST");
    t[36] = 38; // host address width 39
    // DRHD: type 0, length 16, flags INCLUDE_PCI_ALL, segment 0, base.
    t[48..50].copy_from_slice(&0u16.to_le_bytes());
    t[50..52].copy_from_slice(&16u16.to_le_bytes());
    t[52] = 1;
    t[56..64].copy_from_slice(&0x1000u64.to_le_bytes());
    let sum = t.iter().fold(0u8, |s, b| s.wrapping_add(*b));
    t[9] = 0u8.wrapping_sub(sum);
    t
}

/// Bad input: a DMAR whose only unit cannot be used. Like Linux when
/// intel-iommu fails to start: an error line, no groups, no translation,
/// and the boot passes (the runner adds no intel-iommu, QEMU adds the table).
fn dmar_without_a_usable_unit_runs_without_an_iommu() -> Result<(), String> {
    let path = std::env::temp_dir().join(format!("vtd-kernel-dmar-{}.bin", std::process::id()));
    std::fs::write(&path, dmar_with_unusable_unit()).map_err(|e| e.to_string())?;
    let table = format!("file={}", path.display());
    let run =
        run_qemu(&[&["--no-iommu", "--append", "demos=off", "--", "-acpitable", &table][..], &CONFIG_TRACE].concat());
    let _ = std::fs::remove_file(&path);
    run.check(run.status == 0, "the boot goes on without an IOMMU and passes")?;
    run.check(run.stdout.contains("DRHD 0x1000 segment 0000"), "the DMAR table was found and parsed")?;
    run.check(run.stdout.contains("[ERROR] DRHD 0x1000:"), "the unusable unit gets an error line")?;
    run.check(
        run.stdout.contains("[ERROR] VT-d: no DRHD unit came up; running without an IOMMU"),
        "and the kernel says it runs without an IOMMU",
    )?;
    run.check(run.stdout.contains("group -"), "no function is in a group")?;
    let (last, mut firmware_set) = command_registers(&run.stderr)?;
    firmware_set.sort();
    let now: Vec<String> = last.into_iter().filter(|(_, v)| *v & 4 != 0).map(|(b, _)| b).collect();
    run.check(
        !firmware_set.is_empty() && now == firmware_set,
        &format!("bus mastering is back as firmware left it: {now:?} vs {firmware_set:?}"),
    )
}

/// Each function's COMMAND register as QEMU's config trace last saw it
/// (read or written), and the functions it ever saw with bus mastering on.
fn command_registers(stderr: &str) -> Result<(BTreeMap<String, u64>, Vec<String>), String> {
    let mut last = BTreeMap::new();
    let mut ever_mastering = Vec::new();
    for line in stderr.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        let [ev, _name, bdf, "@0x4", _arrow, value] = w[..] else { continue };
        if !matches!(ev, "pci_cfg_read" | "pci_cfg_write") {
            continue;
        }
        let v = u64::from_str_radix(value.trim_start_matches("0x"), 16).map_err(|e| format!("{line}: {e}"))?;
        if v & 4 != 0 && !ever_mastering.iter().any(|b| b == bdf) {
            ever_mastering.push(bdf.to_string());
        }
        last.insert(bdf.to_string(), v);
    }
    Ok((last, ever_mastering))
}

const CONFIG_TRACE: [&str; 4] = ["-trace", "pci_cfg_read", "-trace", "pci_cfg_write"];

/// Bus mastering stays off where no driver does DMA: firmware leaves it on
/// for some functions (SeaBIOS: AHCI, NVMe), and the kernel must turn it
/// off before translation is on. Judged from QEMU's own config-space trace.
fn bus_mastering_is_off_without_dma() -> Result<(), String> {
    let run = run_qemu(&[&["--append", "demos=off", "--"][..], &CONFIG_TRACE].concat());
    run.check(run.status == 0, "boot must pass")?;
    let (last, firmware_set) = command_registers(&run.stderr)?;
    run.check(last.len() > 20, "the trace shows every function's COMMAND register")?;
    run.check(!firmware_set.is_empty(), "firmware left bus mastering on somewhere (else this proves nothing)")?;
    let mastering: Vec<&String> = last.iter().filter(|(_, v)| *v & 4 != 0).map(|(b, _)| b).collect();
    run.check(mastering.is_empty(), &format!("no function may master the bus without DMA: {mastering:?}"))
}

/// Functions no DRHD covers (a pxb-pcie with bypass_iommu=true) say
/// "no IOMMU" in the JSON and have no group; covered ones name their unit.
fn uncovered_functions_say_no_iommu() -> Result<(), String> {
    let scenario = root().join("fixtures/no-iommu-pxb-bypass.qemu");
    let run = run_qemu(&["--scenario", scenario.to_str().unwrap(), "--json", "--append", "dma=off"]);
    run.check(run.status == 0, "boot must pass")?;
    let j = run.json()?;
    let functions = j["functions"].as_array().ok_or("no functions")?;
    for f in functions {
        let bus = u8::from_str_radix(&f["bdf"].as_str().unwrap_or("")[5..7], 16).unwrap_or(0);
        let bypassed = (0x20..0x40).contains(&bus);
        let want = if bypassed { "no IOMMU" } else { "DRHD 0xfed90000" };
        run.check(f["iommu"] == want, &format!("{}: iommu {} (want {want})", f["bdf"], f["iommu"]))?;
        run.check(f["group"].is_null() == bypassed, &format!("{}: group {}", f["bdf"], f["group"]))?;
    }
    Ok(())
}

fn hang_is_stopped_by_the_timeout() -> Result<(), String> {
    let run = run_qemu(&["--timeout", "3", "--append", "test=hang"]);
    run.check(run.status == 3, "a hung kernel ends with status 3")?;
    run.check(run.stderr.contains("timeout"), "the runner says it timed out")
}

fn bad_option_is_a_usage_error() -> Result<(), String> {
    let run = run_qemu(&["--no-such-option"]);
    run.check(run.status == 2, "unknown option: status 2")?;
    run.check(run.stderr.contains("unknown option"), "and a message")
}

fn bad_command_line_value_fails() -> Result<(), String> {
    let run = run_qemu(&["--append", "log=loud"]);
    run.check(run.status == 1, "bad log level: status 1")?;
    run.check(run.stdout.contains("bad value \"loud\" for \"log\""), "and the reason")
}

/// The five DMA proofs on the default topology, with the unit's shape
/// the QEMU options ask for.
fn dma_proofs(extra: &[&str], levels: u64, caching_mode: bool) -> Result<(), String> {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    let run = run_qemu(&args);
    run.check(run.status == 0, "boot with DMA proofs must pass")?;
    let j = run.json()?;
    let unit = &j["dmar"]["units"][0];
    run.check(unit["translation"] == true, "translation on")?;
    run.check(unit["levels"] == levels, &format!("{levels}-level tables"))?;
    run.check(unit["caching_mode"] == caching_mode, &format!("caching mode {caching_mode}"))?;
    run.check(unit["invalidation"] == "queued", "queued invalidation (QEMU has ECAP.QI)")?;
    let tests = j["dma_tests"].as_array().ok_or("no dma_tests")?;
    let names: Vec<&str> = tests.iter().filter_map(|t| t["name"].as_str()).collect();
    for want in [
        "mapped DMA lands byte for byte",
        "unmapped DMA is blocked and faults once",
        "no stale IOTLB after unmap",
        "no DMA into another group's domain",
        "DMA at kernel memory faults",
        "DMA under a bridge alias reaches its mapping",
    ] {
        run.check(names.contains(&want), &format!("case {want:?} ran"))?;
    }
    run.check(tests.iter().all(|t| t["outcome"] == "pass"), "every DMA case passes")?;
    let faults = j["faults"].as_array().ok_or("no faults")?;
    // Four proofs expect a fault each, and so do the ownership story's
    // "DMA at kernel memory" steps; nothing else may fault.
    let story_faults =
        j["ownership"]["events"].as_array().map_or(0, |e| e.iter().filter(|e| e["expected"] == "fault").count());
    run.check(faults.len() == 4 + story_faults, "exactly the expected faults")?;
    run.check(faults.iter().all(|f| f["reason"] == 5 && f["access"] == "write"), "all write faults, reason 5")?;
    Ok(())
}

/// QEMU's own trace events must agree with the report: translation
/// enabled, and the faults (source, reason, page) are the same set.
fn trace_agrees_with_report() -> Result<(), String> {
    let run = run_qemu(&["--json", "--", "-trace", "vtd_dmar_enable", "-trace", "vtd_dmar_fault"]);
    run.check(run.status == 0, "boot must pass")?;
    run.check(run.stderr.contains("vtd_dmar_enable enable 1"), "QEMU saw translation enabled")?;
    let mut traced: Vec<(u64, u64, u64)> = run
        .stderr
        .lines()
        .filter_map(|l| {
            // "vtd_dmar_fault sid 0x28 fault 5 addr 0x200000 write 1"
            let w: Vec<&str> = l.split_whitespace().collect();
            let pos = w.iter().position(|&x| x == "vtd_dmar_fault")?;
            let num = |s: &str| {
                u64::from_str_radix(s.trim_start_matches("0x"), if s.starts_with("0x") { 16 } else { 10 }).ok()
            };
            Some((num(w.get(pos + 2)?)?, num(w.get(pos + 4)?)?, num(w.get(pos + 6)?)? & !0xfff))
        })
        .collect();
    traced.sort_unstable();
    traced.dedup();
    let j = run.json()?;
    let mut reported: Vec<(u64, u64, u64)> = j["faults"]
        .as_array()
        .ok_or("no faults")?
        .iter()
        .filter_map(|f| {
            // "BB:DD.F" -> requester id
            let s = f["source"].as_str()?;
            let (bus, rest) = s.split_once(':')?;
            let (dev, func) = rest.split_once('.')?;
            let rid = (u64::from_str_radix(bus, 16).ok()? << 8)
                | (u64::from_str_radix(dev, 16).ok()? << 3)
                | func.parse::<u64>().ok()?;
            Some((rid, f["reason"].as_u64()?, f["address"].as_u64()?))
        })
        .collect();
    reported.sort_unstable();
    run.check(!traced.is_empty(), "QEMU traced faults")?;
    run.check(traced == reported, &format!("trace {traced:x?} vs report {reported:x?}"))
}

/// The outcome of demonstration `n` in the JSON report.
fn demo(j: &serde_json::Value, n: u64) -> String {
    j["ownership"]["demonstrations"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["number"] == n))
        .and_then(|d| d["outcome"].as_str())
        .unwrap_or("missing")
        .to_string()
}

/// Events of the ownership story matching `action` (a prefix).
fn events<'a>(j: &'a serde_json::Value, action: &str) -> Vec<&'a serde_json::Value> {
    j["ownership"]["events"]
        .as_array()
        .map(|e| e.iter().filter(|e| e["action"].as_str().is_some_and(|a| a.starts_with(action))).collect())
        .unwrap_or_default()
}

fn default_ownership_story() -> Result<(), String> {
    let run = run_qemu(&["--json"]);
    run.check(run.status == 0, "boot must pass")?;
    let j = run.json()?;
    for (n, want) in [(1, "pass"), (2, "pass"), (3, "skipped"), (4, "pass"), (5, "pass")] {
        run.check(demo(&j, n) == want, &format!("demonstration {n} is {want}"))?;
    }
    // 1: the switch group (downstream port 02:00.0 + edu 03:00.0) was
    // claimed while portdrv stayed bound, with its services listed.
    let claims = events(&j, "claim group");
    let switch_claim = claims
        .iter()
        .find(|e| e["devices"].as_array().is_some_and(|d| d.iter().any(|d| d == "0000:02:00.0 (pcieport)")))
        .ok_or("no claim of the switch port's group")?;
    run.check(
        switch_claim["outcome"] == "ok" && switch_claim["owner"] == "passthrough",
        "switch group claimed by the owner",
    )?;
    run.check(
        events(&j, "0000:02:00.0 keeps pcieport")[0]["reason"] == "services: hotplug",
        "portdrv stays, services listed",
    )?;
    // 2: EPERM on the kernel driver's group; EBUSY binding into the owned one.
    run.check(claims.iter().any(|e| e["outcome"] == "EPERM" && e["demo"] == 2), "claim refused with EPERM")?;
    run.check(
        events(&j, "bind edu to 0000:03:00.0").iter().any(|e| e["outcome"] == "EBUSY"),
        "bind refused with EBUSY",
    )?;
    run.check(events(&j, "group ").iter().all(|e| e["outcome"] == "unchanged"), "refusals change nothing")?;
    // 4 and 5.
    run.check(
        events(&j, "edu 0000:03:00.0 DMA at kernel memory")[0]["outcome"] == "fault",
        "DMA at kernel memory faults",
    )?;
    run.check(
        events(&j, "edu kernel driver DMA on 0000:03:00.0")[0]["outcome"] == "ok",
        "kernel driver DMA works after release",
    )?;
    // JSON shape: drivers per device, owner and domain per group.
    let f = j["functions"].as_array().ok_or("no functions")?;
    let driver = |bdf: &str| f.iter().find(|x| x["bdf"] == bdf).map(|x| x["driver"].clone());
    run.check(driver("0000:02:00.0") == Some("pcieport".into()), "portdrv on the downstream port")?;
    run.check(driver("0000:03:00.0") == Some("edu".into()), "edu kernel driver back on 03:00.0")?;
    run.check(driver("0000:00:1f.0") == Some(serde_json::Value::Null), "no driver on the LPC bridge")?;
    let groups = j["groups"].as_array().ok_or("no groups")?;
    let g = groups
        .iter()
        .find(|g| g["members"].as_array().is_some_and(|m| m.iter().any(|m| m == "0000:03:00.0")))
        .ok_or("no group for 03:00.0")?;
    run.check(g["owner"] == "kernel" && g["domain"].is_u64(), "released group: kernel-owned, default domain")?;
    run.check(g["events"].as_array().is_some_and(|e| e.len() >= 5), "the group carries its ownership events")?;
    run.check(
        groups.iter().all(|g| ["none", "kernel", "user"].contains(&g["owner"].as_str().unwrap_or(""))),
        "owner values",
    )
}

fn shpc_counter_example() -> Result<(), String> {
    let run = run_qemu(&["--json", "--append", "bind-shpc=0000:06:00.0 dma=off"]);
    run.check(run.status == 0, "boot must pass")?;
    let j = run.json()?;
    run.check(demo(&j, 3) == "pass", "demonstration 3 passes")?;
    let claim = events(&j, "claim group")
        .into_iter()
        .find(|e| e["demo"] == 3)
        .ok_or("no claim of the shpchp bridge's group")?;
    run.check(claim["outcome"] == "EPERM", "claim refused")?;
    run.check(
        claim["reason"].as_str().is_some_and(|r| r.contains("0000:06:00.0 is bound to shpchp")),
        "because of shpchp",
    )
}

fn assign_names_groups() -> Result<(), String> {
    let run = run_qemu(&["--json", "--append", "assign=0000:41:00.0 dma=off"]);
    run.check(run.status == 0, "boot must pass")?;
    let j = run.json()?;
    let claim = events(&j, "claim group").into_iter().find(|e| e["demo"] == 1).ok_or("no claim")?;
    run.check(
        claim["devices"][0] == "0000:41:00.0 (vfio-pci)" && claim["outcome"] == "ok",
        "the named group is claimed",
    )
}

/// Every fixture with a Linux group file: `--groups` must equal it byte for byte.
fn scenario_trials() -> Vec<Trial> {
    let names = fixture_names("linux-6.1.groups");
    names
        .into_iter()
        .map(|name| {
            Trial::test(format!("groups_match_linux::{name}"), move || {
                let dir = root().join("fixtures");
                let qemu = dir.join(format!("{name}.qemu"));
                let expected = std::fs::read_to_string(dir.join(format!("{name}.linux-6.1.groups")))
                    .map_err(|e| Failed::from(e.to_string()))?;
                let run = run_qemu(&["--scenario", qemu.to_str().unwrap(), "--groups", "--append", "dma=off"]);
                ok(run.check(run.status == 0, "scenario boot must pass"))?;
                ok(compare_groups(&run, &expected))
            })
        })
        .collect()
}

/// Every fixture with a raw Linux dump: the same functions (ids, class,
/// config space size, PCIe type) and, after ACS enabling, the same ACS
/// control words.
fn enumeration_trials() -> Vec<Trial> {
    fixture_names("linux-6.1.raw")
        .into_iter()
        .map(|name| {
            Trial::test(format!("enumeration_and_acs_match_linux::{name}"), move || {
                let dir = root().join("fixtures");
                let raw = std::fs::read_to_string(dir.join(format!("{name}.linux-6.1.raw")))
                    .map_err(|e| Failed::from(e.to_string()))?;
                let expected = parse_oracle_raw(&raw);
                let qemu = dir.join(format!("{name}.qemu"));
                let run = run_qemu(&["--scenario", qemu.to_str().unwrap(), "--json", "--append", "dma=off"]);
                ok(run.check(run.status == 0, "scenario boot must pass"))?;
                ok(compare_functions(&run, &expected))
            })
        })
        .collect()
}

fn compare_functions(run: &Run, expected: &[OracleDevice]) -> Result<(), String> {
    let j = run.json()?;
    let functions = j["functions"].as_array().ok_or("no functions in the report")?;
    let hex = |v: &serde_json::Value| v.as_u64();
    let got: Vec<OracleDevice> = functions
        .iter()
        .map(|f| OracleDevice {
            bdf: f["bdf"].as_str().unwrap_or("").to_string(),
            vendor: f["vendor"].as_u64().unwrap_or(0),
            device: f["device"].as_u64().unwrap_or(0),
            class: f["class"].as_u64().unwrap_or(0),
            cfglen: f["cfg_size"].as_u64().unwrap_or(0),
            pcie_type: hex(&f["pcie_type"]),
            acs_cap: hex(&f["acs"]["cap"]),
            acs_ctrl: hex(&f["acs"]["ctrl"]),
        })
        .collect();
    let mut got_sorted = got.clone();
    got_sorted.sort_by(|a, b| a.bdf.cmp(&b.bdf));
    let mut want = expected.to_vec();
    want.sort_by(|a, b| a.bdf.cmp(&b.bdf));
    if got_sorted == want {
        return Ok(());
    }
    let diff: Vec<String> = want
        .iter()
        .filter(|w| !got_sorted.contains(w))
        .map(|w| format!("linux: {w:?}\n  ours: {:?}", got_sorted.iter().find(|g| g.bdf == w.bdf)))
        .chain(got_sorted.iter().filter(|g| !want.iter().any(|w| w.bdf == g.bdf)).map(|g| format!("extra: {g:?}")))
        .collect();
    run.check(false, &format!("enumeration differs from Linux 6.1:\n{}", diff.join("\n")))
}

/// Fixture names that have a `NAME.qemu` and a `NAME.<suffix>` file.
fn fixture_names(suffix: &str) -> Vec<String> {
    let dir = root().join("fixtures");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str()?.strip_suffix(".qemu").map(String::from))
                .filter(|n| dir.join(format!("{n}.{suffix}")).exists())
                .collect()
        })
        .unwrap_or_else(|e| panic!("fixtures directory {}: {e}", dir.display()));
    names.sort();
    // A missing or emptied fixture set must not pass as zero trials.
    assert!(!names.is_empty(), "no fixture in {} has a .{suffix} file", dir.display());
    names
}

fn compare_groups(run: &Run, expected: &str) -> Result<(), String> {
    if run.stdout == expected {
        return Ok(());
    }
    run.check(false, &format!("groups differ from Linux 6.1\n--- expected (Linux)\n{expected}--- got\n{}", run.stdout))
}

fn main() {
    let args = Arguments::from_args();
    let mut trials = vec![
        Trial::test("boot::default_json_report", || ok(default_boot_reports_firmware_facts())),
        Trial::test("boot::default_text_report", || ok(default_text_report())),
        Trial::test("boot::no_iommu", || ok(no_iommu_reports_no_dmar())),
        Trial::test("bad_input::dmar_without_a_usable_unit", || ok(dmar_without_a_usable_unit_runs_without_an_iommu())),
        Trial::test("exit::panic_fails_with_message", || ok(fails_with("panic", "KERNEL PANIC at"))),
        Trial::test("exit::page_fault_fails_with_message", || {
            ok(fails_with("page-fault", "CPU EXCEPTION 14 (page fault (#PF)): error code 0x0"))
        }),
        Trial::test("exit::stack_overflow_hits_guard_page", || {
            ok(fails_with("stack-overflow", "the address is the stack guard page"))
        }),
        Trial::test("exit::allocation_failure_is_reported", || {
            ok(fails_with("alloc-fail", "memory allocation of 1099511627776 bytes failed"))
        }),
        Trial::test("exit::hang_times_out", || ok(hang_is_stopped_by_the_timeout())),
        Trial::test("runner::bad_option", || ok(bad_option_is_a_usage_error())),
        Trial::test("runner::bad_command_line_value", || ok(bad_command_line_value_fails())),
    ];
    trials.extend([
        Trial::test("vtd::dma_proofs_default", || ok(dma_proofs(&[], 3, true))),
        Trial::test("vtd::bus_mastering_off_without_dma", || ok(bus_mastering_is_off_without_dma())),
        Trial::test("vtd::uncovered_functions_say_no_iommu", || ok(uncovered_functions_say_no_iommu())),
        Trial::test("vtd::dma_proofs_aw_bits_48", || ok(dma_proofs(&["--iommu", "aw-bits=48"], 4, true))),
        Trial::test("vtd::dma_proofs_caching_mode_off", || ok(dma_proofs(&["--iommu", "caching-mode=off"], 3, false))),
        Trial::test("vtd::qemu_trace_agrees_with_report", || ok(trace_agrees_with_report())),
    ]);
    trials.extend([
        Trial::test("ownership::default_story", || ok(default_ownership_story())),
        Trial::test("ownership::shpc_counter_example", || ok(shpc_counter_example())),
        Trial::test("ownership::assign", || ok(assign_names_groups())),
    ]);
    trials.extend(scenario_trials());
    trials.extend(enumeration_trials());
    libtest_mimic::run(&args, trials).exit();
}
