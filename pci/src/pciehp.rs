//! Native PCIe hot-plug (Linux 6.1 drivers/pci/hotplug/pciehp_hpc.c and
//! pciehp_ctrl.c): the Slot Capabilities decode, the notification enable
//! (`pcie_enable_notification`), Slot Control commands with their
//! completion (`pcie_do_write_cmd`, `pcie_poll_cmd`), the event read of the
//! interrupt handler (`pciehp_isr`: clear what was read, then read again),
//! and the slot state machine (`pciehp_handle_button_press`,
//! `pciehp_handle_presence_or_link_change`, `pciehp_queue_pushbutton_work`).
//!
//! The hardware side is the [`ConfigSpace`]; the kernel does the waiting
//! (a TSC deadline) and the enumeration of what appears behind the slot.

use crate::config::{Bdf, ConfigSpace};
use crate::regs::*;

/// Slot Capabilities, decoded (PCIe Base 5.0 §7.5.3.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotCap(pub u32);

impl SlotCap {
    /// `ATTN_BUTTN(ctrl)`.
    pub const fn attention_button(self) -> bool {
        self.0 & PCI_EXP_SLTCAP_ABP != 0
    }
    /// `POWER_CTRL(ctrl)`.
    pub const fn power_controller(self) -> bool {
        self.0 & PCI_EXP_SLTCAP_PCP != 0
    }
    /// `MRL_SENS(ctrl)`.
    pub const fn mrl_sensor(self) -> bool {
        self.0 & PCI_EXP_SLTCAP_MRLSP != 0
    }
    /// `ATTN_LED(ctrl)`.
    pub const fn attention_indicator(self) -> bool {
        self.0 & PCI_EXP_SLTCAP_AIP != 0
    }
    /// `PWR_LED(ctrl)`.
    pub const fn power_indicator(self) -> bool {
        self.0 & PCI_EXP_SLTCAP_PIP != 0
    }
    pub const fn surprise(self) -> bool {
        self.0 & PCI_EXP_SLTCAP_HPS != 0
    }
    /// `NO_CMD_CMPL(ctrl)`: the port never reports Command Completed.
    pub const fn no_command_completed(self) -> bool {
        self.0 & PCI_EXP_SLTCAP_NCCS != 0
    }
    /// Physical Slot Number (bits 31:19), Linux's slot name.
    pub const fn physical_slot(self) -> u32 {
        self.0 >> 19
    }
}

impl core::fmt::Display for SlotCap {
    /// As Linux's `pcie_init` prints it ("Slot #1 AttnBtn+ PwrCtrl+ ...").
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let b = |x: bool| if x { '+' } else { '-' };
        write!(
            f,
            "Slot #{} AttnBtn{} PwrCtrl{} MRL{} AttnInd{} PwrInd{} HotPlug+ Surprise{} NoCompl{}",
            self.physical_slot(),
            b(self.attention_button()),
            b(self.power_controller()),
            b(self.mrl_sensor()),
            b(self.attention_indicator()),
            b(self.power_indicator()),
            b(self.surprise()),
            b(self.no_command_completed()),
        )
    }
}

/// The event bits of Slot Status (`pciehp_isr` keeps only these).
pub const SLOT_EVENTS: u16 =
    PCI_EXP_SLTSTA_ABP | PCI_EXP_SLTSTA_PFD | PCI_EXP_SLTSTA_PDC | PCI_EXP_SLTSTA_CC | PCI_EXP_SLTSTA_DLLSC;

/// The Slot Control bits `pcie_enable_notification` manages.
pub const NOTIFICATION_MASK: u16 = PCI_EXP_SLTCTL_PDCE
    | PCI_EXP_SLTCTL_ABPE
    | PCI_EXP_SLTCTL_PFDE
    | PCI_EXP_SLTCTL_HPIE
    | PCI_EXP_SLTCTL_CCIE
    | PCI_EXP_SLTCTL_DLLSCE;

