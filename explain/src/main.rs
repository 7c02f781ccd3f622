//! `iommu-explain`: explain the IOMMU groups of a real machine.
//! Usage and exit statuses: `iommu-explain --help`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use explain::{Input, Unusable, analyse, lspci, sysfs, text};

const USAGE: &str = "\
usage: iommu-explain [INPUT] [OUTPUT] [--kernel-version V] [--cmdline \"ARGS\"]

Explains the IOMMU groups of a machine with Linux 6.1's rules (the vtd-kernel
project's own pci/iommu crates): why each device is in its group, how that
compares with the groups Linux formed, and what would isolate each shared group.

INPUT (one; default: this machine, run as root):
  --lspci FILE     output of lspci -vvnn, -xxxx or -vvnnxxxx ('-' = stdin)
  --sysfs DIR      a copy written by --save (or a copy of /sys)
  --save DIR       write this machine's sysfs facts to DIR (for a bug report), then explain them
OUTPUT (one; default: the explanation):
  --groups         the canonical group list: one group a line, members SSSS:BB:DD.F sorted
  --json           the report as one JSON document (the kernel's schema)
  --check          compare with the groups recorded in the input
OTHER:
  --dmesg FILE     dmesg of the same boot: its kernel version and command line
  --kernel-version V   the kernel the input came from (lspci output does not say)
  --cmdline \"ARGS\"     its command line (an ACS override changes what groups mean)
  -h, --help       this text;  -V, --version

Exit status: 0 done (--check: the partitions agree on every device with a group
in the input); 1 --check: they differ; 2 usage error or unusable input.
";

enum Output {
    Explain,
    Groups,
    Json,
    Check,
}

enum Source {
    Live,
    Lspci(String),
    Sysfs(PathBuf),
    Save(PathBuf),
}

struct Args {
    source: Source,
    output: Output,
    kernel_version: Option<String>,
    cmdline: Option<String>,
    dmesg: Option<String>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut a =
        Args { source: Source::Live, output: Output::Explain, kernel_version: None, cmdline: None, dmesg: None };
    let (mut have_source, mut have_output) = (false, false);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline.clone().or_else(|| args.next()).ok_or_else(|| format!("{name} needs a value"))
        };
        let mut set_source = |s: Source, have: &mut bool| -> Result<(), String> {
            if std::mem::replace(have, true) {
                return Err("give one input: --lspci, --sysfs or --save".into());
            }
            a.source = s;
            Ok(())
        };
        match flag.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(None);
            }
            "-V" | "--version" => {
                println!("iommu-explain {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            "--lspci" => {
                let v = value("--lspci")?;
                set_source(Source::Lspci(v), &mut have_source)?
            }
            "--sysfs" => {
                let v = value("--sysfs")?;
                set_source(Source::Sysfs(v.into()), &mut have_source)?
            }
            "--save" => {
                let v = value("--save")?;
                set_source(Source::Save(v.into()), &mut have_source)?
            }
            "--groups" | "--json" | "--check" => {
                if std::mem::replace(&mut have_output, true) {
                    return Err("give at most one of --groups, --json, --check".into());
                }
                a.output = match flag.as_str() {
                    "--groups" => Output::Groups,
                    "--json" => Output::Json,
                    _ => Output::Check,
                };
            }
            "--kernel-version" => a.kernel_version = Some(value("--kernel-version")?),
            "--cmdline" => a.cmdline = Some(value("--cmdline")?),
            "--dmesg" => a.dmesg = Some(value("--dmesg")?),
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(Some(a))
}

fn read(source: &Source) -> Result<Input, Unusable> {
    match source {
        Source::Live => sysfs::read_live(Path::new("/")),
        Source::Sysfs(dir) => sysfs::read_copy(dir),
        Source::Save(dir) => {
            sysfs::save(Path::new("/"), dir).map_err(|e| Unusable(format!("--save {}: {e}", dir.display())))?;
            eprintln!("iommu-explain: saved this machine's facts to {}", dir.display());
            sysfs::read_copy(dir)
        }
        Source::Lspci(path) => {
            let mut bytes = Vec::new();
            let res = if path == "-" {
                std::io::stdin().read_to_end(&mut bytes).map(|_| ())
            } else {
                std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut bytes)).map(|_| ())
            };
            res.map_err(|e| Unusable(format!("{path}: cannot read: {e}")))?;
            // Valid UTF-8 (the usual case) is checked fast and used as is.
            let text = match String::from_utf8(bytes) {
                Ok(t) => t,
                Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
            };
            lspci::parse(&text, if path == "-" { "<stdin>" } else { path })
        }
    }
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("iommu-explain: {e}");
            return ExitCode::from(2);
        }
    };
    let mut input = match read(&args.source) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("iommu-explain: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(path) = &args.dmesg {
        match std::fs::read(path) {
            Ok(b) => explain::input::read_dmesg(&String::from_utf8_lossy(&b), &mut input.source),
            Err(e) => {
                eprintln!("iommu-explain: {path}: cannot read: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if let Some(v) = args.kernel_version {
        input.source.linux = Some(v);
    }
    if let Some(c) = args.cmdline {
        input.source.acs_override = explain::input::acs_override(&c);
        input.source.cmdline = Some(c);
    }
    for p in &input.problems {
        eprintln!("iommu-explain: {p}");
    }
    let report = analyse(&input);
    match args.output {
        Output::Explain => print!("{}", text::explain(&report)),
        Output::Groups => print!("{}", report::render::canonical(&report)),
        Output::Json => match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("iommu-explain: JSON: {e}");
                return ExitCode::from(2);
            }
        },
        Output::Check => {
            let Some(c) = &report.comparison else {
                eprintln!("iommu-explain: --check: the input records no IOMMU groups to compare with");
                return ExitCode::from(2);
            };
            print!("{}", text::check(&report));
            return if c.agree { ExitCode::SUCCESS } else { ExitCode::from(1) };
        }
    }
    ExitCode::SUCCESS
}
