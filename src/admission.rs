//! How many connections a listener serves at once, in all and from one peer address. Without the
//! second limit, one host opening connections and never finishing them (never starting TLS, never
//! ending a command) holds every slot and no one else is served.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Why a connection is turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The listener serves as many connections as it may.
    Full,
    /// This peer address has as many open as one address may.
    PeerFull,
}

pub struct Admission {
    total: usize,
    per_peer: usize,
    /// Connections open per peer address (addresses with none are removed), and in all.
    open: Mutex<(HashMap<IpAddr, usize>, usize)>,
}

/// An admitted connection; its slot is freed when this drops.
pub struct Ticket {
    admission: Arc<Admission>,
    peer: IpAddr,
}

impl Admission {
    pub fn new(total: usize, per_peer: usize) -> Arc<Admission> {
        Arc::new(Admission { total, per_peer: per_peer.max(1), open: Mutex::new((HashMap::new(), 0)) })
    }

    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Ticket, Refusal> {
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
        Ok(Ticket { admission: self.clone(), peer })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.lock().map(|o| o.1).unwrap_or(0)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
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
}
