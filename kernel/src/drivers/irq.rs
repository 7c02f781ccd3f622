//! MSI and MSI-X for drivers: the kernel side of `pci::msi` (which holds
//! the capability layouts, message formats and programming order). This
//! module only allocates vectors (`arch::interrupts`), asks VT-d for the
//! message (`Vtd::interrupt_route`: a remappable-format message through a
//! fresh IRTE when interrupt remapping is on for the device's unit, else
//! the compatibility format) and does the writes.
//!
//! A driver calls:
//! - [`enable_msi`]`(ctx, index, want, name, handler)`: `want` vectors
//!   (rounded up to a power of two, as `msi_capability_init` does; ioh3420
//!   has 2), one block of vectors and one block of IRTEs;
//! - [`enable_msix`]`(ctx, index, want, name, handler)`: entries 0..want,
//!   one vector and one IRTE each; the table is in a memory BAR that must
//!   lie in the uncached 2-4 GiB window of the boot page tables (SeaBIOS
//!   puts 32-bit BARs there);
//! - [`disable`] to undo either.
//!
//! Then `arch::interrupts::count` + `wait_for` to wait. A function's MSI
//! is a memory write: it is dropped unless the function's own Bus Master
//! Enable is set (`Vtd::enable_bus_master`, the one gate).

use super::Ctx;
use crate::arch::interrupts::{self, Handler};
use crate::hw::mmio;
use crate::pipeline::vtd::IrqRoute;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use pci::msi::{MsiCap, MsiMessage, MsixCap, MsixTable};
use pci::regs::{PCI_CAP_ID_MSI, PCI_CAP_ID_MSIX};

/// Which capability is in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqKind {
    Msi,
    Msix,
}

/// A function's interrupts as set up.
#[derive(Clone, Debug)]
pub struct IrqSetup {
    pub index: usize,
    pub kind: IrqKind,
    /// Vector of message/entry `n` is `vectors[n]`.
    pub vectors: Vec<u8>,
    /// The routes (message and IRTE) of each vector.
    pub routes: Vec<IrqRoute>,
    cap: u16,
    msix_table: Option<u64>,
}

/// The MSI-X table through the identity map (uncached window).
struct MmioTable(u64);

impl MsixTable for MmioTable {
    fn read32(&mut self, offset: u64) -> u32 {
        // SAFETY: `table_in_window` checked the table lies in the 2-4 GiB
        // window the boot page tables map uncached; the table has no read
        // side effects.
        unsafe { mmio::read(self.0 + offset) }
    }
    fn write32(&mut self, offset: u64, value: u32) {
        // SAFETY: as `read32`; only table entries (message, control) are
        // written, at offsets `pci::msi` bounds by the table size.
        unsafe { mmio::write(self.0 + offset, value) }
    }
}

fn table_in_window(addr: u64, entries: u32) -> Result<u64, String> {
    let end = addr + u64::from(entries) * pci::msi::PCI_MSIX_ENTRY_SIZE;
    if addr < 2 << 30 || end > 4 << 30 || !addr.is_multiple_of(16) {
        return Err(format!("MSI-X table at {addr:#x} is outside the uncached 2-4 GiB window"));
    }
    Ok(addr)
}

fn find_cap(ctx: &Ctx, index: usize, id: u8) -> Result<u16, String> {
    let f = &ctx.topo.functions[index];
    f.caps
        .find(id)
        .ok_or_else(|| format!("{}: no {} capability", f.bdf, if id == PCI_CAP_ID_MSI { "MSI" } else { "MSI-X" }))
}

fn release(ctx: &mut Ctx, vectors: &[u8], routes: &[IrqRoute]) {
    let mut quiet = true;
    for r in routes {
        quiet &= ctx.vtd.free_interrupt_route(r);
    }
    // A vector an IRTE the unit may still cache points at is never
    // handed to another device.
    if quiet {
        for &v in vectors {
            interrupts::free_vector(v);
        }
    }
}

/// Enable MSI on function `index` with `want` vectors, all on `handler`.
pub fn enable_msi(
    ctx: &mut Ctx,
    index: usize,
    want: u32,
    name: &'static str,
    handler: Handler,
) -> Result<IrqSetup, String> {
    let bdf = ctx.topo.functions[index].bdf;
    let off = find_cap(ctx, index, PCI_CAP_ID_MSI)?;
    let cap = MsiCap::read(ctx.ecam, bdf, off).map_err(|e| format!("{bdf}: {e}"))?;
    let n = cap.vectors_for(want).map_err(|e| format!("{bdf}: {e}"))?;
    let first = interrupts::alloc_vectors(n, name, handler).map_err(|e| format!("{bdf}: {e}"))?;
    let vectors: Vec<u8> = (0..n as u8).map(|i| first + i).collect();
    let route = match ctx.vtd.interrupt_route(ctx.topo, index, first, n) {
        Ok(r) => r,
        Err(e) => {
            release(ctx, &vectors, &[]);
            return Err(format!("{bdf}: {e}"));
        }
    };
    if let Err(e) = cap.enable(ctx.ecam, bdf, route.message, n) {
        release(ctx, &vectors, &[route]);
        return Err(format!("{bdf}: {e}"));
    }
    Ok(IrqSetup { index, kind: IrqKind::Msi, vectors, routes: alloc::vec![route], cap: off, msix_table: None })
}

