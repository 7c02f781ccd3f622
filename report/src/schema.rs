//! The report's schema. Field names are the JSON keys. Everything the
//! kernel alone knows (memory, ACPI, VT-d, ownership, interrupts, port
//! services, timing) is optional or an empty list by default, so
//! `iommu-explain` leaves it out; what the tool alone knows (the input's
//! groups, the comparison, what would isolate a group) is optional the
//! other way round.

use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// One report: a kernel boot or one `iommu-explain` run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The program and version that formed the groups: the kernel's
    /// version, or `iommu-explain x.y.z`.
    pub kernel: String,
    /// Where the machine's facts came from (tool only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    #[serde(default)]
    pub memory: Option<Memory>,
    #[serde(default)]
    pub acpi: Option<Acpi>,
    /// Each PCI segment's root buses and how they were found (kernel).
    #[serde(default)]
    pub segments: Vec<SegmentRoots>,
    #[serde(default)]
    pub dmar: Option<Dmar>,
    /// When a group's devices get context entries (kernel, with a DMAR).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_policy: Option<String>,
    #[serde(default)]
    pub domains: Vec<Domain>,
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// Fault records found at take-over, from before this boot (kernel).
    #[serde(default)]
    pub pre_boot_faults: Vec<Fault>,
    #[serde(default)]
    pub dma_tests: Vec<DmaTest>,
    #[serde(default)]
    pub ownership: Option<Ownership>,
    /// The PCIe port services and their events (kernel, when pcieport ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_services: Option<PortServices>,
    /// The interrupt stack, its per-vector counters and routes (kernel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupts: Option<Interrupts>,
    /// Demonstration 8: interrupt isolation by VT-d interrupt remapping
    /// (kernel, when it ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupt_isolation: Option<InterruptIsolation>,
    /// Every PCI function, in Linux `device_add` order.
    pub functions: Vec<Function>,
    /// Every IOMMU group, in creation order.
    pub groups: Vec<Group>,
    #[serde(default)]
    pub pci_errors: Vec<String>,
    #[serde(default)]
    pub problems: Vec<String>,
    #[serde(default)]
    pub timing: Option<Timing>,
    /// The comparison with the groups Linux formed on the machine (tool,
    /// when the input carries them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
    /// For every group of more than one device, what would isolate it (tool).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub isolation: Vec<Isolation>,
    /// Ports below which a device would get a group of its own (tool).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub isolating_ports: Vec<String>,
    /// Set when some facts could not be known: the groups are then a best
    /// effort, and `functions[].unknown` says what is missing.
    #[serde(default)]
    pub partial: bool,
}

/// The input of an `iommu-explain` run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// `lspci`, `sysfs` or `live`.
    pub kind: String,
    /// The file or directory read (`-` for standard input).
    pub path: String,
    /// `hex dumps`, `decoded text` or `hex dumps and decoded text`; for
    /// sysfs, how many config bytes were readable.
    pub detail: String,
    /// The machine's kernel version, when the input says it.
    #[serde(default)]
    pub linux: Option<String>,
    /// The machine's kernel command line, when known.
    #[serde(default)]
    pub cmdline: Option<String>,
    /// An ACS override found on the command line (`pcie_acs_override=...`).
    #[serde(default)]
    pub acs_override: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    pub ram_bytes: u64,
    pub free_frames: u64,
    pub heap_bytes: u64,
    pub map: Vec<MemoryRegion>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryRegion {
    pub start: u64,
    pub length: u64,
    pub kind: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acpi {
    pub revision: u64,
    pub tables: Vec<AcpiTable>,
    pub mcfg: Vec<Mcfg>,
    pub dmar_bytes: Option<u64>,
    /// PCI host bridges of the ACPI namespace (kernel).
    #[serde(default)]
    pub host_bridges: Vec<HostBridge>,
}

/// One PCI host bridge as ACPI declares it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostBridge {
    /// Its namespace path, e.g. `\_SB.PCI0`.
    pub path: String,
    pub segment: u16,
    /// Its bus range (`_CRS` or `_BBN`), when known.
    pub first_bus: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_bus: Option<u8>,
    /// Where the bus came from: `_CRS`, `_BBN` or the default.
    pub bus_from: String,
}