/// Linux 6.1 `pcie_enable_notification`: the Slot Control value and mask.
/// Always Data Link Layer State Changed; the attention button when there is
/// one, otherwise Presence Detect Changed ("Presence detect ... is
/// unreliable when there is a button": the button is the user's request);
/// HPIE, and CCIE unless the port has No Command Completed, only with an
/// interrupt (not in poll mode).
pub fn enable_notification(cap: SlotCap, poll_mode: bool) -> (u16, u16) {
    let mut cmd = PCI_EXP_SLTCTL_DLLSCE;
    cmd |= if cap.attention_button() { PCI_EXP_SLTCTL_ABPE } else { PCI_EXP_SLTCTL_PDCE };
    if !poll_mode {
        cmd |= PCI_EXP_SLTCTL_HPIE;
        if !cap.no_command_completed() {
            cmd |= PCI_EXP_SLTCTL_CCIE;
        }
    }
    (cmd, NOTIFICATION_MASK)
}

/// A slot: the port and the offset of its PCIe capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotRegs {
    pub port: Bdf,
    pub pcie: u16,
}

/// A Slot Control command that did not complete in time (`pcie_poll_cmd`:
/// "Timeout on hotplug command").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandTimeout {
    pub sltctl: u16,
}

impl SlotRegs {
    pub fn cap(&self, cfg: &mut dyn ConfigSpace) -> SlotCap {
        SlotCap(cfg.read32(self.port, self.pcie + PCI_EXP_SLTCAP))
    }
    pub fn control(&self, cfg: &mut dyn ConfigSpace) -> u16 {
        cfg.read16(self.port, self.pcie + PCI_EXP_SLTCTL)
    }
    pub fn status(&self, cfg: &mut dyn ConfigSpace) -> u16 {
        cfg.read16(self.port, self.pcie + PCI_EXP_SLTSTA)
    }
    /// `pciehp_card_present`: Presence Detect State.
    pub fn present(&self, cfg: &mut dyn ConfigSpace) -> bool {
        let s = self.status(cfg);
        s != u16::MAX && s & PCI_EXP_SLTSTA_PDS != 0
    }
    /// `pciehp_get_power_status`: Power Controller Control clear = on.
    pub fn powered(&self, cfg: &mut dyn ConfigSpace) -> bool {
        self.control(cfg) & PCI_EXP_SLTCTL_PCC == 0
    }

    /// Write `cmd` under `mask` into Slot Control (read-modify-write, a
    /// 16-bit access: a 32-bit write would also hit Slot Status). The
    /// caller waits for completion with [`Self::poll_command`] (or the
    /// interrupt) before the next command.
    pub fn write_command(&self, cfg: &mut dyn ConfigSpace, cmd: u16, mask: u16) -> u16 {
        let old = self.control(cfg);
        let new = (old & !mask) | (cmd & mask);
        cfg.write16(self.port, self.pcie + PCI_EXP_SLTCTL, new);
        new
    }

    /// `pcie_poll_cmd`, one look: whether Command Completed is set, and if
    /// so clear it (16-bit W1C of that bit alone, so no other event is lost).
    pub fn take_command_completed(&self, cfg: &mut dyn ConfigSpace) -> bool {
        let s = self.status(cfg);
        if s != u16::MAX && s & PCI_EXP_SLTSTA_CC != 0 {
            cfg.write16(self.port, self.pcie + PCI_EXP_SLTSTA, PCI_EXP_SLTSTA_CC);
            return true;
        }
        false
    }

    /// Write a command and poll for its completion at most `tries` times
    /// (the kernel passes its own wait between tries). A port with No
    /// Command Completed needs no wait.
    pub fn command(
        &self,
        cfg: &mut dyn ConfigSpace,
        cmd: u16,
        mask: u16,
        tries: u32,
        mut wait: impl FnMut(),
    ) -> Result<u16, CommandTimeout> {
        let cap = self.cap(cfg);
        // A port that reads all ones is gone: wait (and time out) rather
        // than take the all-ones word for "No Command Completed".
        let nccs = cap.0 != u32::MAX && cap.no_command_completed();
        let v = self.write_command(cfg, cmd, mask);
        if nccs {
            return Ok(v);
        }
        for _ in 0..tries {
            if self.take_command_completed(cfg) {
                return Ok(v);
            }
            wait();
        }
        Err(CommandTimeout { sltctl: v })
    }