/// Enable MSI-X entries 0..`want` on function `index`, all on `handler`.
pub fn enable_msix(
    ctx: &mut Ctx,
    index: usize,
    want: u32,
    name: &'static str,
    handler: Handler,
) -> Result<IrqSetup, String> {
    let bdf = ctx.topo.functions[index].bdf;
    let off = find_cap(ctx, index, PCI_CAP_ID_MSIX)?;
    let cap = MsixCap::read(ctx.ecam, bdf, off).map_err(|e| format!("{bdf}: {e}"))?;
    if want == 0 || want > cap.table_size {
        return Err(format!("{bdf}: {want} MSI-X entries asked for, the table has {}", cap.table_size));
    }
    let table = cap.table_address(ctx.ecam, bdf).map_err(|e| format!("{bdf}: {e}"))?;
    let table = table_in_window(table, cap.table_size).map_err(|e| format!("{bdf}: {e}"))?;
    // Memory decoding must be on for the table to answer.
    // (Only a change is written: every Command write to a bridge makes
    // QEMU re-render every address space.)
    let cmd = pci::ConfigSpace::read16(ctx.ecam, bdf, pci::regs::PCI_COMMAND);
    if cmd & pci::regs::PCI_COMMAND_MEMORY == 0 {
        pci::ConfigSpace::write16(ctx.ecam, bdf, pci::regs::PCI_COMMAND, cmd | pci::regs::PCI_COMMAND_MEMORY);
    }
    let mut vectors = Vec::new();
    let mut routes = Vec::new();
    for _ in 0..want {
        let r = interrupts::alloc_vector(name, handler).map_err(|e| format!("{e}")).and_then(|v| {
            vectors.push(v);
            ctx.vtd.interrupt_route(ctx.topo, index, v, 1)
        });
        match r {
            Ok(route) => routes.push(route),
            Err(e) => {
                release(ctx, &vectors, &routes);
                return Err(format!("{bdf}: {e}"));
            }
        }
    }
    let msgs: Vec<MsiMessage> = routes.iter().map(|r| r.message).collect();
    if let Err(e) = cap.enable(ctx.ecam, bdf, &mut MmioTable(table), &msgs) {
        release(ctx, &vectors, &routes);
        return Err(format!("{bdf}: {e}"));
    }
    Ok(IrqSetup { index, kind: IrqKind::Msix, vectors, routes, cap: off, msix_table: Some(table) })
}

/// Mask MSI-X at the function (and every entry) but leave it enabled, then
/// free the IRTEs and vectors: for a device model that must not see MSI-X
/// turned off while it may still signal (QEMU 7.2's e1000e asserts it from
/// its throttling timer). A message it still tries is held pending.
pub fn quiesce_msix(ctx: &mut Ctx, setup: IrqSetup) {
    let bdf = ctx.topo.functions[setup.index].bdf;
    if let (IrqKind::Msix, Some(t)) = (setup.kind, setup.msix_table)
        && let Ok(cap) = MsixCap::read(ctx.ecam, bdf, setup.cap)
    {
        let flags = pci::ConfigSpace::read16(ctx.ecam, bdf, setup.cap + pci::msi::PCI_MSIX_FLAGS);
        pci::ConfigSpace::write16(
            ctx.ecam,
            bdf,
            setup.cap + pci::msi::PCI_MSIX_FLAGS,
            flags | pci::msi::PCI_MSIX_FLAGS_MASKALL,
        );
        for i in 0..cap.table_size {
            let _ = cap.set_masked(&mut MmioTable(t), i, true);
        }
    }
    release(ctx, &setup.vectors, &setup.routes);
}

/// Turn the capability off (INTx back on), free the IRTEs and vectors.
pub fn disable(ctx: &mut Ctx, setup: IrqSetup) {
    let bdf = ctx.topo.functions[setup.index].bdf;
    match (setup.kind, setup.msix_table) {
        (IrqKind::Msi, _) => {
            if let Ok(cap) = MsiCap::read(ctx.ecam, bdf, setup.cap) {
                cap.disable(ctx.ecam, bdf);
            }
        }
        (IrqKind::Msix, Some(t)) => {
            if let Ok(cap) = MsixCap::read(ctx.ecam, bdf, setup.cap) {
                cap.disable(ctx.ecam, bdf, &mut MmioTable(t));
            }
        }
        (IrqKind::Msix, None) => {}
    }
    release(ctx, &setup.vectors, &setup.routes);
}
