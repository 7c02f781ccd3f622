//! The live machine's sysfs, or a saved copy of it.
//!
//! Under a root `R` (the real `/`, a directory written by [`save`], or a
//! test's temporary tree): `R/sys/bus/pci/devices/*/config` (every
//! function's config space: 4096 bytes as root, 64 as a normal user) and
//! `.../driver`, `R/sys/kernel/iommu_groups/N/devices/*` (the groups Linux
//! formed), `R/proc/sys/kernel/osrelease`, `R/proc/cmdline` and, when
//! readable, `R/sys/firmware/acpi/tables/{DMAR,IVRS}`.

use std::fs;
use std::path::{Path, PathBuf};

use pci::Bdf;

use crate::input::{Input, InputDevice, Unusable, acs_override};

/// Where the pieces are.
struct Layout {
    sys: PathBuf,
    proc: PathBuf,
}

fn devices_dir(l: &Layout) -> PathBuf {
    l.sys.join("bus/pci/devices")
}

/// Read the live machine under `root` (`/` in production).
pub fn read_live(root: &Path) -> Result<Input, Unusable> {
    let mut input = read(&Layout { sys: root.join("sys"), proc: root.join("proc") })?;
    input.source.kind = "live".into();
    input.source.path = root.display().to_string();
    Ok(input)
}

/// Read a saved copy: a directory written by `--save` (with `sys/` and
/// `proc/` inside), or a plain copy of `/sys`.
pub fn read_copy(dir: &Path) -> Result<Input, Unusable> {
    let layout = if dir.join("sys").is_dir() {
        Layout { sys: dir.join("sys"), proc: dir.join("proc") }
    } else {
        Layout { sys: dir.to_path_buf(), proc: dir.join("proc") }
    };
    let mut input = read(&layout)?;
    input.source.kind = "sysfs".into();
    input.source.path = dir.display().to_string();
    Ok(input)
}

fn read(l: &Layout) -> Result<Input, Unusable> {
    let dir = devices_dir(l);
    let entries = fs::read_dir(&dir).map_err(|e| Unusable(format!("{}: cannot list: {e}", dir.display())))?;
    let mut input = Input::default();
    let mut names: Vec<String> =
        entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    let mut short = 0usize;
    for name in names {
        let path = dir.join(&name);
        let Some(bdf) = Bdf::parse(&name) else {
            input.problems.push(format!("{}: not a PCI address; skipped", path.display()));
            continue;
        };
        let config_path = path.join("config");
        let config = match fs::read(&config_path) {
            Ok(c) if c.len() >= 64 => c,
            Ok(c) => {
                input.problems.push(format!("{}: only {} bytes; function left out", config_path.display(), c.len()));
                input.partial = true;
                continue;
            }
            Err(e) => {
                input.problems.push(format!("{}: cannot read: {e}; function left out", config_path.display()));
                input.partial = true;
                continue;
            }
        };
        let mut dev = InputDevice { bdf: Some(bdf), exact: true, ..InputDevice::default() };
        if config.len() < 256 {
            short += 1;
            dev.unknown.push(format!(
                "only {} config bytes readable: capabilities (PCIe port type, ACS) unknown",
                config.len()
            ));
        }
        dev.config = config;
        dev.driver = fs::read_link(path.join("driver"))
            .ok()
            .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()));
        input.devices.push(dev);
    }
    if input.devices.is_empty() {
        return Err(Unusable(format!("{}: no readable PCI function ({})", dir.display(), input.problems.join("; "))));
    }
    if short > 0 {
        input.partial = true;
        input.problems.insert(
            0,
            format!(
                "{short} of {} functions: only 64 config bytes are readable as a normal user, so capabilities and ACS \
                 are unknown; run `sudo iommu-explain` (or `sudo iommu-explain --save DIR`, then `iommu-explain --sysfs DIR`)",
                input.devices.len()
            ),
        );
    }
    read_groups(l, &mut input);
    input.source.linux = fs::read_to_string(l.proc.join("sys/kernel/osrelease")).ok().map(|s| s.trim().to_string());
    if let Ok(c) = fs::read_to_string(l.proc.join("cmdline")) {
        let c = c.trim().to_string();
        input.source.acs_override = acs_override(&c);
        input.source.cmdline = Some(c);
    }
    input.source.detail = format!("config files{}", if short > 0 { ", some only 64 bytes" } else { "" });
    input.dmar = fs::read(l.sys.join("firmware/acpi/tables/DMAR")).ok();
    input.ivrs = l.sys.join("firmware/acpi/tables/IVRS").exists();
    Ok(input)
}

