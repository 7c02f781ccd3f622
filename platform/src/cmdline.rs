//! The kernel command line (`-append` in QEMU): space-separated `key=value`
//! words. Unknown words are kept so the kernel can say it ignored them.

use alloc::vec::Vec;
use core::fmt;
use log::LevelFilter;

/// Which report the kernel prints between its report markers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReportFormat {
    #[default]
    Text,
    Json,
    /// Only the canonical IOMMU group list.
    Groups,
}

/// Parsed command line. Strings borrow from the raw command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options<'a> {
    pub log_level: LevelFilter,
    /// `exit=early`: leave at the first Rust instruction (benchmark floor).
    pub exit_early: bool,
    /// `test=NAME`: an in-kernel self-test (e.g. `panic`, `page-fault`).
    pub test: Option<&'a str>,
    pub report: ReportFormat,
    /// `assign=BDF,BDF`: groups to hand to the passthrough owner.
    pub assign: Vec<&'a str>,
    /// `bind-shpc=BDF`: bind the shpchp-like bridge driver.
    pub bind_shpc: Vec<&'a str>,
    /// `dma=off`: no DMA transfers (the isolation proofs and the DMA steps
    /// of the ownership demonstrations are skipped).
    pub dma_demos: bool,
    /// `demos=off`: no demonstrations at all, only the boot pipeline and
    /// the report (what the benchmarks time).
    pub demos: bool,
    /// `events=off`: no event story (demonstrations 6 and 7: AER injection
    /// and hot-plug driven over QMP by the runner).
    pub events: bool,
    /// `port-irq=off`: the port services run in poll mode (no MSI/MSI-X
    /// for pcieport), the fallback used when interrupts are unavailable.
    pub port_irq: bool,
    /// Words that were not understood, reported once at boot.
    pub unknown: Vec<&'a str>,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Self {
            log_level: LevelFilter::Info,
            exit_early: false,
            test: None,
            report: ReportFormat::Text,
            assign: Vec::new(),
            bind_shpc: Vec::new(),
            dma_demos: true,
            demos: true,
            events: true,
            port_irq: true,
            unknown: Vec::new(),
        }
    }
}

/// `exit=early` is checked before anything else runs (no heap yet), so it
/// has its own allocation-free test.
pub fn wants_early_exit(cmdline: &str) -> bool {
    cmdline.split_ascii_whitespace().any(|w| w == "exit=early")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadValue<'a> {
    pub key: &'a str,
    pub value: &'a str,
}

impl fmt::Display for BadValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad value {:?} for {:?}", self.value, self.key)
    }
}

impl<'a> Options<'a> {
    /// Parse a command line. A known key with a bad value is an error (the
    /// runner asked for something the kernel cannot do); unknown words are
    /// collected in `unknown`.
    pub fn parse(cmdline: &'a str) -> Result<Self, BadValue<'a>> {
        let mut o = Self::default();
        for word in cmdline.split_ascii_whitespace() {
            let (key, value) = word.split_once('=').unwrap_or((word, ""));
            let bad = || BadValue { key, value };
            match key {
                "log" => {
                    o.log_level = match value {
                        "off" => LevelFilter::Off,
                        "error" => LevelFilter::Error,
                        "warn" => LevelFilter::Warn,
                        "info" => LevelFilter::Info,
                        "debug" => LevelFilter::Debug,
                        "trace" => LevelFilter::Trace,
                        _ => return Err(bad()),
                    }
                }
                "exit" if value == "early" => o.exit_early = true,
                "exit" => return Err(bad()),
                "test" if !value.is_empty() => o.test = Some(value),
                "test" => return Err(bad()),
                "report" => {
                    o.report = match value {
                        "text" => ReportFormat::Text,
                        "json" => ReportFormat::Json,
                        "groups" => ReportFormat::Groups,
                        _ => return Err(bad()),
                    }
                }
                "assign" => o.assign.extend(value.split(',').filter(|s| !s.is_empty())),
                "bind-shpc" => o.bind_shpc.extend(value.split(',').filter(|s| !s.is_empty())),
                "dma" | "demos" | "events" | "port-irq" => {
                    let on = match value {
                        "on" => true,
                        "off" => false,
                        _ => return Err(bad()),
                    };
                    match key {
                        "dma" => o.dma_demos = on,
                        "events" => o.events = on,
                        "port-irq" => o.port_irq = on,
                        _ => o.demos = on,
                    }
                }
                _ => o.unknown.push(word),
            }
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn defaults() {
        assert_eq!(Options::parse("").unwrap(), Options::default());
        assert_eq!(Options::parse("   ").unwrap(), Options::default());
    }

    #[test]
    fn all_keys() {
        let o = Options::parse("log=debug test=page-fault report=json assign=0000:03:00.0,0000:04:00.0 bind-shpc=0000:01:00.0 dma=off demos=off events=off port-irq=off foo bar=1").unwrap();
        assert_eq!(o.log_level, LevelFilter::Debug);
        assert_eq!(o.test, Some("page-fault"));
        assert_eq!(o.report, ReportFormat::Json);
        assert_eq!(o.assign, vec!["0000:03:00.0", "0000:04:00.0"]);
        assert_eq!(o.bind_shpc, vec!["0000:01:00.0"]);
        assert!(!o.dma_demos);
        assert!(!o.demos);
        assert!(!o.events);
        assert!(!o.port_irq);
        assert_eq!(o.unknown, vec!["foo", "bar=1"]);
    }

    #[test]
    fn bad_values_are_errors() {
        assert_eq!(Options::parse("log=loud"), Err(BadValue { key: "log", value: "loud" }));
        assert_eq!(Options::parse("report=xml").unwrap_err().key, "report");
        assert!(Options::parse("test=").is_err());
        assert!(Options::parse("exit=late").is_err());
        assert!(Options::parse("demos=maybe").is_err());
        assert!(Options::parse("events=maybe").is_err());
    }

    #[test]
    fn early_exit() {
        assert!(wants_early_exit("log=info exit=early"));
        assert!(!wants_early_exit("exit=earlyish"));
    }
}