    /// `pciehp_isr`'s read of events: read Slot Status, keep the event
    /// bits, clear them with a 16-bit write of exactly those bits, and read
    /// again until none is left (with MSI, a port sends a new message only
    /// when all event bits have been zero). `None` when the port reads all
    /// ones (gone). At most 8 rounds.
    pub fn read_events(&self, cfg: &mut dyn ConfigSpace) -> Option<u16> {
        let mut events = 0;
        for _ in 0..8 {
            let s = self.status(cfg);
            if s == u16::MAX {
                return None;
            }
            let s = s & SLOT_EVENTS;
            if s == 0 {
                break;
            }
            cfg.write16(self.port, self.pcie + PCI_EXP_SLTSTA, s);
            events |= s;
        }
        Some(events)
    }
}

/// Names of Slot Status events, for logs.
pub fn event_names(events: u16) -> alloc::string::String {
    let names = [
        (PCI_EXP_SLTSTA_ABP, "ABP"),
        (PCI_EXP_SLTSTA_PFD, "PFD"),
        (PCI_EXP_SLTSTA_MRLSC, "MRLSC"),
        (PCI_EXP_SLTSTA_PDC, "PDC"),
        (PCI_EXP_SLTSTA_CC, "CC"),
        (PCI_EXP_SLTSTA_DLLSC, "DLLSC"),
    ];
    let mut out = alloc::string::String::new();
    for (bit, name) in names {
        if events & bit != 0 {
            if !out.is_empty() {
                out.push('|');
            }
            out.push_str(name);
        }
    }
    if out.is_empty() {
        out.push_str("none");
    }
    out
}

/// `ctrl->state` (pciehp.h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotState {
    Off,
    BlinkingOn,
    BlinkingOff,
    PowerOn,
    PowerOff,
    On,
}

/// What the state machine asks the kernel to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Nothing,
    /// Button pressed on an occupied, powered slot: power indicator
    /// blinking, attention indicator off; after the button delay,
    /// [`Slot::button_work`].
    BlinkOff,
    /// Button pressed on an empty or powered-off slot: blink, then
    /// [`Slot::button_work`].
    BlinkOn,
    /// A second press within the delay cancels (`Button cancel`): the
    /// power indicator goes back on (or off), attention off.
    Cancelled {
        on: bool,
    },
    /// `pciehp_enable_slot`: power on, power indicator blinking, wait for
    /// the device, enumerate and bind, power indicator on. Report back with
    /// [`Slot::enabled`].
    Enable,
    /// `pciehp_disable_slot`: unbind and remove the functions below, power
    /// off, power indicator off. Report back with [`Slot::disabled`].
    Disable,
}

/// The slot state machine of pciehp_ctrl.c.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub state: SlotState,
}

impl Slot {
    /// `pciehp_probe`: on when occupied and powered, otherwise off.
    pub fn new(present: bool, powered: bool) -> Self {
        Self { state: if present && powered { SlotState::On } else { SlotState::Off } }
    }

    /// `pciehp_ist`: the button first, then presence or link changes.
    /// `present` is Presence Detect State read after the events.
    pub fn on_events(&mut self, events: u16, present: bool) -> Step {
        let mut step = Step::Nothing;
        if events & PCI_EXP_SLTSTA_ABP != 0 {
            step = self.button_press();
        }
        if events & (PCI_EXP_SLTSTA_PDC | PCI_EXP_SLTSTA_DLLSC) != 0 {
            step = self.presence_or_link_change(present);
        }
        step
    }

    /// `pciehp_handle_button_press`.
    fn button_press(&mut self) -> Step {
        match self.state {
            SlotState::On => {
                self.state = SlotState::BlinkingOff;
                Step::BlinkOff
            }
            SlotState::Off => {
                self.state = SlotState::BlinkingOn;
                Step::BlinkOn
            }
            SlotState::BlinkingOff => {
                self.state = SlotState::On;
                Step::Cancelled { on: true }
            }
            SlotState::BlinkingOn => {
                self.state = SlotState::Off;
                Step::Cancelled { on: false }
            }
            SlotState::PowerOn | SlotState::PowerOff => Step::Nothing,
        }
    }

    /// `pciehp_handle_presence_or_link_change`: an occupied slot whose
    /// presence changed is turned off (the card may not be the same), then
    /// an occupied slot that is off is turned on.
    fn presence_or_link_change(&mut self, present: bool) -> Step {
        if matches!(self.state, SlotState::On | SlotState::BlinkingOff) {
            self.state = SlotState::PowerOff;
            return Step::Disable;
        }
        if !present {
            if self.state == SlotState::BlinkingOn {
                self.state = SlotState::Off;
                return Step::Cancelled { on: false };
            }
            return Step::Nothing;
        }
        match self.state {
            SlotState::Off | SlotState::BlinkingOn => {
                self.state = SlotState::PowerOn;
                Step::Enable
            }
            _ => Step::Nothing,
        }
    }

