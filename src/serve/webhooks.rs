//! Webhook deliveries in the running node: every couple of seconds, those due are sent.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Shared;
use crate::network::webhooks::Sender;

const INTERVAL: Duration = Duration::from_secs(2);

pub(super) fn run(shared: &Shared) {
    let config = &shared.config.webhooks;
    let tls = match crate::smtp::tls::connector(true, config.tls_ca_file.as_deref()) {
        Ok(tls) => tls,
        Err(e) => {
            tracing::error!("webhooks: no TLS client ([webhooks] tls_ca_file?): {e}; none will be sent");
            return;
        }
    };
    let store = loop {
        match crate::store::open(&shared.db, "webhooks").and_then(|s| s.attach_fields(shared.kek.clone()).map(|_| s)) {
            Ok(store) => break store,
            Err(e) => tracing::error!("webhooks: cannot open the store: {e}"),
        }
        std::thread::sleep(INTERVAL * 15);
    };
    while !shared.stopping.load(Ordering::SeqCst) {
        let sender = Sender { store: &*store, resolver: &shared.resolver, tls: &tls, config };
        match sender.send_due(shared.clock.unix_now(), 50) {
            Ok(round) if round.delivered + round.retrying + round.given_up > 0 => tracing::info!(
                delivered = round.delivered,
                retrying = round.retrying,
                given_up = round.given_up,
                "webhooks: deliveries"
            ),
            Ok(_) => {}
            Err(e) => tracing::error!("webhooks: cannot send: {e}"),
        }
        std::thread::sleep(INTERVAL);
    }
}