/// One segment's root buses (kernel).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentRoots {
    pub segment: u16,
    pub root_buses: Vec<RootBus>,
    /// x86's peer-bus probe, when it ran.
    pub peer_probe: Option<PeerProbe>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootBus {
    pub bus: u8,
    pub found_by: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerProbe {
    pub last_bus: u8,
    pub buses_probed: u16,
    pub config_reads: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcpiTable {
    pub signature: String,
    pub address: u64,
    pub length: u64,
    pub status: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mcfg {
    pub segment: u16,
    pub base: u64,
    pub start_bus: u8,
    pub end_bus: u8,
}

/// The DMAR table and the state of each unit (kernel), or the DMAR/IVRS
/// facts read from `/sys/firmware/acpi/tables` (tool).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dmar {
    pub host_address_width: u8,
    pub flags: u8,
    pub units: Vec<DmarUnit>,
    pub rmrr: Vec<Rmrr>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmarUnit {
    pub register_base: u64,
    pub segment: u16,
    pub flags: u8,
    pub scopes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecap: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sagaw: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_bits: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub levels: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalidation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caching_mode: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_walk_coherent: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domains: Option<u64>,
    pub translation: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rmrr {
    pub base: u64,
    pub limit: u64,
}

/// One group's VT-d domain (kernel).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    pub group: u32,
    pub domain: u16,
    pub unit: u64,
    pub context_entries: Vec<String>,
    pub mappings: Vec<Mapping>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    pub iova: u64,
    pub phys: u64,
    pub perms: String,
}

/// One decoded VT-d fault record (kernel).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    pub unit: u64,
    pub source: String,
    pub reason: u8,
    pub access: String,
    pub address: u64,
    pub text: String,
}

/// One DMA isolation proof (kernel).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmaTest {
    pub name: String,
    pub device: String,
    /// `pass`, `fail` or `skipped`.
    pub outcome: String,
    pub reason: Option<String>,
    pub detail: String,
}

/// The DMA-ownership demonstrations (kernel).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ownership {
    pub demonstrations: Vec<Demonstration>,
    pub events: Vec<Event>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Demonstration {
    pub number: u8,
    pub title: String,
    pub outcome: String,
    pub skipped_because: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub demo: u8,
    pub action: String,
    pub group: Option<u32>,
    pub devices: Vec<String>,
    pub owner: String,
    pub expected: String,
    pub outcome: String,
    pub reason: String,
}

/// The PCIe port services driver (pcieport) and what its services did
/// (kernel).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortServices {
    pub ports: Vec<Port>,
    /// What registration did, one line per port and service.
    pub log: Vec<String>,
    /// Every event the services handled.
    pub events: Vec<String>,
    /// What QEMU 7.2 cannot raise, so no run shows it.
    pub qemu_cannot_show: Vec<String>,
    pub waits_woken_by_interrupt: u64,
    pub waits_polled: u64,
    /// Demonstration 7: from the hot-add request to the device bound.
    pub hotplug_to_bound_us: Option<u64>,
}

/// One port pcieport serves.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    pub bdf: String,
    pub services: String,
    /// `MSI-X`, `MSI` or `none` (poll mode).
    pub irq_mode: String,
    pub vectors: u8,
    /// The hot-plug slot's state, when the port has a pciehp slot.
    pub slot_state: Option<String>,
    /// The AER service driver serves it (root ports and RCECs).
    pub aer_root: bool,
    /// The CPU vectors its services use.
    pub cpu_vectors: Vec<u8>,
}

/// The interrupt stack (kernel).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interrupts {
    /// An xAPIC was found and the IDT installed; otherwise every wait polls.
    pub available: bool,
    pub apic_id: u8,
    /// Interrupts on vectors without a handler.
    pub unexpected: u64,
    /// Every vector with a handler or an interrupt, and its counter.
    pub vectors: Vec<VectorCount>,
    /// Each function's MSI/MSI-X routes.
    pub functions: Vec<FunctionIrq>,
    pub edu_dma_by_interrupt: u64,
    pub edu_dma_polled: u64,
    /// Each unit's interrupt-remapping state.
    pub remapping: Vec<RemappingUnit>,
    pub dma_faults: FaultDelivery,
    /// What the interrupt machinery cost at boot, in TSC cycles.
    pub setup_cycles: InterruptSetupCycles,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VectorCount {
    pub vector: u8,
    pub name: String,
    pub count: u64,
}

/// One function's MSI or MSI-X interrupts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionIrq {
    pub bdf: String,
    /// `MSI` or `MSI-X`.
    pub kind: String,
    pub routes: Vec<IrqRoute>,
}

/// One programmed message: its vectors and, when remapped, its IRTEs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IrqRoute {
    /// First CPU vector and how many.
    pub vector: u8,
    pub count: u32,
    pub address: u64,
    pub data: u32,
    /// The remapping unit and first IRTE index (`None`: compatibility
    /// format).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<u64>,
    pub irte: Option<u16>,
    /// Completion interrupts the device sent that never arrived.
    pub missing: u64,
    /// The IRTE's source-id check (SVT, SQ, SID), when remapped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub svt: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sq: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_check: Option<String>,
}

/// One unit's interrupt remapping.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemappingUnit {
    pub unit: u64,
    pub enabled: bool,
    /// IRTA, table entries and entries in use, when enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub irta: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_use: Option<u64>,
    /// Why it is off, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why_off: Option<String>,
    /// Index-selective interrupt-entry-cache invalidations.
    pub iec_selective: u32,
}