    /// `pciehp_queue_pushbutton_work`, when the button delay has passed.
    pub fn button_work(&mut self) -> Step {
        match self.state {
            SlotState::BlinkingOff => {
                self.state = SlotState::PowerOff;
                Step::Disable
            }
            SlotState::BlinkingOn => {
                self.state = SlotState::PowerOn;
                Step::Enable
            }
            _ => Step::Nothing,
        }
    }

    /// After `pciehp_enable_slot`: on if it worked, otherwise off.
    pub fn enabled(&mut self, ok: bool) {
        self.state = if ok { SlotState::On } else { SlotState::Off };
    }

    /// After `pciehp_disable_slot`.
    pub fn disabled(&mut self) {
        self.state = SlotState::Off;
    }
}

/// `pciehp_power_on_slot` (clear Power Fault Detected, then PCC = on).
pub const POWER_ON: (u16, u16) = (PCI_EXP_SLTCTL_PWR_ON, PCI_EXP_SLTCTL_PCC);
/// `pciehp_power_off_slot`.
pub const POWER_OFF: (u16, u16) = (PCI_EXP_SLTCTL_PWR_OFF, PCI_EXP_SLTCTL_PCC);

/// `pciehp_set_indicators(power, attention)`: the command and mask; `None`
/// leaves an indicator as it is (`INDICATOR_NOOP`), and an indicator the
/// slot does not have is never written.
pub fn indicators(cap: SlotCap, power: Option<u16>, attention: Option<u16>) -> (u16, u16) {
    let (mut cmd, mut mask) = (0, 0);
    if let (Some(p), true) = (power, cap.power_indicator()) {
        cmd |= p & PCI_EXP_SLTCTL_PIC;
        mask |= PCI_EXP_SLTCTL_PIC;
    }
    if let (Some(a), true) = (attention, cap.attention_indicator()) {
        cmd |= a & PCI_EXP_SLTCTL_AIC;
        mask |= PCI_EXP_SLTCTL_AIC;
    }
    (cmd, mask)
}

/// The Slot Control commands of `pciehp_handle_button_press` on an
/// occupied slot: power indicator blinking, attention indicator off.
pub fn button_blink(cap: SlotCap) -> alloc::vec::Vec<(u16, u16)> {
    nonempty([indicators(cap, Some(PCI_EXP_SLTCTL_PWR_IND_BLINK), Some(PCI_EXP_SLTCTL_ATTN_IND_OFF))])
}

/// `remove_board` after the functions are gone: power off (when there is
/// a power controller), then the power indicator off. QEMU 7.2 completes
/// a `device_del` exactly when Slot Control reaches both.
pub fn power_off_sequence(cap: SlotCap) -> alloc::vec::Vec<(u16, u16)> {
    let off = if cap.power_controller() { POWER_OFF } else { (0, 0) };
    nonempty([off, indicators(cap, Some(PCI_EXP_SLTCTL_PWR_IND_OFF), None)])
}

/// `board_added` before the device is looked for: power on, power
/// indicator blinking.
pub fn power_on_sequence(cap: SlotCap) -> alloc::vec::Vec<(u16, u16)> {
    let on = if cap.power_controller() { POWER_ON } else { (0, 0) };
    nonempty([on, indicators(cap, Some(PCI_EXP_SLTCTL_PWR_IND_BLINK), None)])
}

/// `board_added` once the functions are configured: power indicator on,
/// attention indicator off.
pub fn configured_sequence(cap: SlotCap) -> alloc::vec::Vec<(u16, u16)> {
    nonempty([indicators(cap, Some(PCI_EXP_SLTCTL_PWR_IND_ON), Some(PCI_EXP_SLTCTL_ATTN_IND_OFF))])
}

/// `set_slot_off`, `board_added`'s error exit (the device never answered,
/// or could not be configured): power off (when there is a power
/// controller; Linux then waits 1 s), then power indicator off and
/// attention indicator on.
pub fn set_slot_off_sequence(cap: SlotCap) -> alloc::vec::Vec<(u16, u16)> {
    let off = if cap.power_controller() { POWER_OFF } else { (0, 0) };
    nonempty([off, indicators(cap, Some(PCI_EXP_SLTCTL_PWR_IND_OFF), Some(PCI_EXP_SLTCTL_ATTN_IND_ON))])
}

