//! DMA ownership of an IOMMU group, as Linux 5.19 merged it and 6.1 keeps
//! it (drivers/iommu/iommu.c: `iommu_device_use_default_domain`,
//! `iommu_device_unuse_default_domain`, `iommu_group_claim_dma_owner`,
//! `iommu_group_release_dma_owner`, `__iommu_attach_group`,
//! `__iommu_group_set_core_domain`).
//!
//! A group is used either by kernel drivers that do DMA through the DMA API
//! on the group's default domain (`owner_cnt` counts them, `owner` is
//! empty), or by exactly one user owner (`owner` set, `owner_cnt` = 1), which
//! first gets the blocking domain (no DMA at all) and may then attach a
//! domain of its own. Never both: the invariant [`GroupOwnership::check`]
//! states it.
//!
//! Not modelled: 6.1's `pasid_array` checks in use/unuse (this kernel
//! attaches no PASID domain, so the array is always empty) and the
//! identity-domain case of `iommu_is_default_domain`.

use core::fmt;

/// Who claimed a group (Linux passes an opaque `void *owner`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OwnerToken(pub u32);

/// The domain the group's devices currently translate through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CurrentDomain {
    /// The group's default domain (kernel DMA API).
    Default,
    /// The blocking domain: every DMA of the group faults.
    Blocking,
    /// A domain attached with `iommu_attach_group` (an owner's, or a
    /// kernel user's unmanaged domain); the tag names it.
    Attached(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnershipError {
    /// Linux -EBUSY: a user owner holds the group or a foreign domain is
    /// attached.
    Busy,
    /// Linux -EPERM: kernel DMA users are bound, or the group is already
    /// claimed (by anyone, the same owner included).
    Permission,
    /// A call Linux answers with a `WARN` and no change: release of a
    /// group that has no owner, unuse with no user.
    NotOwner,
}

impl OwnershipError {
    /// The Linux error name, for reports.
    pub const fn errno(self) -> &'static str {
        match self {
            Self::Busy => "EBUSY",
            Self::Permission => "EPERM",
            Self::NotOwner => "EINVAL",
        }
    }
}

impl fmt::Display for OwnershipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Busy => f.write_str("busy (EBUSY): the group has a user owner or a foreign domain"),
            Self::Permission => f.write_str("permission denied (EPERM): the group has kernel DMA users or an owner"),
            Self::NotOwner => f.write_str("unbalanced call (Linux WARNs): no owner to release or no user to drop"),
        }
    }
}

/// The ownership state of one group (`struct iommu_group` fields
/// `owner_cnt`, `owner`, `domain`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupOwnership {
    owner_cnt: u32,
    owner: Option<OwnerToken>,
    domain: CurrentDomain,
}

impl Default for GroupOwnership {
    fn default() -> Self {
        Self { owner_cnt: 0, owner: None, domain: CurrentDomain::Default }
    }
}

impl GroupOwnership {
    pub fn owner(&self) -> Option<OwnerToken> {
        self.owner
    }

    /// Kernel DMA users (when not owned), or 1 (when owned).
    pub fn owner_cnt(&self) -> u32 {
        self.owner_cnt
    }

    pub fn domain(&self) -> CurrentDomain {
        self.domain
    }

    /// Linux `iommu_group_dma_owner_claimed`: any user at all. VFIO calls a
    /// group viable when this is false.
    pub fn dma_owner_claimed(&self) -> bool {
        self.owner_cnt != 0
    }

    /// Linux `iommu_is_default_domain` (without the identity-domain case,
    /// which VT-d's default DMA domains never are here).
    fn is_default_domain(&self) -> bool {
        self.domain == CurrentDomain::Default
    }

    /// `iommu_device_use_default_domain`: a driver that uses the kernel DMA
    /// API is being bound to a device of the group.
    pub fn use_default_domain(&mut self) -> Result<(), OwnershipError> {
        if self.owner_cnt != 0 && (self.owner.is_some() || !self.is_default_domain()) {
            return Err(OwnershipError::Busy);
        }
        self.owner_cnt += 1;
        Ok(())
    }

    /// `iommu_device_unuse_default_domain`: that driver was unbound. As in
    /// Linux it only decrements, whoever holds the group; with no user it
    /// changes nothing and returns the error Linux turns into a `WARN`.
    /// The driver core (`DriverModel::unbind`) calls it only after a `use`
    /// that succeeded, so it never meets an owned group.
    pub fn unuse_default_domain(&mut self) -> Result<(), OwnershipError> {
        if self.owner_cnt == 0 {
            return Err(OwnershipError::NotOwner);
        }
        self.owner_cnt -= 1;
        Ok(())
    }

