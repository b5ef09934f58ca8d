//! Which transaction protocol a transaction speaks (KIP-890 part 2), and
//! what the end of a transaction leaves for the next one. Pure: the async
//! code in `coordinator.rs`, `api.rs` and the sender only performs these
//! decisions.
//!
//! The broker advertises the finalized feature `transaction.version` in
//! ApiVersions (levels 0, 1, 2). From level 2 a transaction is "v2":
//!
//! - a Produce at v12+ adds its partition to the transaction implicitly
//!   (no AddPartitionsToTxn), and a TxnOffsetCommit at v5+ adds the group
//!   (no AddOffsetsToTxn);
//! - EndTxn at v5+ makes the coordinator bump the producer epoch on every
//!   commit and abort and answer with the new producer id and epoch, which
//!   the next transaction uses (its sequences restart at 0); an abort
//!   therefore needs no client-side epoch bump (InitProducerId) after a
//!   lost sequence.
//!
//! Below level 2 (or from a broker that names no level) a transaction is
//! "v1", today's flow: Produce is capped at v11, EndTxn and TxnOffsetCommit
//! at v4. A transaction keeps the version it started with; the level is
//! looked at again when it ends (as the Java client does), and a move from
//! v1 to v2 bumps the epoch first, so that nothing the coordinator holds
//! from the old protocol is taken for part of a v2 transaction.

use kafkit_protocol::ErrorCode;

use crate::identity::ProducerId;

/// The name of the feature, as Kafka spells it.
pub(crate) const FEATURE: &str = "transaction.version";

/// Produce, EndTxn and TxnOffsetCommit versions from which the v2 protocol
/// applies.
const PRODUCE_V2: i16 = 12;
const END_TXN_V2: i16 = 5;
const TXN_OFFSET_COMMIT_V2: i16 = 5;

/// The transaction protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxnVersion {
    /// Explicit AddPartitionsToTxn and AddOffsetsToTxn (KIP-98).
    V1,
    /// Implicit adds and an epoch bump on every EndTxn (KIP-890).
    V2,
}

impl TxnVersion {
    /// The version a broker's `transaction.version` level allows.
    pub(crate) fn from_level(level: Option<i16>) -> TxnVersion {
        match level {
            Some(l) if l >= 2 => TxnVersion::V2,
            _ => TxnVersion::V1,
        }
    }

    /// Whether partitions and groups join the transaction by themselves
    /// (no AddPartitionsToTxn, no AddOffsetsToTxn).
    pub(crate) fn implicit_add(self) -> bool {
        self == TxnVersion::V2
    }

    /// The Produce version to send, `negotiated` being the highest both
    /// sides speak.
    pub(crate) fn produce(self, negotiated: i16) -> Result<i16, ErrorCode> {
        self.pick(negotiated, PRODUCE_V2)
    }

    /// The EndTxn version to send.
    pub(crate) fn end_txn(self, negotiated: i16) -> Result<i16, ErrorCode> {
        self.pick(negotiated, END_TXN_V2)
    }

    /// The TxnOffsetCommit version to send.
    pub(crate) fn txn_offset_commit(self, negotiated: i16) -> Result<i16, ErrorCode> {
        self.pick(negotiated, TXN_OFFSET_COMMIT_V2)
    }

    /// v1 stays below `v2`; v2 needs at least `v2` (a broker that enables
    /// the feature but not the version is inconsistent: a v1 request would
    /// not add the partition, so it is refused as unsupported).
    fn pick(self, negotiated: i16, v2: i16) -> Result<i16, ErrorCode> {
        match self {
            TxnVersion::V1 => Ok(negotiated.min(v2 - 1)),
            TxnVersion::V2 if negotiated >= v2 => Ok(negotiated),
            TxnVersion::V2 => Err(ErrorCode::UNSUPPORTED_VERSION),
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            TxnVersion::V1 => "1",
            TxnVersion::V2 => "2",
        }
    }
}

/// What a successful EndTxn leaves for the next transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AfterEnd {
    /// The producer id and epoch the next transaction writes with.
    pub(crate) producer: ProducerId,
    /// The protocol of the next transaction.
    pub(crate) version: TxnVersion,
    /// An epoch bump (InitProducerId with `producer`) is still needed
    /// before the next transaction.
    pub(crate) bump_required: bool,
}