/// How DMA fault records reach the kernel.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultDelivery {
    /// `interrupt` or `polled`.
    pub delivery: String,
    pub vector: Option<u8>,
    /// Records read by the fault-event handler, and by a polling sweep.
    pub from_handler: u64,
    pub polled: u64,
    /// Records the handler's ring had no room for.
    pub ring_dropped: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterruptSetupCycles {
    /// IDT and xAPIC.
    pub stack: u64,
    /// Interrupt remapping, all units.
    pub remapping: u64,
    pub fault_event: u64,
    /// Why faults are polled, when they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why_polled: Option<String>,
}

/// Demonstration 8: interrupt isolation (kernel).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterruptIsolation {
    /// Its cases, in the form of the DMA isolation proofs.
    pub cases: Vec<DmaTest>,
    /// Where QEMU 7.2 differs from real VT-d (not counted as passes).
    pub qemu_gaps: Vec<QemuGap>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QemuGap {
    pub what: String,
    /// What this run observed on QEMU 7.2.
    pub qemu_7_2: String,
    pub real_vtd: String,
}

/// One PCI function.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Function {
    /// `SSSS:BB:DD.F`.
    pub bdf: String,
    pub vendor: u16,
    pub device: u16,
    /// 24-bit class code.
    pub class: u32,
    pub header_type: u8,
    pub multifunction: bool,
    /// Linux's view of the PCIe type (after `set_pcie_port_type`), in words.
    pub port_type: Option<String>,
    /// The raw Device/Port Type field, as `lspci` shows it.
    pub pcie_type: Option<u8>,
    /// Linux 6.1's `set_pcie_port_type` bug: the type it meant to set.
    #[serde(default)]
    pub port_type_bug: Option<String>,
    /// Linux `dev->cfg_size`: 256 or 4096.
    #[serde(default)]
    pub cfg_size: u16,
    pub acs: Option<Acs>,
    /// The bridge above (`bus->self`), `None` on a root bus.
    pub parent: Option<String>,
    pub group: Option<u32>,
    /// The DRHD translating its DMA (`DRHD 0x...`), or `no IOMMU`; `None`
    /// when no DMAR table is known.
    #[serde(default)]
    pub iommu: Option<String>,
    pub driver: Option<String>,
    pub port_services: Option<String>,
    /// Named by an identity-mapped RMRR (Linux `device_has_rmrr`; kernel).
    #[serde(default)]
    pub rmrr: bool,
    /// A display name ("pcie-root-port", "Ethernet controller", ...).
    #[serde(default)]
    pub name: String,
    /// The kind Linux's rules see ("root port", "conventional PCI function").
    #[serde(default)]
    pub kind: String,
    /// The group Linux formed, as the input recorded it (tool).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linux_group: Option<u32>,
    /// What could not be known about this function from the input (tool).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown: Vec<String>,
}

/// ACS capability offset, capability word and the control word in force.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acs {
    pub offset: u16,
    pub cap: u16,
    pub ctrl: u16,
}

/// One IOMMU group.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub id: u32,
    /// Members in the order they joined.
    pub members: Vec<String>,
    /// The VT-d domain it translates through now (kernel).
    #[serde(default)]
    pub domain: Option<u16>,
    /// `none`, `kernel` or `user` (kernel).
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub events: Vec<Event>,
    /// One line per member: `BDF reason`.
    pub explanation: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    pub tsc_hz: Option<u64>,
    pub phases: Vec<Phase>,
    pub config_reads: u64,
    pub config_writes: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phase {
    pub name: String,
    pub cycles: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub us: Option<u64>,
}

/// Our partition against the one Linux formed on the machine.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comparison {
    /// Devices that carry a group in the input.
    pub compared: u64,
    /// Whether the partitions agree on every compared device.
    pub agree: bool,
    pub differences: Vec<Difference>,
}

/// One place where the partitions differ: a set of devices that our
/// groups and Linux's split differently (a connected piece of the overlap
/// between the two partitions).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    /// The first device of the piece, to name it.
    pub device: String,
    /// Our groups there (compared members, sorted).
    pub ours: Vec<Vec<String>>,
    /// Linux's groups there (members sorted).
    pub linux: Vec<Vec<String>>,
    /// The most likely cause, in words.
    pub cause: String,
    /// A short key for the cause: `not-found`, `unknown-text`,
    /// `acs-override`, `chipset-quirk`, `firmware-alias`, `kernel-version`,
    /// `rule`.
    pub cause_kind: String,
}

/// What would isolate one group of more than one device.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Isolation {
    pub group: u32,
    pub members: Vec<String>,
    /// Ports (and functions) whose missing ACS bits merge the group.
    pub gaps: Vec<AcsGap>,
    /// A quirk for these ids in a Linux later than 6.1, when one is known.
    pub later_quirk: Option<String>,
    /// In words: what would give each member its own group.
    pub advice: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcsGap {
    pub device: String,
    pub kind: String,
    /// What it lacks: `no ACS capability`, `lacks ACS RR/CR`, ...
    pub lacks: String,
    /// Whether ACS could exist there at all (false for conventional PCI,
    /// PCIe-to-PCI bridges and the other types ACS never applies to).
    pub acs_possible: bool,
}
