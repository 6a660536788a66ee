//! Packet identifier allocation.

use crate::codec::PacketId;

/// Hands out packet identifiers in turn, 1 to 65,535 and round again, skipping those in use.
///
/// Going round rather than reusing the lowest free identifier keeps a late acknowledgement of
/// an old operation from matching a new one for as long as possible.
#[derive(Debug, Clone)]
pub(super) struct PacketIds {
    next: u16,
}

impl PacketIds {
    pub(super) fn new() -> Self {
        Self { next: 1 }
    }

    /// The next identifier for which `in_use` is false, or `None` if every one is in use.
    pub(super) fn allocate(&mut self, in_use: impl Fn(PacketId) -> bool) -> Option<PacketId> {
        for _ in 0..u16::MAX {
            let id = PacketId::new(self.next).unwrap_or(PacketId::MIN);
            self.next = self.next.checked_add(1).unwrap_or(1);
            if !in_use(id) {
                return Some(id);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goes_round_and_skips_ids_in_use() {
        let mut ids = PacketIds::new();
        assert_eq!(ids.allocate(|_| false).map(PacketId::get), Some(1));
        ids.next = u16::MAX;
        let busy = |id: PacketId| matches!(id.get(), 1 | 2);
        assert_eq!(ids.allocate(busy).map(PacketId::get), Some(u16::MAX));
        assert_eq!(ids.allocate(busy).map(PacketId::get), Some(3));
        assert_eq!(ids.allocate(|_| true), None);
    }
}
