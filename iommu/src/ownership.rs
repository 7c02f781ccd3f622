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
    /// Release or attach by someone who does not own the group (Linux
    /// WARNs and returns).
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
            Self::NotOwner => f.write_str("not the owner of the group"),
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

    /// `iommu_device_unuse_default_domain`: that driver was unbound. Linux
    /// WARNs on an unbalanced call; here it is an error.
    pub fn unuse_default_domain(&mut self) -> Result<(), OwnershipError> {
        if self.owner_cnt == 0 || self.owner.is_some() {
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

    /// `iommu_group_release_dma_owner`: back to the default domain.
    pub fn release_dma_owner(&mut self, owner: OwnerToken) -> Result<(), OwnershipError> {
        if self.owner_cnt == 0 || self.owner != Some(owner) {
            return Err(OwnershipError::NotOwner);
        }
        self.owner_cnt = 0;
        self.owner = None;
        self.domain = CurrentDomain::Default;
        Ok(())
    }

    /// `iommu_attach_group` → `__iommu_attach_group`: only over the default
    /// or the blocking domain. On an owned group only the owner may attach.
    pub fn attach_domain(&mut self, tag: u32, by: Option<OwnerToken>) -> Result<(), OwnershipError> {
        if self.owner.is_some() && self.owner != by {
            return Err(OwnershipError::NotOwner);
        }
        if !matches!(self.domain, CurrentDomain::Default | CurrentDomain::Blocking) {
            return Err(OwnershipError::Busy);
        }
        self.domain = CurrentDomain::Attached(tag);
        Ok(())
    }

    /// `iommu_detach_group` → `__iommu_group_set_core_domain`: the blocking
    /// domain when owned, else the default domain.
    pub fn detach_domain(&mut self, by: Option<OwnerToken>) -> Result<(), OwnershipError> {
        if self.owner != by {
            return Err(OwnershipError::NotOwner);
        }
        self.domain = if self.owner.is_some() { CurrentDomain::Blocking } else { CurrentDomain::Default };
        Ok(())
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
        assert_eq!(g.unuse_default_domain(), Err(OwnershipError::NotOwner), "unbalanced unuse");
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
        g.attach_domain(7, None).unwrap();
        assert_eq!(g.claim_dma_owner(VFIO), Err(OwnershipError::Busy));
        g.detach_domain(None).unwrap();
        g.claim_dma_owner(VFIO).unwrap();
    }

    #[test]
    fn use_default_refused_with_a_foreign_domain_and_users() {
        let mut g = GroupOwnership::default();
        g.use_default_domain().unwrap();
        g.attach_domain(7, None).unwrap();
        assert_eq!(g.use_default_domain(), Err(OwnershipError::Busy));
    }

    #[test]
    fn owner_attaches_its_domain_and_release_restores_default() {
        let mut g = GroupOwnership::default();
        g.claim_dma_owner(VFIO).unwrap();
        assert_eq!(g.attach_domain(9, Some(OTHER)), Err(OwnershipError::NotOwner));
        g.attach_domain(9, Some(VFIO)).unwrap();
        assert_eq!(g.domain(), CurrentDomain::Attached(9));
        assert_eq!(g.attach_domain(10, Some(VFIO)), Err(OwnershipError::Busy), "one attached domain at a time");
        g.detach_domain(Some(VFIO)).unwrap();
        assert_eq!(g.domain(), CurrentDomain::Blocking, "detach goes back to blocking while owned");
        assert_eq!(g.release_dma_owner(OTHER), Err(OwnershipError::NotOwner));
        g.release_dma_owner(VFIO).unwrap();
        assert_eq!(g, GroupOwnership::default());
        g.use_default_domain().unwrap();
    }

    /// One step of the model the random walk checks against.
    #[derive(Clone, Copy, Debug)]
    enum Op {
        Use,
        Unuse,
        Claim(OwnerToken),
        Release(OwnerToken),
        Attach(u32, Option<OwnerToken>),
        Detach(Option<OwnerToken>),
    }

    /// The rules, restated from Linux 6.1's iommu.c (plus this crate's
    /// owner tokens on release/attach/detach) as a table over (users,
    /// owner, domain), independent of the implementation above.
    fn model(
        s: (u32, Option<OwnerToken>, CurrentDomain),
        op: Op,
    ) -> Result<(u32, Option<OwnerToken>, CurrentDomain), OwnershipError> {
        use CurrentDomain::*;
        use OwnershipError::*;
        let (cnt, owner, dom) = s;
        let core = |o: Option<OwnerToken>| if o.is_some() { Blocking } else { Default };
        match (op, owner) {
            // iommu_device_use_default_domain: -EBUSY if users exist and the
            // group is owned or off its default domain.
            (Op::Use, Some(_)) => Err(Busy),
            (Op::Use, None) if cnt > 0 && dom != Default => Err(Busy),
            (Op::Use, None) => Ok((cnt + 1, None, dom)),
            (Op::Unuse, None) if cnt > 0 => Ok((cnt - 1, None, dom)),
            (Op::Unuse, _) => Err(NotOwner),
            // iommu_group_claim_dma_owner: -EPERM with any user, -EBUSY off
            // the default domain, else the blocking domain.
            (Op::Claim(_), _) if cnt > 0 => Err(Permission),
            (Op::Claim(_), _) if dom != Default => Err(Busy),
            (Op::Claim(t), _) => Ok((1, Some(t), Blocking)),
            (Op::Release(t), Some(o)) if o == t => Ok((0, None, Default)),
            (Op::Release(_), _) => Err(NotOwner),
            // __iommu_attach_group: only over the default or blocking domain;
            // on an owned group only its owner.
            (Op::Attach(_, by), Some(o)) if by != Some(o) => Err(NotOwner),
            (Op::Attach(_, _), _) if !matches!(dom, Default | Blocking) => Err(Busy),
            (Op::Attach(tag, _), _) => Ok((cnt, owner, Attached(tag))),
            // __iommu_group_set_core_domain, by whoever holds the group.
            (Op::Detach(by), _) if by != owner => Err(NotOwner),
            (Op::Detach(_), _) => Ok((cnt, owner, core(owner))),
        }
    }

    /// A random walk over every operation, with random callers: each
    /// outcome (error kind and resulting state) equals the model's, and the
    /// invariant holds after every step.
    #[test]
    fn randomized_sequence_matches_the_model() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let token = |n: u64| match n % 3 {
            0 => None,
            1 => Some(VFIO),
            _ => Some(OTHER),
        };
        let mut seen = [0u32; 6];
        for _ in 0..200 {
            let mut g = GroupOwnership::default();
            for _ in 0..200 {
                let before = g;
                let who = if next() % 2 == 0 { VFIO } else { OTHER };
                let op = match next() % 6 {
                    0 => Op::Use,
                    1 => Op::Unuse,
                    2 => Op::Claim(who),
                    3 => Op::Release(who),
                    4 => Op::Attach((next() % 4) as u32, token(next())),
                    _ => Op::Detach(token(next())),
                };
                let r = match op {
                    Op::Use => g.use_default_domain(),
                    Op::Unuse => g.unuse_default_domain(),
                    Op::Claim(t) => g.claim_dma_owner(t),
                    Op::Release(t) => g.release_dma_owner(t),
                    Op::Attach(tag, by) => g.attach_domain(tag, by),
                    Op::Detach(by) => g.detach_domain(by),
                };
                let want = model((before.owner_cnt, before.owner, before.domain), op);
                assert_eq!(r.map(|_| (g.owner_cnt, g.owner, g.domain)), want, "{op:?} on {before:?}");
                if r.is_err() {
                    assert_eq!(g, before, "a failed operation changes nothing");
                }
                assert!(g.check(), "invariant broken: {before:?} -> {g:?}");
                if r.is_ok() {
                    seen[match op {
                        Op::Use => 0,
                        Op::Unuse => 1,
                        Op::Claim(_) => 2,
                        Op::Release(_) => 3,
                        Op::Attach(..) => 4,
                        Op::Detach(_) => 5,
                    }] += 1;
                }
            }
        }
        assert!(seen.iter().all(|&n| n > 0), "every operation succeeded at least once: {seen:?}");
    }
}
