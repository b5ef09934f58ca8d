//! Control records: the transaction markers (KIP-98) that a transaction
//! coordinator writes into each partition when a transaction ends.
//!
//! A control record lives in a batch with the control flag set. Its key is
//! `version int16 | type int16` (0 abort, 1 commit); for those two types its
//! value is an `EndTxnMarker`: `version int16 | coordinatorEpoch int32`.

use bytes::{BufMut, Bytes, BytesMut};

use super::builder::RecordBatchBuilder;
use super::cursor::Cursor;
use super::record::Record;
use crate::error::{DecodeError, EncodeError};

/// What a control record marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlRecordType {
    /// The producer's transaction was aborted (type 0).
    Abort,
    /// The producer's transaction was committed (type 1).
    Commit,
    /// A type this crate does not know; the record's value is kept as is.
    Unknown(i16),
}

impl ControlRecordType {
    /// The type for a wire id.
    #[inline]
    pub fn from_id(id: i16) -> Self {
        match id {
            0 => ControlRecordType::Abort,
            1 => ControlRecordType::Commit,
            other => ControlRecordType::Unknown(other),
        }
    }

    /// The wire id.
    #[inline]
    pub fn id(self) -> i16 {
        match self {
            ControlRecordType::Abort => 0,
            ControlRecordType::Commit => 1,
            ControlRecordType::Unknown(id) => id,
        }
    }
}

/// The value of a commit or abort marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EndTxnMarker {
    /// The value's schema version (0 today).
    pub version: i16,
    /// The epoch of the transaction coordinator that wrote the marker.
    pub coordinator_epoch: i32,
}

/// A parsed control record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlRecord {
    /// The key's schema version (0 today).
    pub version: i16,
    /// Commit, abort or unknown.
    pub kind: ControlRecordType,
    /// The marker, for commit and abort records.
    pub marker: Option<EndTxnMarker>,
    /// The raw value, kept for unknown types (and for commit and abort too).
    pub value: Option<Bytes>,
}

impl ControlRecord {
    /// A commit marker written by coordinator epoch `coordinator_epoch`.
    pub fn commit(coordinator_epoch: i32) -> Self {
        Self::marker(ControlRecordType::Commit, coordinator_epoch)
    }

    /// An abort marker written by coordinator epoch `coordinator_epoch`.
    pub fn abort(coordinator_epoch: i32) -> Self {
        Self::marker(ControlRecordType::Abort, coordinator_epoch)
    }

    fn marker(kind: ControlRecordType, coordinator_epoch: i32) -> Self {
        let marker = EndTxnMarker {
            version: 0,
            coordinator_epoch,
        };
        let mut v = BytesMut::with_capacity(6);
        v.put_i16(marker.version);
        v.put_i32(marker.coordinator_epoch);
        ControlRecord {
            version: 0,
            kind,
            marker: Some(marker),
            value: Some(v.freeze()),
        }
    }

    /// Parses the key (and, for commit and abort, the value) of a record
    /// from a control batch.
    ///
    /// Key and value versions newer than 0 are accepted as long as they
    /// start with the fields this crate knows; trailing fields are ignored.
    pub fn parse(record: &Record) -> Result<Self, DecodeError> {
        let key = record.key.as_ref().ok_or(DecodeError::UnexpectedNull {
            what: "control record key",
        })?;
        let mut c = Cursor::new(key, 0);
        let version = c.i16("control record key version")?;
        if version < 0 {
            return Err(DecodeError::Invalid {
                what: "control record key",
                reason: format!("negative version {version}"),
            });
        }
        let kind = ControlRecordType::from_id(c.i16("control record type")?);
        let marker = match kind {
            ControlRecordType::Abort | ControlRecordType::Commit => {
                let value = record.value.as_ref().ok_or(DecodeError::UnexpectedNull {
                    what: "end transaction marker",
                })?;
                let mut c = Cursor::new(value, 0);
                let version = c.i16("end transaction marker version")?;
                if version < 0 {
                    return Err(DecodeError::Invalid {
                        what: "end transaction marker",
                        reason: format!("negative version {version}"),
                    });
                }
                let coordinator_epoch = c.i32("end transaction marker coordinatorEpoch")?;
                Some(EndTxnMarker {
                    version,
                    coordinator_epoch,
                })
            }
            ControlRecordType::Unknown(_) => None,
        };
        Ok(ControlRecord {
            version,
            kind,
            marker,
            value: record.value.clone(),
        })
    }