/// `/sys/kernel/iommu_groups/N/devices/BDF`.
fn read_groups(l: &Layout, input: &mut Input) {
    let dir = l.sys.join("kernel/iommu_groups");
    let Ok(groups) = fs::read_dir(&dir) else {
        input.problems.push(format!("{}: not readable: no groups to compare with (IOMMU off?)", dir.display()));
        return;
    };
    let mut found = 0;
    for g in groups.filter_map(|e| e.ok()) {
        found += 1;
        let name = g.file_name().to_string_lossy().into_owned();
        let Ok(id) = name.parse::<u32>() else {
            input.problems.push(format!("{}: not a group number; skipped", g.path().display()));
            continue;
        };
        let devs = g.path().join("devices");
        let Ok(members) = fs::read_dir(&devs) else {
            input.problems.push(format!("{}: missing; group {id} skipped", devs.display()));
            continue;
        };
        for m in members.filter_map(|e| e.ok()) {
            let n = m.file_name().to_string_lossy().into_owned();
            let Some(bdf) = Bdf::parse(&n) else { continue };
            match input.devices.iter_mut().find(|d| d.bdf == Some(bdf)) {
                Some(d) => d.linux_group = Some(id),
                None => input.problems.push(format!("{}: {bdf} has no config file; not compared", m.path().display())),
            }
        }
    }
    if found == 0 {
        input.problems.push(format!(
            "{}: empty: Linux formed no IOMMU groups (no IOMMU, or it is off: intel_iommu=on / amd_iommu=on); nothing to compare",
            dir.display()
        ));
    }
}

/// Write the facts of the machine under `root` into `dir`, in the layout
/// [`read_copy`] reads: config files, driver links, groups, kernel version,
/// command line, DMAR/IVRS.
pub fn save(root: &Path, dir: &Path) -> std::io::Result<()> {
    let src = Layout { sys: root.join("sys"), proc: root.join("proc") };
    let dst = Layout { sys: dir.join("sys"), proc: dir.join("proc") };
    let from = devices_dir(&src);
    for e in fs::read_dir(&from)? {
        let e = e?;
        let name = e.file_name();
        let out = devices_dir(&dst).join(&name);
        fs::create_dir_all(&out)?;
        fs::write(out.join("config"), fs::read(e.path().join("config"))?)?;
        if let Ok(target) = fs::read_link(e.path().join("driver"))
            && let Some(driver) = target.file_name()
        {
            #[cfg(unix)]
            std::os::unix::fs::symlink(Path::new("../../../drivers").join(driver), out.join("driver"))?;
        }
    }
    if let Ok(groups) = fs::read_dir(src.sys.join("kernel/iommu_groups")) {
        for g in groups.filter_map(|e| e.ok()) {
            let out = dst.sys.join("kernel/iommu_groups").join(g.file_name()).join("devices");
            fs::create_dir_all(&out)?;
            for m in fs::read_dir(g.path().join("devices"))?.filter_map(|e| e.ok()) {
                fs::write(out.join(m.file_name()), b"")?;
            }
        }
    }
    fs::create_dir_all(dst.proc.join("sys/kernel"))?;
    for f in ["cmdline", "sys/kernel/osrelease"] {
        if let Ok(b) = fs::read(src.proc.join(f)) {
            fs::write(dst.proc.join(f), b)?;
        }
    }
    for t in ["DMAR", "IVRS"] {
        if let Ok(b) = fs::read(src.sys.join("firmware/acpi/tables").join(t)) {
            fs::create_dir_all(dst.sys.join("firmware/acpi/tables"))?;
            fs::write(dst.sys.join("firmware/acpi/tables").join(t), b)?;
        }
    }
    Ok(())
}