    /// `iommu_group_claim_dma_owner`: a user owner takes the whole group;
    /// the blocking domain is attached.
    pub fn claim_dma_owner(&mut self, owner: OwnerToken) -> Result<(), OwnershipError> {
        if self.owner_cnt != 0 {
            return Err(OwnershipError::Permission);
        }
        if !self.is_default_domain() {
            return Err(OwnershipError::Busy);
        }
        self.domain = CurrentDomain::Blocking;
        self.owner = Some(owner);
        self.owner_cnt = 1;
        Ok(())
    }

    /// `iommu_group_release_dma_owner`: back to the default domain,
    /// whatever domain the owner left attached. Like Linux it takes no
    /// owner (the caller is trusted to be the one that claimed); a group
    /// with no owner is the `WARN` case and is left as it is.
    pub fn release_dma_owner(&mut self) -> Result<(), OwnershipError> {
        if self.owner_cnt == 0 || self.owner.is_none() {
            return Err(OwnershipError::NotOwner);
        }
        self.owner_cnt = 0;
        self.owner = None;
        self.domain = CurrentDomain::Default;
        Ok(())
    }

    /// `iommu_attach_group` → `__iommu_attach_group`: only over the default
    /// or the blocking domain (Linux checks nothing else: the owner is
    /// whoever holds the group's fd).
    pub fn attach_domain(&mut self, tag: u32) -> Result<(), OwnershipError> {
        if !matches!(self.domain, CurrentDomain::Default | CurrentDomain::Blocking) {
            return Err(OwnershipError::Busy);
        }
        self.domain = CurrentDomain::Attached(tag);
        Ok(())
    }

    /// `iommu_detach_group` → `__iommu_group_set_core_domain`: the blocking
    /// domain when owned, else the default domain. Cannot fail.
    pub fn detach_domain(&mut self) {
        self.domain = if self.owner.is_some() { CurrentDomain::Blocking } else { CurrentDomain::Default };
    }