/// The state after EndTxn succeeded. `used` is the ended transaction's
/// protocol, `current` its producer, `answered` the producer id and epoch
/// the EndTxn answer named (v5+; `None` before), `level` the coordinator's
/// `transaction.version` as last seen, `bump_required` whether the ended
/// transaction lost a sequence (KIP-360).
pub(crate) fn after_end(
    used: TxnVersion,
    current: ProducerId,
    answered: Option<ProducerId>,
    level: Option<i16>,
    bump_required: bool,
) -> AfterEnd {
    let (producer, bumped) = match (used, answered) {
        // The coordinator bumped the epoch (or, its epochs exhausted,
        // handed out a new id with epoch 0): adopt it.
        (TxnVersion::V2, Some(p)) if p.id >= 0 && p.epoch >= 0 => (p, true),
        _ => (current, false),
    };
    let version = TxnVersion::from_level(level);
    // v1 -> v2 needs a fresh epoch (the Java client's rule); v2 -> v1
    // does not. A lost sequence needs one unless the coordinator just
    // gave one.
    let upgrade = used == TxnVersion::V1 && version == TxnVersion::V2;
    AfterEnd {
        producer,
        version,
        bump_required: upgrade || (bump_required && !bumped),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: ProducerId = ProducerId { id: 7, epoch: 3 };

    #[test]
    fn level_two_or_more_is_v2() {
        assert_eq!(TxnVersion::from_level(None), TxnVersion::V1);
        for (level, v) in [
            (0, TxnVersion::V1),
            (1, TxnVersion::V1),
            (2, TxnVersion::V2),
        ] {
            assert_eq!(TxnVersion::from_level(Some(level)), v);
        }
        assert_eq!(TxnVersion::from_level(Some(3)), TxnVersion::V2);
        assert!(TxnVersion::V2.implicit_add() && !TxnVersion::V1.implicit_add());
    }

    #[test]
    fn v1_caps_below_the_v2_versions() {
        let v1 = TxnVersion::V1;
        assert_eq!(v1.produce(13), Ok(11));
        assert_eq!(v1.produce(9), Ok(9));
        assert_eq!(v1.end_txn(5), Ok(4));
        assert_eq!(v1.txn_offset_commit(5), Ok(4));
        assert_eq!(v1.txn_offset_commit(3), Ok(3));
    }

    #[test]
    fn v2_needs_the_v2_versions() {
        let v2 = TxnVersion::V2;
        assert_eq!(v2.produce(13), Ok(13));
        assert_eq!(v2.produce(12), Ok(12));
        assert_eq!(v2.produce(11), Err(ErrorCode::UNSUPPORTED_VERSION));
        assert_eq!(v2.end_txn(5), Ok(5));
        assert_eq!(v2.end_txn(4), Err(ErrorCode::UNSUPPORTED_VERSION));
        assert_eq!(v2.txn_offset_commit(5), Ok(5));
        assert_eq!(v2.txn_offset_commit(4), Err(ErrorCode::UNSUPPORTED_VERSION));
    }

    #[test]
    fn v2_adopts_the_epoch_endtxn_answers() {
        let bumped = ProducerId { id: 7, epoch: 4 };
        let next = after_end(TxnVersion::V2, P, Some(bumped), Some(2), false);
        assert_eq!(
            next,
            AfterEnd {
                producer: bumped,
                version: TxnVersion::V2,
                bump_required: false
            }
        );
        // Epochs exhausted: a new id, epoch 0.
        let fresh = ProducerId { id: 8, epoch: 0 };
        assert_eq!(
            after_end(TxnVersion::V2, P, Some(fresh), Some(2), false).producer,
            fresh
        );
        // A lost sequence needs nothing more: the coordinator bumped.
        assert!(!after_end(TxnVersion::V2, P, Some(bumped), Some(2), true).bump_required);
        // An answer without a producer (id -1) changes nothing.
        let none = after_end(TxnVersion::V2, P, Some(ProducerId::NONE), Some(2), true);
        assert_eq!(none.producer, P);
        assert!(none.bump_required);
    }

    #[test]
    fn v1_keeps_its_epoch_unless_a_sequence_was_lost() {
        // Even an answer naming another epoch is ignored under v1.
        let other = ProducerId { id: 7, epoch: 9 };
        let next = after_end(TxnVersion::V1, P, Some(other), Some(1), false);
        assert_eq!(
            next,
            AfterEnd {
                producer: P,
                version: TxnVersion::V1,
                bump_required: false
            }
        );
        assert!(after_end(TxnVersion::V1, P, None, Some(1), true).bump_required);
    }

    #[test]
    fn moving_from_v1_to_v2_bumps_the_epoch_first() {
        let up = after_end(TxnVersion::V1, P, None, Some(2), false);
        assert_eq!((up.version, up.bump_required), (TxnVersion::V2, true));
        let bumped = ProducerId { id: 7, epoch: 4 };
        let down = after_end(TxnVersion::V2, P, Some(bumped), Some(1), false);
        assert_eq!(
            (down.producer, down.version, down.bump_required),
            (bumped, TxnVersion::V1, false)
        );
    }
}
