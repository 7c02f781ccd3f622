//! `iommu-explain`: the IOMMU groups of a real machine, explained with the
//! kernel's own rules (`pci` enumeration and ACS, `iommu` grouping), from
//! lspci output, a saved sysfs copy or the live machine.
//!
//! - inputs: [`lspci`] (hex dumps and decoded text), [`sysfs`] (a copy or
//!   the live tree, with `--save`), all read into an [`input::Input`];
//! - [`snapshot`]: the config bytes behind `pci::ConfigSpace`;
//! - [`machine`]: root buses, enumeration, ACS, SR-IOV, groups;
//! - [`explain`]: the shared report (`report` crate) with the comparison
//!   against Linux's groups and what would isolate each shared group;
//! - [`text`]: the default explanation and `--check`'s verdict;
//! - [`synthetic`]: machines of any size in lspci form, for scale tests.

pub mod explain;
pub mod input;
pub mod lspci;
pub mod machine;
pub mod snapshot;
pub mod synthetic;
pub mod sysfs;
pub mod text;

use report::Report;

pub use input::{Input, Unusable};

/// Read nothing more: run the pipeline on an input and build the report.
pub fn analyse(input: &Input) -> Report {
    let mut m = machine::build(input);
    explain::build(input, &mut m)
}
