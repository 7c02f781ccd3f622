//! Boot-phase timing with the TSC, calibrated against the ACPI PM timer.
//!
//! The PM timer counts at 3.579545 MHz (ACPI 6.5 §4.8.3.3). Instead of a
//! busy-wait calibration loop, which would add to boot time, the PM timer is
//! sampled at every phase mark after ACPI is known; the TSC frequency is the
//! ratio of the two counters over the whole boot. The 24-bit PM counter
//! wraps every 4.7 s, so consecutive samples must be closer than that: each
//! phase is far shorter.

use crate::arch::rdtsc;
use x86_64::instructions::port::Port;

const PM_TIMER_HZ: u64 = 3_579_545;
const PM_TIMER_MASK: u32 = 0x00ff_ffff;

/// A named point in the boot, in TSC cycles since kernel entry.
#[derive(Clone, Copy, Debug)]
pub struct Mark {
    pub name: &'static str,
    pub tsc: u64,
}

/// Phase marks kept; later ones are dropped.
const MAX_MARKS: usize = 32;

/// Works before the heap exists: the marks live in a fixed array.
pub struct Clock {
    start: u64,
    marks: [Mark; MAX_MARKS],
    len: usize,
    pm_port: Option<u16>,
    /// (TSC, PM ticks accumulated) at the first PM sample.
    pm_first: Option<(u64, u64)>,
    /// Last raw PM value, TSC and accumulated ticks.
    pm_last: (u32, u64, u64),
}

impl Clock {
    pub fn new(start: u64) -> Self {
        Self {
            start,
            marks: [Mark { name: "", tsc: 0 }; MAX_MARKS],
            len: 0,
            pm_port: None,
            pm_first: None,
            pm_last: (0, 0, 0),
        }
    }

    fn read_pm(port: u16) -> u32 {
        // SAFETY: the FADT names this I/O port as the PM timer; reading it
        // has no side effects.
        unsafe { Port::<u32>::new(port).read() & PM_TIMER_MASK }
    }

    /// Start calibrating against the PM timer at `port`.
    pub fn set_pm_timer(&mut self, port: u16) {
        self.pm_port = Some(port);
        let (tsc, pm) = (rdtsc(), Self::read_pm(port));
        self.pm_first = Some((tsc, 0));
        self.pm_last = (pm, tsc, 0);
    }

    fn sample_pm(&mut self) {
        if let Some(port) = self.pm_port {
            let (pm, tsc) = (Self::read_pm(port), rdtsc());
            let (last, _, acc) = self.pm_last;
            let delta = pm.wrapping_sub(last) & PM_TIMER_MASK;
            self.pm_last = (pm, tsc, acc + u64::from(delta));
        }
    }

    /// Record the end of a phase.
    pub fn mark(&mut self, name: &'static str) {
        self.sample_pm();
        self.mark_at(name, rdtsc());
    }

    /// Record the end of a phase measured earlier at TSC `tsc`.
    pub fn mark_at(&mut self, name: &'static str, tsc: u64) {
        if self.len < MAX_MARKS {
            self.marks[self.len] = Mark { name, tsc: tsc - self.start };
            self.len += 1;
        }
    }

    pub fn marks(&self) -> &[Mark] {
        &self.marks[..self.len]
    }

    /// TSC frequency in Hz. The PM timer must have run for at least 1 ms
    /// (3580 ticks: better than 0.03 %); if the boot was faster than that,
    /// wait for the rest. The wait is bounded by a PM-timer read count, so
    /// a PM timer that does not count ends it with no answer.
    pub fn tsc_hz(&mut self) -> Option<u64> {
        let (tsc0, _) = self.pm_first?;
        let min_ticks = PM_TIMER_HZ / 1000;
        for _ in 0..1_000_000 {
            self.sample_pm();
            if self.pm_last.2 >= min_ticks {
                break;
            }
            core::hint::spin_loop();
        }
        let (_, tsc1, ticks) = self.pm_last;
        (ticks >= min_ticks).then(|| ((tsc1 - tsc0) as u128 * PM_TIMER_HZ as u128 / ticks as u128) as u64)
    }
}

/// Busy-wait `ms` milliseconds on the PM timer at `port` (ACPI: 3.579545
/// MHz). Bounded twice: by the ticks wanted, and by a read count (each
/// port read takes well over 100 ns, so 20,000 reads per ms is more than
/// a millisecond), so a PM timer that does not count ends the wait.
pub fn pm_delay_ms(port: u16, ms: u32) {
    let want = PM_TIMER_HZ * u64::from(ms) / 1000;
    let mut last = Clock::read_pm(port);
    let mut ticks = 0u64;
    for _ in 0..u64::from(ms) * 20_000 {
        let now = Clock::read_pm(port);
        ticks += u64::from(now.wrapping_sub(last) & PM_TIMER_MASK);
        last = now;
        if ticks >= want {
            return;
        }
        core::hint::spin_loop();
    }
}

/// Convert TSC cycles to microseconds.
pub fn cycles_to_us(cycles: u64, hz: u64) -> u64 {
    (cycles as u128 * 1_000_000 / hz.max(1) as u128) as u64
}

/// A point in time after which a bounded wait gives up.
#[derive(Clone, Copy, Debug)]
pub struct Deadline(u64, u64);

impl Deadline {
    /// `ms` milliseconds from now at `hz` TSC cycles per second.
    pub fn after_ms(hz: u64, ms: u64) -> Self {
        Self(rdtsc().saturating_add(hz / 1000 * ms), hz)
    }

    pub fn passed(&self) -> bool {
        rdtsc() > self.0
    }

    /// The TSC frequency the deadline was made with.
    pub fn hz(&self) -> u64 {
        self.1
    }

    /// The earlier of two deadlines.
    pub fn min(self, other: Self) -> Self {
        if other.0 < self.0 { other } else { self }
    }
}
