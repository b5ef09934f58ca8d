//! The requests the integration tests and the demo share, as [`RawClient`]
//! methods: topic admin, metadata, produce and fetch, each at the highest
//! version both sides speak.

use bytes::Bytes;
use kafkit_protocol::messages::create_topics_request::CreatableTopic;
use kafkit_protocol::messages::delete_topics_request::DeleteTopicState;
use kafkit_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafkit_protocol::messages::fetch_response::PartitionData;
use kafkit_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafkit_protocol::messages::list_offsets_response::ListOffsetsPartitionResponse;
use kafkit_protocol::messages::metadata_request::MetadataRequestTopic;
use kafkit_protocol::messages::metadata_response::MetadataResponseTopic;
use kafkit_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafkit_protocol::messages::produce_response::PartitionProduceResponse;
use kafkit_protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    FetchRequest, ListOffsetsRequest, MetadataRequest, MetadataResponse, ProduceRequest,
};
use kafkit_protocol::records::{Record, RecordSet};
use kafkit_protocol::{ErrorCode, Uuid};

use crate::RawClient;

impl RawClient {
    /// CreateTopics for one topic; the broker picks the replication factor
    /// (`-1`, KIP-464) so the same call works on tansu and a 3-broker cluster.
    pub fn create_topics(&mut self, name: &str, partitions: i32) -> CreateTopicsResponse {
        let request = CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: name.to_owned(),
                num_partitions: partitions,
                replication_factor: -1,
                ..Default::default()
            }],
            timeout_ms: 30_000,
            ..Default::default()
        };
        self.send(&request)
    }

    /// DeleteTopics by name.
    pub fn delete_topics(&mut self, names: &[&str]) -> DeleteTopicsResponse {
        let version = self.version::<DeleteTopicsRequest>();
        let mut request = DeleteTopicsRequest {
            timeout_ms: 30_000,
            ..Default::default()
        };
        // v6 names topics by name or id; earlier versions by name only.
        if version >= 6 {
            request.topics = names
                .iter()
                .map(|n| DeleteTopicState {
                    name: Some((*n).to_owned()),
                    ..Default::default()
                })
                .collect();
        } else {
            request.topic_names = names.iter().map(|n| (*n).to_owned()).collect();
        }
        self.request(version, &request)
    }

    /// Metadata for `topics` (all topics when `None`), never auto-creating.
    pub fn metadata(&mut self, topics: Option<&[&str]>) -> MetadataResponse {
        let request = MetadataRequest {
            topics: topics.map(|names| {
                names
                    .iter()
                    .map(|n| MetadataRequestTopic {
                        name: Some((*n).to_owned()),
                        ..Default::default()
                    })
                    .collect()
            }),
            allow_auto_topic_creation: false,
            ..Default::default()
        };
        self.send(&request)
    }

    /// The metadata of one topic, asserting the broker knows it.
    pub fn topic_metadata(&mut self, topic: &str) -> MetadataResponseTopic {
        let response = self.metadata(Some(&[topic]));
        let found = response
            .topics
            .into_iter()
            .find(|t| t.name.as_deref() == Some(topic));
        let found = found.unwrap_or_else(|| panic!("metadata does not list topic {topic}"));
        assert_eq!(
            found.error_code,
            ErrorCode::NONE,
            "metadata error for topic {topic}"
        );
        found
    }

    /// Produces `records` (one encoded batch or more) to one partition with
    /// `acks=-1`, returning the partition's answer.
    pub fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        records: Bytes,
    ) -> PartitionProduceResponse {
        let version = self.version::<ProduceRequest>();
        // Produce v13 names topics by id only (KIP-516).
        let topic_id = if version >= 13 {
            self.topic_metadata(topic).topic_id
        } else {
            Uuid::default()
        };
        let request = ProduceRequest {
            acks: -1,
            timeout_ms: 30_000,
            topic_data: vec![TopicProduceData {
                name: topic.to_owned(),
                topic_id,
                partition_data: vec![PartitionProduceData {
                    index: partition,
                    records: Some(records),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let response = self.request(version, &request);
        let topic_response = response
            .responses
            .into_iter()
            .next()
            .expect("a produce response names the topic");
        let answer = topic_response
            .partition_responses
            .into_iter()
            .next()
            .expect("a partition response");
        assert_eq!(answer.index, partition);
        answer
    }

    /// ListOffsets for one partition: `timestamp` is a record timestamp, or
    /// `-1` for the latest offset and `-2` for the earliest (KIP-79).
    pub fn list_offset(
        &mut self,
        topic: &str,
        partition: i32,
        timestamp: i64,
    ) -> ListOffsetsPartitionResponse {
        let request = ListOffsetsRequest {
            topics: vec![ListOffsetsTopic {
                name: topic.to_owned(),
                partitions: vec![ListOffsetsPartition {
                    partition_index: partition,
                    timestamp,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            // -1: a consumer. The generated default, 0, would ask as follower 0.
            replica_id: -1,
            ..Default::default()
        };
        let response = self.send(&request);
        let topic_response = response
            .topics
            .into_iter()
            .next()
            .expect("a list offsets response names the topic");
        let answer = topic_response
            .partitions
            .into_iter()
            .next()
            .expect("a partition response");
        assert_eq!(answer.partition_index, partition);
        answer
    }

    /// One Fetch of one partition from `offset`, waiting at most 100 ms for data.
    pub fn fetch(&mut self, topic: &str, partition: i32, offset: i64) -> PartitionData {
        let version = self.version::<FetchRequest>();
        // Fetch v13+ names topics by id (KIP-516); both fields are ignorable,
        // so setting both is safe at any version.
        let topic_id = if version >= 13 {
            self.topic_metadata(topic).topic_id
        } else {
            Uuid::default()
        };
        let request = FetchRequest {
            max_wait_ms: 100,
            min_bytes: 1,
            max_bytes: 16 << 20,
            topics: vec![FetchTopic {
                topic: topic.to_owned(),
                topic_id,
                partitions: vec![FetchPartition {
                    partition,
                    fetch_offset: offset,
                    partition_max_bytes: 8 << 20,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let response = self.request(version, &request);
        assert_eq!(response.error_code, ErrorCode::NONE, "fetch failed");
        let topic_response = response
            .responses
            .into_iter()
            .next()
            .expect("a fetch response names the topic");
        let data = topic_response
            .partitions
            .into_iter()
            .next()
            .expect("a partition in the fetch response");
        assert_eq!(data.partition_index, partition);
        data
    }

    /// Fetches from `offset` until `count` records have arrived (or 10 s
    /// pass), decoding every batch with CRC checks. Returns the records and
    /// the last high watermark seen.
    pub fn fetch_records(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        count: usize,
    ) -> (Vec<Record>, i64) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut records = Vec::new();
        let mut next = offset;
        let mut high_watermark = -1;
        while records.len() < count {
            assert!(
                std::time::Instant::now() < deadline,
                "fetched only {} of {count} records from {topic}/{partition}",
                records.len()
            );
            let data = self.fetch(topic, partition, next);
            assert_eq!(
                data.error_code,
                ErrorCode::NONE,
                "fetch error for {topic}/{partition}"
            );
            high_watermark = data.high_watermark;
            let set = RecordSet::new(data.records.unwrap_or_default());
            for record in set.records() {
                let record =
                    record.unwrap_or_else(|e| panic!("cannot decode a fetched record: {e}"));
                // A fetch may start inside a batch: skip what precedes `next`.
                if record.offset >= next {
                    next = record.offset + 1;
                    records.push(record);
                }
            }
        }
        (records, high_watermark)
    }
}
