//! What every input (lspci output, a sysfs copy, the live machine) is read
//! into: each function's config bytes and what the input says beside them.

use pci::Bdf;
use report::Source;

/// One function as the input gave it.
#[derive(Clone, Debug, Default)]
pub struct InputDevice {
    pub bdf: Option<Bdf>,
    /// Config bytes from offset 0: exact (hex dump, sysfs) or rebuilt from
    /// decoded text (see `lspci::synthesize`).
    pub config: Vec<u8>,
    /// Whether `config` is the device's own bytes rather than rebuilt.
    pub exact: bool,
    /// The `IOMMU group: N` Linux put it in, when the input says.
    pub linux_group: Option<u32>,
    pub driver: Option<String>,
    /// The input's own description ("Ethernet controller: Intel ...").
    pub name: Option<String>,
    /// What could not be known from the input.
    pub unknown: Vec<String>,
    /// Where it starts in the input (line number, 1-based; 0 for sysfs).
    pub line: usize,
}

/// One machine's facts as read.
#[derive(Clone, Debug, Default)]
pub struct Input {
    pub source: Source,
    pub devices: Vec<InputDevice>,
    /// Errors met while reading, each naming the line or path; reading
    /// went on with what was safe.
    pub problems: Vec<String>,
    /// Whether some facts are missing (the results are then partial).
    pub partial: bool,
    /// The ACPI DMAR table, when readable (live machine or a saved copy).
    pub dmar: Option<Vec<u8>>,
    /// Whether an ACPI IVRS table (AMD IOMMU) is present.
    pub ivrs: bool,
}

impl Input {
    /// Whether the input carries Linux's groups (any `IOMMU group` line or
    /// any /sys/kernel/iommu_groups entry).
    pub fn has_linux_groups(&self) -> bool {
        self.devices.iter().any(|d| d.linux_group.is_some())
    }
}

/// An input that cannot be used at all: exit status 2.
#[derive(Debug)]
pub struct Unusable(pub String);

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `pcie_acs_override=...` on a kernel command line (the out-of-tree ACS
/// override patch carried by Proxmox, Arch's linux-zen and others).
pub fn acs_override(cmdline: &str) -> Option<String> {
    cmdline.split_whitespace().find(|w| w.starts_with("pcie_acs_override=")).map(String::from)
}

/// What a `dmesg` of the same boot says about it: the kernel version
/// (`Linux version X ...`) and the command line (`Command line: ...`, where
/// an ACS override shows). Lines may carry `[ time]` prefixes.
pub fn read_dmesg(text: &str, source: &mut Source) {
    for line in text.lines() {
        if let Some(v) = line.split("Linux version ").nth(1).and_then(|r| r.split_whitespace().next())
            && source.linux.is_none()
        {
            source.linux = Some(v.to_string());
        }
        if let Some(c) = line.split("Command line: ").nth(1)
            && source.cmdline.is_none()
        {
            source.acs_override = acs_override(c);
            source.cmdline = Some(c.trim().to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dmesg_gives_the_kernel_version_and_command_line() {
        let mut s = Source::default();
        read_dmesg(
            "[    0.000000] Linux version 6.1.2-1-pve (XXX@XXX) (gcc ...) #1 SMP\n\
             [    0.000000] Command line: BOOT_IMAGE=/vmlinuz ro quiet pcie_acs_override=downstream\n",
            &mut s,
        );
        assert_eq!(s.linux.as_deref(), Some("6.1.2-1-pve"));
        assert_eq!(s.acs_override.as_deref(), Some("pcie_acs_override=downstream"));
        assert_eq!(s.cmdline.as_deref(), Some("BOOT_IMAGE=/vmlinuz ro quiet pcie_acs_override=downstream"));
    }

    #[test]
    fn acs_override_is_found_on_the_command_line() {
        assert_eq!(
            acs_override("ro quiet pcie_acs_override=downstream,multifunction iommu=pt").as_deref(),
            Some("pcie_acs_override=downstream,multifunction")
        );
        assert_eq!(acs_override("ro quiet intel_iommu=on"), None);
    }
}