    /// The encoded key: `version int16 | type int16`.
    pub fn key_bytes(&self) -> [u8; 4] {
        let mut k = [0u8; 4];
        k[..2].copy_from_slice(&self.version.to_be_bytes());
        k[2..].copy_from_slice(&self.kind.id().to_be_bytes());
        k
    }

    /// The encoded value: `value` if set, else the marker, else null.
    pub fn value_bytes(&self) -> Option<Bytes> {
        if let Some(v) = &self.value {
            return Some(v.clone());
        }
        self.marker.map(|m| {
            let mut v = BytesMut::with_capacity(6);
            v.put_i16(m.version);
            v.put_i32(m.coordinator_epoch);
            v.freeze()
        })
    }
}

impl RecordBatchBuilder {
    /// Appends `record` as a control record; the builder should have been
    /// made with [`with_control`](Self::with_control)`(true)` and
    /// [`with_transactional`](Self::with_transactional)`(true)`.
    pub fn append_control(
        &mut self,
        timestamp: i64,
        record: &ControlRecord,
    ) -> Result<i64, EncodeError> {
        let key = record.key_bytes();
        let value = record.value_bytes();
        self.append(timestamp, Some(&key), value.as_deref(), &[])
    }
}

/// Encodes a one-record control batch ending a transaction, as a
/// coordinator writes it: transactional and control flags set, the
/// producer's id and epoch, no sequence.
pub fn control_batch(
    offset: i64,
    producer_id: i64,
    producer_epoch: i16,
    marker: &ControlRecord,
    timestamp: i64,
) -> Result<Bytes, EncodeError> {
    let mut b = RecordBatchBuilder::new(offset)
        .with_producer(producer_id, producer_epoch, super::NO_SEQUENCE)
        .with_transactional(true)
        .with_control(true);
    b.append_control(timestamp, marker)?;
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::RecordSet;

    #[test]
    fn commit_marker_roundtrip() {
        let raw = control_batch(10, 7, 3, &ControlRecord::commit(5), 1234).unwrap();
        let set = RecordSet::new(raw);
        let batch = set.batches().next().unwrap().unwrap();
        assert!(batch.is_control() && batch.is_transactional());
        assert_eq!(batch.producer_id(), 7);
        let rec = batch.records().next().unwrap().unwrap();
        assert_eq!(rec.key.as_deref(), Some(&[0, 0, 0, 1][..]));
        assert_eq!(rec.value.as_deref(), Some(&[0, 0, 0, 0, 0, 5][..]));
        let c = ControlRecord::parse(&rec).unwrap();
        assert_eq!(c.kind, ControlRecordType::Commit);
        assert_eq!(
            c.marker,
            Some(EndTxnMarker {
                version: 0,
                coordinator_epoch: 5
            })
        );
        assert_eq!(c, ControlRecord::commit(5));
    }

    #[test]
    fn unknown_types_are_kept_as_data() {
        let rec = Record {
            offset: 0,
            timestamp: 0,
            key: Some(Bytes::from_static(&[0, 0, 0, 9])),
            value: Some(Bytes::from_static(b"whatever")),
            headers: Default::default(),
        };
        let c = ControlRecord::parse(&rec).unwrap();
        assert_eq!(c.kind, ControlRecordType::Unknown(9));
        assert_eq!(c.marker, None);
        assert_eq!(c.value.as_deref(), Some(&b"whatever"[..]));
    }

    #[test]
    fn malformed_control_records_are_errors() {
        let mut rec = Record {
            offset: 0,
            timestamp: 0,
            key: Some(Bytes::from_static(&[0, 0, 0])),
            value: None,
            headers: Default::default(),
        };
        assert!(ControlRecord::parse(&rec).unwrap_err().is_truncated());
        rec.key = Some(Bytes::from_static(&[0, 0, 0, 0]));
        assert_eq!(
            ControlRecord::parse(&rec).unwrap_err(),
            DecodeError::UnexpectedNull {
                what: "end transaction marker"
            }
        );
        rec.value = Some(Bytes::from_static(&[0, 0, 0]));
        assert!(ControlRecord::parse(&rec).is_err());
        rec.key = None;
        assert!(ControlRecord::parse(&rec).is_err());
        rec.key = Some(Bytes::from_static(&[0xff, 0xff, 0, 0]));
        assert!(ControlRecord::parse(&rec).is_err());
    }
}