/// Commands with an empty mask write nothing and are left out.
fn nonempty<const N: usize>(cmds: [(u16, u16); N]) -> alloc::vec::Vec<(u16, u16)> {
    cmds.into_iter().filter(|&(_, mask)| mask != 0).collect()
}

#[cfg(all(test, feature = "sim"))]
mod tests {
    use super::*;
    use crate::sim::{SimConfig, qemu};

    const PORT: Bdf = Bdf::new(0, 2, 0, 0);

    fn slot() -> (SimConfig, SlotRegs) {
        let mut cfg = SimConfig::new();
        cfg.add(PORT, qemu::dsp(2, 3, 3));
        let pcie = 0x40; // the first standard capability
        let regs = SlotRegs { port: PORT, pcie };
        assert_eq!(cfg.peek16(PORT, pcie) & 0xff, u16::from(PCI_CAP_ID_EXP), "PCIe cap where expected");
        (cfg, regs)
    }

    #[test]
    fn qemu_slot_capabilities_decode() {
        let (mut cfg, regs) = slot();
        let cap = regs.cap(&mut cfg);
        assert!(cap.attention_button() && cap.power_controller() && cap.attention_indicator());
        assert!(cap.power_indicator() && cap.surprise() && !cap.mrl_sensor() && !cap.no_command_completed());
        assert_eq!(
            alloc::format!("{cap}"),
            "Slot #0 AttnBtn+ PwrCtrl+ MRL- AttnInd+ PwrInd+ HotPlug+ Surprise+ NoCompl-"
        );
        assert_eq!(SlotCap(0x0008_0040 | PCI_EXP_SLTCAP_NCCS).physical_slot(), 1);
    }

    #[test]
    fn notification_enables_the_button_not_presence() {
        let cap = SlotCap(0x0002_007b);
        let (cmd, mask) = enable_notification(cap, false);
        assert_eq!(cmd, PCI_EXP_SLTCTL_DLLSCE | PCI_EXP_SLTCTL_ABPE | PCI_EXP_SLTCTL_HPIE | PCI_EXP_SLTCTL_CCIE);
        assert_eq!(cmd & PCI_EXP_SLTCTL_PDCE, 0, "ABPE, not PDCE, with an attention button");
        assert_eq!(mask, 0x103b);
        // Without a button: presence detect.
        let (cmd, _) = enable_notification(SlotCap(PCI_EXP_SLTCAP_HPC), false);
        assert_eq!(cmd & (PCI_EXP_SLTCTL_PDCE | PCI_EXP_SLTCTL_ABPE), PCI_EXP_SLTCTL_PDCE);
        // Poll mode: no interrupt enables; No Command Completed: no CCIE.
        let (cmd, _) = enable_notification(cap, true);
        assert_eq!(cmd & (PCI_EXP_SLTCTL_HPIE | PCI_EXP_SLTCTL_CCIE), 0);
        let (cmd, _) = enable_notification(SlotCap(0x7b | PCI_EXP_SLTCAP_NCCS), false);
        assert_eq!(cmd & (PCI_EXP_SLTCTL_HPIE | PCI_EXP_SLTCTL_CCIE), PCI_EXP_SLTCTL_HPIE);
    }

    #[test]
    fn commands_are_16_bit_and_wait_for_completion() {
        let (mut cfg, regs) = slot();
        let (cmd, mask) = enable_notification(regs.cap(&mut cfg), false);
        regs.command(&mut cfg, cmd, mask, 3, || {}).expect("QEMU completes every command");
        // QEMU 7.2: DLLSCE (and PFDE) are not writable.
        assert_eq!(regs.control(&mut cfg) & mask, cmd & !PCI_EXP_SLTCTL_DLLSCE);
        let w: alloc::vec::Vec<_> = cfg.writes.iter().filter(|w| w.offset >= regs.pcie + PCI_EXP_SLTCTL).collect();
        assert!(w.iter().all(|w| w.size == 2), "Slot Control and Status only with 16-bit writes: {w:?}");
        assert_eq!(w.last().unwrap().value, u32::from(PCI_EXP_SLTSTA_CC), "CC cleared alone");
        assert_eq!(regs.status(&mut cfg) & PCI_EXP_SLTSTA_CC, 0);
        // A command that never completes (a port that is gone) times out
        // after the bounded number of tries.
        let mut tries = 0;
        let gone = SlotRegs { port: Bdf::new(0, 9, 0, 0), pcie: regs.pcie };
        assert!(gone.command(&mut cfg, 0, PCI_EXP_SLTCTL_PCC, 4, || tries += 1).is_err());
        assert_eq!(tries, 4);
    }