    /// The invariant: kernel DMA users and a user owner never at once; an
    /// owner is exactly one user; an owned group never translates through
    /// the default domain.
    pub fn check(&self) -> bool {
        match self.owner {
            Some(_) => self.owner_cnt == 1 && self.domain != CurrentDomain::Default,
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VFIO: OwnerToken = OwnerToken(1);
    const OTHER: OwnerToken = OwnerToken(2);

    #[test]
    fn kernel_users_count_up_and_down() {
        let mut g = GroupOwnership::default();
        g.use_default_domain().unwrap();
        g.use_default_domain().unwrap();
        assert_eq!(g.owner_cnt(), 2);
        assert!(g.dma_owner_claimed());
        g.unuse_default_domain().unwrap();
        g.unuse_default_domain().unwrap();
        assert_eq!(g.unuse_default_domain(), Err(OwnershipError::NotOwner), "unbalanced unuse: Linux WARNs");
        assert_eq!(g, GroupOwnership::default(), "and changes nothing");
        assert!(!g.dma_owner_claimed());
    }

    #[test]
    fn claim_refused_while_a_kernel_user_is_bound() {
        let mut g = GroupOwnership::default();
        g.use_default_domain().unwrap();
        assert_eq!(g.claim_dma_owner(VFIO), Err(OwnershipError::Permission));
        assert_eq!(g.domain(), CurrentDomain::Default, "nothing changed");
        assert_eq!(g.owner(), None);
        assert_eq!(g.owner_cnt(), 1);
    }

    #[test]
    fn claim_attaches_blocking_and_refuses_kernel_users() {
        let mut g = GroupOwnership::default();
        g.claim_dma_owner(VFIO).unwrap();
        assert_eq!(g.domain(), CurrentDomain::Blocking);
        assert_eq!(g.use_default_domain(), Err(OwnershipError::Busy), "bind of a DMA-API driver while owned");
        assert_eq!(g.owner_cnt(), 1);
    }

    #[test]
    fn no_reclaim_even_by_the_same_owner() {
        let mut g = GroupOwnership::default();
        g.claim_dma_owner(VFIO).unwrap();
        assert_eq!(g.claim_dma_owner(VFIO), Err(OwnershipError::Permission));
        assert_eq!(g.claim_dma_owner(OTHER), Err(OwnershipError::Permission));
    }

    #[test]
    fn claim_refused_with_a_foreign_domain_attached() {
        let mut g = GroupOwnership::default();
        g.attach_domain(7).unwrap();
        assert_eq!(g.claim_dma_owner(VFIO), Err(OwnershipError::Busy));
        g.detach_domain();
        g.claim_dma_owner(VFIO).unwrap();
    }

    #[test]
    fn use_default_refused_with_a_foreign_domain_and_users() {
        let mut g = GroupOwnership::default();
        g.use_default_domain().unwrap();
        g.attach_domain(7).unwrap();
        assert_eq!(g.use_default_domain(), Err(OwnershipError::Busy));
    }

    #[test]
    fn owner_attaches_its_domain_and_release_restores_default() {
        let mut g = GroupOwnership::default();
        g.claim_dma_owner(VFIO).unwrap();
        g.attach_domain(9).unwrap();
        assert_eq!(g.domain(), CurrentDomain::Attached(9));
        assert_eq!(g.attach_domain(10), Err(OwnershipError::Busy), "one attached domain at a time");
        g.detach_domain();
        assert_eq!(g.domain(), CurrentDomain::Blocking, "detach goes back to blocking while owned");
        g.release_dma_owner().unwrap();
        assert_eq!(g, GroupOwnership::default());
        assert_eq!(g.release_dma_owner(), Err(OwnershipError::NotOwner), "release of an unowned group: WARN");
        g.use_default_domain().unwrap();
    }

    /// Linux 6.1's release puts the default domain back whatever the owner
    /// left attached (`__iommu_group_set_domain(group, default_domain)`).
    #[test]
    fn release_with_the_owner_s_domain_still_attached() {
        let mut g = GroupOwnership::default();
        g.claim_dma_owner(VFIO).unwrap();
        g.attach_domain(9).unwrap();
        g.release_dma_owner().unwrap();
        assert_eq!(g.domain(), CurrentDomain::Default);
        assert_eq!(g, GroupOwnership::default());
    }

    /// An `unuse` on an owned group with no kernel user is a driver-core
    /// bug; Linux decrements anyway (it only WARNs at zero), leaving an
    /// owner with no count. Kept as Linux does; `DriverModel` never makes
    /// that call.
    #[test]
    fn unuse_on_an_owned_group_is_linux_s_misuse() {
        let mut g = GroupOwnership::default();
        g.claim_dma_owner(VFIO).unwrap();
        g.unuse_default_domain().unwrap();
        assert_eq!((g.owner_cnt(), g.owner()), (0, Some(VFIO)));
        assert!(!g.check(), "the invariant no longer holds, as in Linux");
        assert_eq!(g.release_dma_owner(), Err(OwnershipError::NotOwner), "and release WARNs");
    }

    /// Linux 6.1's `struct iommu_group` ownership fields and the functions
    /// of drivers/iommu/iommu.c that touch them, transcribed one Rust
    /// function per C function (same names, same checks in the same order,
    /// C return conventions: 0 or a negative errno, `WARN` as a flag). The
    /// random walk below checks the implementation against this, so it
    /// tests fidelity to Linux, not agreement with itself.
    mod linux {
        use super::OwnerToken;

        pub const EPERM: i32 = -1;
        pub const EBUSY: i32 = -16;
        /// Not an errno: the function hit a `WARN_ON` and returned.
        pub const WARN: i32 = i32::MIN;

        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Domain {
            Default,
            Blocking,
            /// An `IOMMU_DOMAIN_UNMANAGED` domain from `iommu_attach_group`.
            Unmanaged(u32),
        }

        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct IommuGroup {
            pub owner_cnt: u32,
            pub owner: Option<OwnerToken>,
            pub domain: Domain,
        }

        impl Default for IommuGroup {
            fn default() -> Self {
                Self { owner_cnt: 0, owner: None, domain: Domain::Default }
            }
        }

        fn iommu_is_default_domain(group: &IommuGroup) -> bool {
            group.domain == Domain::Default
        }

        fn __iommu_group_set_domain(group: &mut IommuGroup, new_domain: Domain) {
            group.domain = new_domain;
        }

        fn __iommu_group_set_core_domain(group: &mut IommuGroup) {
            let new_domain = if group.owner.is_some() { Domain::Blocking } else { Domain::Default };
            __iommu_group_set_domain(group, new_domain);
        }

        pub fn iommu_device_use_default_domain(group: &mut IommuGroup) -> i32 {
            if group.owner_cnt != 0 && (group.owner.is_some() || !iommu_is_default_domain(group)) {
                return EBUSY;
            }
            group.owner_cnt += 1;
            0
        }

        pub fn iommu_device_unuse_default_domain(group: &mut IommuGroup) -> i32 {
            // if (!WARN_ON(!group->owner_cnt)) group->owner_cnt--;
            if group.owner_cnt == 0 {
                return WARN;
            }
            group.owner_cnt -= 1;
            0
        }

        pub fn iommu_group_claim_dma_owner(group: &mut IommuGroup, owner: OwnerToken) -> i32 {
            if group.owner_cnt != 0 {
                return EPERM;
            }
            if group.domain != Domain::Default {
                return EBUSY;
            }
            __iommu_group_set_domain(group, Domain::Blocking);
            group.owner = Some(owner);
            group.owner_cnt += 1;
            0
        }

        pub fn iommu_group_release_dma_owner(group: &mut IommuGroup) -> i32 {
            if group.owner_cnt == 0 || group.owner.is_none() {
                return WARN;
            }
            group.owner_cnt = 0;
            group.owner = None;
            __iommu_group_set_domain(group, Domain::Default);
            0
        }

        /// `iommu_attach_group` → `__iommu_attach_group`.
        pub fn iommu_attach_group(group: &mut IommuGroup, domain: u32) -> i32 {
            if group.domain != Domain::Default && group.domain != Domain::Blocking {
                return EBUSY;
            }
            __iommu_group_set_domain(group, Domain::Unmanaged(domain));
            0
        }

        pub fn iommu_detach_group(group: &mut IommuGroup) {
            __iommu_group_set_core_domain(group);
        }
    }

    /// One step of the walk: a Linux function and its arguments (only
    /// claim names an owner; release, attach and detach take none).
    #[derive(Clone, Copy, Debug)]
    enum Op {
        Use,
        Unuse,
        Claim(OwnerToken),
        Release,
        Attach(u32),
        Detach,
    }

    fn to_linux(g: &GroupOwnership) -> linux::IommuGroup {
        linux::IommuGroup {
            owner_cnt: g.owner_cnt,
            owner: g.owner,
            domain: match g.domain {
                CurrentDomain::Default => linux::Domain::Default,
                CurrentDomain::Blocking => linux::Domain::Blocking,
                CurrentDomain::Attached(t) => linux::Domain::Unmanaged(t),
            },
        }
    }

    fn errno_of(r: Result<(), OwnershipError>) -> i32 {
        match r {
            Ok(()) => 0,
            Err(OwnershipError::Busy) => linux::EBUSY,
            Err(OwnershipError::Permission) => linux::EPERM,
            Err(OwnershipError::NotOwner) => linux::WARN,
        }
    }

    /// A random walk over the six functions with random callers: each
    /// outcome (errno or WARN, and the resulting group) equals Linux's.
    /// `unuse` is called as the driver core calls it: after a `use` that
    /// succeeded (driver unbind), or with no user at all (the WARN case);
    /// never on an owned group with no kernel user (see
    /// `unuse_on_an_owned_group_is_linux_s_misuse`).
    #[test]
    fn randomized_sequence_matches_linux() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut seen = [0u32; 6];
        let mut warned = 0;
        for _ in 0..200 {
            let mut g = GroupOwnership::default();
            let mut l = linux::IommuGroup::default();
            let mut bound_users = 0u32;
            for _ in 0..200 {
                let before = g;
                let who = if next() % 2 == 0 { VFIO } else { OTHER };
                let op = match next() % 6 {
                    0 => Op::Use,
                    1 if bound_users > 0 || g.owner_cnt == 0 => Op::Unuse,
                    1 => continue,
                    2 => Op::Claim(who),
                    3 => Op::Release,
                    4 => Op::Attach((next() % 4) as u32),
                    _ => Op::Detach,
                };
                let (r, want) = match op {
                    Op::Use => (g.use_default_domain(), linux::iommu_device_use_default_domain(&mut l)),
                    Op::Unuse => (g.unuse_default_domain(), linux::iommu_device_unuse_default_domain(&mut l)),
                    Op::Claim(t) => (g.claim_dma_owner(t), linux::iommu_group_claim_dma_owner(&mut l, t)),
                    Op::Release => (g.release_dma_owner(), linux::iommu_group_release_dma_owner(&mut l)),
                    Op::Attach(tag) => (g.attach_domain(tag), linux::iommu_attach_group(&mut l, tag)),
                    Op::Detach => {
                        linux::iommu_detach_group(&mut l);
                        g.detach_domain();
                        (Ok(()), 0)
                    }
                };
                assert_eq!((errno_of(r), to_linux(&g)), (want, l), "{op:?} on {before:?}");
                if r.is_err() {
                    assert_eq!(g, before, "a failed operation changes nothing");
                }
                assert!(g.check(), "invariant broken: {before:?} -> {g:?}");
                match (op, r) {
                    (Op::Use, Ok(())) => bound_users += 1,
                    (Op::Unuse, Ok(())) => bound_users -= 1,
                    _ => {}
                }
                warned += u32::from(want == linux::WARN);
                if r.is_ok() {
                    seen[match op {
                        Op::Use => 0,
                        Op::Unuse => 1,
                        Op::Claim(_) => 2,
                        Op::Release => 3,
                        Op::Attach(_) => 4,
                        Op::Detach => 5,
                    }] += 1;
                }
            }
        }
        assert!(seen.iter().all(|&n| n > 0), "every operation succeeded at least once: {seen:?}");
        assert!(warned > 0, "the WARN paths were taken");
    }
}
