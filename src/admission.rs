//! How many connections a listener serves at once, in all and from one peer address. Without the
//! second limit, one host opening connections and never finishing them (never starting TLS, never
//! ending a command) holds every slot and no one else is served.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Why a connection is turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The listener serves as many connections as it may.
    Full,
    /// This peer address has as many open as one address may.
    PeerFull,
}

pub(crate) struct Admission {
    total: usize,
    per_peer: usize,
    /// Connections open per peer address (addresses with none are removed), and in all.
    open: Mutex<(HashMap<IpAddr, usize>, usize)>,
    /// Bytes one peer address, and all of them together, may have us hold at once (messages
    /// being received); what each address holds now, and all together.
    bytes_per_peer: usize,
    bytes_in_all: usize,
    held: Mutex<(HashMap<IpAddr, usize>, usize)>,
}

/// An admitted connection; its slot, and the bytes it holds, are freed when this drops.
pub(crate) struct Ticket {
    admission: Arc<Admission>,
    peer: IpAddr,
    held: usize,
}

impl Admission {
    pub(crate) fn new(total: usize, per_peer: usize) -> Arc<Admission> {
        Self::holding(total, per_peer, usize::MAX, usize::MAX)
    }

    /// As `new`, with at most `bytes_per_peer` held for one peer address at once, and
    /// `bytes_in_all` for all of them.
    pub(crate) fn holding(total: usize, per_peer: usize, bytes_per_peer: usize, bytes_in_all: usize) -> Arc<Admission> {
        Arc::new(Admission {
            total,
            per_peer: per_peer.max(1),
            open: Mutex::new((HashMap::new(), 0)),
            bytes_per_peer,
            bytes_in_all,
            held: Mutex::new((HashMap::new(), 0)),
        })
    }

    pub(crate) fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Ticket, Refusal> {
        let mut open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (by_peer, all) = &mut *open;
        if *all >= self.total {
            return Err(Refusal::Full);
        }
        let count = by_peer.entry(peer).or_insert(0);
        if *count >= self.per_peer {
            return Err(Refusal::PeerFull);
        }
        *count += 1;
        *all += 1;
        Ok(Ticket { admission: self.clone(), peer, held: 0 })
    }

    /// Connections open now.
    pub(crate) fn open(&self) -> usize {
        self.open.lock().map(|o| o.1).unwrap_or(0)
    }
}

impl Ticket {
    /// Takes `bytes` more of the peer's allowance; false (and nothing taken) when it is spent.
    pub(crate) fn hold(&mut self, bytes: usize) -> bool {
        let mut held = self.admission.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (by_peer, all) = &mut *held;
        if all.saturating_add(bytes) > self.admission.bytes_in_all {
            return false;
        }
        let peer = by_peer.entry(self.peer).or_insert(0);
        if peer.saturating_add(bytes) > self.admission.bytes_per_peer {
            return false;
        }
        *peer += bytes;
        *all += bytes;
        self.held += bytes;
        true
    }

    /// Gives back everything this connection holds.
    pub(crate) fn release(&mut self) {
        if self.held == 0 {
            return;
        }
        let mut held = self.admission.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (by_peer, all) = &mut *held;
        *all = all.saturating_sub(self.held);
        if let Some(peer) = by_peer.get_mut(&self.peer) {
            *peer = peer.saturating_sub(self.held);
            if *peer == 0 {
                by_peer.remove(&self.peer);
            }
        }
        self.held = 0;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.release();
        let mut open = self.admission.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (by_peer, all) = &mut *open;
        *all = all.saturating_sub(1);
        if let Some(count) = by_peer.get_mut(&self.peer) {
            *count -= 1;
            if *count == 0 {
                by_peer.remove(&self.peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_peer_cannot_take_every_slot_and_slots_come_back() {
        let admission = Admission::new(3, 2);
        let (a, b) = (IpAddr::from([192, 0, 2, 1]), IpAddr::from([192, 0, 2, 2]));
        let first = admission.admit(a).unwrap();
        let _second = admission.admit(a).unwrap();
        assert_eq!(admission.admit(a).err(), Some(Refusal::PeerFull));
        let _other = admission.admit(b).unwrap();
        assert_eq!(admission.admit(b).err(), Some(Refusal::Full));
        drop(first);
        assert_eq!(admission.open(), 2);
        assert!(admission.admit(a).is_ok(), "a freed slot is free for the same peer");
    }

    #[test]
    fn one_peers_connections_share_one_allowance_of_bytes() {
        let admission = Admission::holding(10, 10, 100, 250);
        let (a, b) = (IpAddr::from([192, 0, 2, 1]), IpAddr::from([192, 0, 2, 2]));
        let (mut first, mut second) = (admission.admit(a).unwrap(), admission.admit(a).unwrap());
        assert!(first.hold(60));
        assert!(!second.hold(50), "60 + 50 is over the allowance of one address");
        assert!(second.hold(40));
        let mut other = admission.admit(b).unwrap();
        assert!(other.hold(100), "another address has its own");
        assert!(!admission.admit(IpAddr::from([192, 0, 2, 3])).unwrap().hold(51), "but all share 250");
        drop(other);
        first.release();
        assert!(second.hold(60));
        drop(second);
        assert!(first.hold(100), "a closed connection gives back what it held");
    }
}
