//! The fetch side's events for the client hook
//! ([`Hook::on_fetch`](kafkit_conn::Hook::on_fetch)).

use kafkit_conn::hooks::FetchEvent;
use kafkit_conn::{Broker, Cluster};

use super::Driver;
use crate::fetcher::answer::Planned;
use crate::fetcher::state::{FetchState, State};

impl Driver {
    /// Tells the hook, if any, of a partition's records taken in.
    pub(super) fn report_fetch(
        &self,
        st: &State,
        snapshot: &Cluster,
        broker: i32,
        planned: &Planned,
        bytes: usize,
    ) {
        let Some(hook) = self.transport.hooks().get() else {
            return;
        };
        let tp = &planned.tp;
        let Some(part) = st.parts.get(tp) else { return };
        let FetchState::At(next_offset) = part.fetch else {
            return;
        };
        let addr = snapshot.brokers().get(&broker).map(Broker::addr);
        hook.on_fetch(&FetchEvent {
            broker: addr.as_deref().unwrap_or_default(),
            topic: &tp.topic,
            partition: tp.partition,
            records: usize::try_from(next_offset - planned.offset).unwrap_or(0),
            bytes,
            high_watermark: part.high_watermark,
            next_offset,
            client_id: self.transport.client_id(),
        });
    }
}