    #[test]
    fn isr_clears_what_it_read_then_reads_again() {
        let (mut cfg, regs) = slot();
        // device_add on QEMU: PDS set, PDC|ABP raised together (0x49).
        cfg.raise(PORT, regs.pcie + PCI_EXP_SLTSTA, 2, u32::from(PCI_EXP_SLTSTA_PDS | 0x9));
        let ev = regs.read_events(&mut cfg).unwrap();
        assert_eq!(ev, PCI_EXP_SLTSTA_ABP | PCI_EXP_SLTSTA_PDC);
        assert_eq!(event_names(ev), "ABP|PDC");
        assert_eq!(regs.status(&mut cfg), PCI_EXP_SLTSTA_PDS, "events cleared, presence state kept");
        let sts: alloc::vec::Vec<_> =
            cfg.writes.iter().filter(|w| w.offset == regs.pcie + PCI_EXP_SLTSTA).map(|w| (w.size, w.value)).collect();
        assert_eq!(sts, [(2, 0x9)], "one 16-bit write of exactly the events read");
        assert_eq!(regs.read_events(&mut cfg), Some(0));
        let gone = SlotRegs { port: Bdf::new(0, 9, 0, 0), pcie: regs.pcie };
        assert_eq!(gone.read_events(&mut cfg), None);
    }

    #[test]
    fn qemu_device_add_powers_the_slot_on_at_once() {
        // device_add raises ABP and PDC together: the button starts the
        // blink, the presence change turns the slot on without the delay.
        let mut s = Slot::new(false, false);
        assert_eq!(s.state, SlotState::Off);
        assert_eq!(s.on_events(PCI_EXP_SLTSTA_ABP | PCI_EXP_SLTSTA_PDC, true), Step::Enable);
        assert_eq!(s.state, SlotState::PowerOn);
        s.enabled(true);
        assert_eq!(s.state, SlotState::On);
    }

    #[test]
    fn qemu_device_del_is_a_button_press_then_the_delay() {
        let mut s = Slot::new(true, true);
        assert_eq!(s.on_events(PCI_EXP_SLTSTA_ABP, true), Step::BlinkOff);
        assert_eq!(s.state, SlotState::BlinkingOff);
        assert_eq!(s.button_work(), Step::Disable);
        assert_eq!(s.state, SlotState::PowerOff);
        s.disabled();
        assert_eq!(s.button_work(), Step::Nothing, "no work left");
        // A second press within the delay cancels.
        let mut s = Slot::new(true, true);
        s.on_events(PCI_EXP_SLTSTA_ABP, true);
        assert_eq!(s.on_events(PCI_EXP_SLTSTA_ABP, true), Step::Cancelled { on: true });
        assert_eq!(s.state, SlotState::On);
        // Surprise removal: presence change on an occupied slot.
        let mut s = Slot::new(true, true);
        assert_eq!(s.on_events(PCI_EXP_SLTSTA_PDC, false), Step::Disable);
        // A button on an empty slot blinks; presence gone cancels it.
        let mut s = Slot::new(false, false);
        assert_eq!(s.on_events(PCI_EXP_SLTSTA_ABP, false), Step::BlinkOn);
        assert_eq!(s.on_events(PCI_EXP_SLTSTA_PDC, false), Step::Cancelled { on: false });
    }

