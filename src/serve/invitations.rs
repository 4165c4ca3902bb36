//! The invitations' clockwork in the running node: every few seconds, the reminders and
//! expiries that fell due, then the notices waiting to be sent (first tries and retries).

use std::time::Duration;

use super::Shared;
use crate::network::invitations::{Invitations, Scheduled};
use crate::network::notices::{self, Notifier};
use crate::store::NodeStore;

/// How often the schedule and the notices are looked at: the wait between an invitation sent
/// with the CLI or the API and its notice leaving.
const INTERVAL: Duration = Duration::from_secs(2);

pub(super) fn run(shared: &Shared, channels: &dyn Notifier) {
    let store = loop {
        match open(shared) {
            Ok(store) => break store,
            Err(e) => tracing::error!("invitations: cannot open the store: {e}"),
        }
        std::thread::sleep(INTERVAL * 15);
    };
    let accept_url = shared.config.accept_url();
    let retry = notices::Retry::of(&shared.config.invitations);
    loop {
        let now = shared.clock.unix_now();
        let invitations = Invitations { store: &*store, config: &shared.config.invitations, now };
        match invitations.run_schedule(500) {
            Ok(done) if done != Scheduled::default() => {
                tracing::info!(reminded = done.reminded, expired = done.expired, "invitations: schedule ran");
            }
            Ok(_) => {}
            Err(e) => tracing::error!("invitations: the schedule failed: {e}"),
        }
        match notices::send_due(&*store, channels, &accept_url, retry, now, 50) {
            Ok(sent) if sent != notices::Sent::default() => {
                tracing::info!(
                    sent = sent.sent,
                    retrying = sent.retrying,
                    failed = sent.failed,
                    "invitations: notices"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::error!("invitations: cannot send notices: {e}"),
        }
        std::thread::sleep(INTERVAL);
    }
}

fn open(shared: &Shared) -> crate::store::Result<Box<dyn NodeStore>> {
    let store = crate::store::open(&shared.db, "invitations")?;
    store.attach_fields(shared.kek.clone())?;
    Ok(store)
}