    #[test]
    fn remove_and_add_sequences_reach_what_qemu_waits_for() {
        let (mut cfg, regs) = slot();
        let cap = regs.cap(&mut cfg);
        let run = |cfg: &mut SimConfig, seq: alloc::vec::Vec<(u16, u16)>| {
            for (cmd, mask) in seq {
                regs.command(cfg, cmd, mask, 2, || {}).expect("completes");
            }
        };
        // device_del: the button blinks, then power off and indicator off.
        run(&mut cfg, button_blink(cap));
        assert_eq!(regs.control(&mut cfg) & (PCI_EXP_SLTCTL_PIC | PCI_EXP_SLTCTL_AIC), 0x2c0);
        let before = cfg.writes.len();
        run(&mut cfg, power_off_sequence(cap));
        assert_eq!(cfg.writes.len() - before, 4, "two commands, each followed by the CC clear");
        let ctl = regs.control(&mut cfg);
        assert_eq!(ctl & (PCI_EXP_SLTCTL_PCC | PCI_EXP_SLTCTL_PIC), 0x700, "power off, power indicator off");
        assert!(!regs.powered(&mut cfg));
        // device_add: power on and blink, then on and attention off.
        run(&mut cfg, power_on_sequence(cap));
        assert!(regs.powered(&mut cfg));
        assert_eq!(regs.control(&mut cfg) & PCI_EXP_SLTCTL_PIC, PCI_EXP_SLTCTL_PWR_IND_BLINK);
        run(&mut cfg, configured_sequence(cap));
        assert_eq!(regs.control(&mut cfg) & (PCI_EXP_SLTCTL_PIC | PCI_EXP_SLTCTL_AIC), 0x1c0);
        assert!(cfg.writes.iter().filter(|w| w.offset >= regs.pcie + PCI_EXP_SLTCTL).all(|w| w.size == 2));
        // A slot without a power controller or indicators: nothing to write.
        let bare = SlotCap(PCI_EXP_SLTCAP_HPC | PCI_EXP_SLTCAP_ABP);
        assert!(power_off_sequence(bare).is_empty() && power_on_sequence(bare).is_empty());
    }

    #[test]
    fn a_failed_hot_add_turns_the_slot_off_with_attention_on() {
        // board_added's err_exit (set_slot_off): after power on and the
        // blink, a device that never answers (or cannot be configured)
        // leaves the slot powered off, power indicator off, attention on.
        let (mut cfg, regs) = slot();
        let cap = regs.cap(&mut cfg);
        for (cmd, mask) in power_on_sequence(cap).into_iter().chain(set_slot_off_sequence(cap)) {
            regs.command(&mut cfg, cmd, mask, 2, || {}).expect("completes");
        }
        assert!(!regs.powered(&mut cfg), "power off");
        let ctl = regs.control(&mut cfg);
        assert_eq!(ctl & PCI_EXP_SLTCTL_PIC, PCI_EXP_SLTCTL_PWR_IND_OFF, "power indicator off");
        assert_eq!(ctl & PCI_EXP_SLTCTL_AIC, PCI_EXP_SLTCTL_ATTN_IND_ON, "attention indicator on");
        // Power off comes first (then Linux waits 1 s), indicators after.
        assert_eq!(set_slot_off_sequence(cap)[0], POWER_OFF);
        let bare = SlotCap(PCI_EXP_SLTCAP_HPC | PCI_EXP_SLTCAP_ABP);
        assert!(set_slot_off_sequence(bare).is_empty());
    }

    #[test]
    fn indicator_commands_only_for_present_indicators() {
        let cap = SlotCap(0x0002_007b);
        assert_eq!(
            indicators(cap, Some(PCI_EXP_SLTCTL_PWR_IND_BLINK), Some(PCI_EXP_SLTCTL_ATTN_IND_OFF)),
            (PCI_EXP_SLTCTL_PWR_IND_BLINK | PCI_EXP_SLTCTL_ATTN_IND_OFF, PCI_EXP_SLTCTL_PIC | PCI_EXP_SLTCTL_AIC)
        );
        assert_eq!(indicators(cap, Some(PCI_EXP_SLTCTL_PWR_IND_OFF), None), (0x300, 0x300));
        assert_eq!(indicators(SlotCap(0x42), Some(PCI_EXP_SLTCTL_PWR_IND_ON), Some(0xc0)), (0, 0));
        // Power off then indicator off: what makes QEMU complete device_del.
        let (mut cfg, regs) = slot();
        regs.command(&mut cfg, POWER_OFF.0, POWER_OFF.1, 2, || {}).unwrap();
        assert!(!regs.powered(&mut cfg));
        regs.command(&mut cfg, POWER_ON.0, POWER_ON.1, 2, || {}).unwrap();
        assert!(regs.powered(&mut cfg));
    }
}
