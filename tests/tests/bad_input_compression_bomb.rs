//! A malicious broker answers Fetch with a compression bomb: one small
//! record batch whose payload inflates to 1 GiB of zeros (gzip, zstd, lz4:
//! many concatenated members or frames of a well-compressed block; snappy,
//! whose ratio tops out near 21:1, with a block whose header claims 1 GiB),
//! and the gzip bomb again as the value of a legacy (magic 1) wrapper
//! message.
//! A partition `Reader` on it gets a typed `Corrupt` error
//! (`DecompressedTooLarge`) from `fetch_message`, and the process's peak
//! RSS grows by less than the cap: the 256 MiB a batch may decompress to
//! (`kafkit_protocol::compression::DEFAULT_DECOMPRESSED_LIMIT`) plus 64 MiB
//! of slack for the response buffers and the test's own copy of the bomb.
//!
//! The four codecs run one after the other in one test, so each peak is its
//! own: the kernel's peak RSS counter (`VmHWM`) is reset between them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafkit_protocol::compression::{self, Compression, DEFAULT_DECOMPRESSED_LIMIT};
use kafkit_protocol::messages::api_versions_response::ApiVersion;
use kafkit_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafkit_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafkit_protocol::messages::{
    ApiVersionsResponse, FetchResponse, MetadataResponse, RequestBody, ResponseBody,
};
use kafkit_protocol::{ApiKey, Uuid, frame};
use kafkit_reader::{ErrorKind, Reader, StartOffset};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const TOPIC: &str = "bombs";
const TOPIC_ID: Uuid = Uuid::from_bytes([7; 16]);
/// What every bomb inflates to (or, for snappy, claims to).
const INFLATED: usize = 1 << 30;
const MIB: usize = 1 << 20;
/// Peak RSS growth allowed per bomb: one batch's decompression limit, plus
/// slack for the fetch response (a few MiB, held by the test, the server
/// and the client) and allocator overhead.
const RSS_CAP: usize = DEFAULT_DECOMPRESSED_LIMIT + 64 * MIB;

/// A compressed payload inflating to `INFLATED` zeros: `copies` times the
/// compression of `INFLATED / copies` zeros (gzip members and zstd and lz4
/// frames may follow one another; each decoder reads them all).
fn repeated(codec: Compression, copies: usize) -> Bytes {
    let mut one = BytesMut::new();
    compression::compress(codec, None, &vec![0; INFLATED / copies], &mut one).unwrap();
    let mut all = BytesMut::with_capacity(one.len() * copies);
    for _ in 0..copies {
        all.extend_from_slice(&one);
    }
    all.freeze()
}

/// A raw snappy block of 64 KiB zeros whose length header says 1 GiB.
fn snappy_claiming_a_gibibyte() -> Bytes {
    let mut block = BytesMut::new();
    compression::compress_snappy_raw(&vec![0; 64 * 1024], &mut block).unwrap();
    // Replace the varint length (64 KiB, 3 bytes) with 1 GiB's (5 bytes).
    let mut out = BytesMut::new();
    let mut n = INFLATED as u32;
    while n >= 0x80 {
        out.put_u8((n as u8) | 0x80);
        n >>= 7;
    }
    out.put_u8(n as u8);
    out.extend_from_slice(&block[3..]);
    out.freeze()
}

/// A magic-2 batch at offset 0 with `payload` as its (compressed) records,
/// claiming 1000 records, with a correct CRC: only decompression can tell.
fn batch(codec: Compression, payload: &[u8]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i64(0); // base offset
    b.put_i32(0); // length, patched below
    b.put_i32(0); // partition leader epoch
    b.put_i8(2); // magic
    b.put_u32(0); // crc, patched below
    b.put_i16(i16::from(codec.id())); // attributes
    b.put_i32(999); // last offset delta
    b.put_i64(0); // base timestamp
    b.put_i64(0); // max timestamp
    b.put_i64(-1); // producer id
    b.put_i16(-1); // producer epoch
    b.put_i32(-1); // base sequence
    b.put_i32(1000); // records count
    b.extend_from_slice(payload);
    let length = (b.len() - 12) as i32;
    b[8..12].copy_from_slice(&length.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b.freeze()
}

/// A legacy magic-1 wrapper message at offset 999 whose value is
/// `payload`, compressed with `codec`, with a correct CRC.
fn legacy_wrapper(codec: Compression, payload: &[u8]) -> Bytes {
    let mut body = BytesMut::new();
    body.put_i8(1); // magic
    body.put_i8(codec.id() as i8); // attributes
    body.put_i64(0); // timestamp
    body.put_i32(-1); // null key
    body.put_i32(payload.len() as i32);
    body.extend_from_slice(payload);
    let mut b = BytesMut::new();
    b.put_i64(999); // a wrapper carries its last inner offset
    b.put_i32((body.len() + 4) as i32);
    b.put_u32(crc32(&body));
    b.extend_from_slice(&body);
    b.freeze()
}

/// CRC-32 (IEEE), as legacy messages use.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The broker's answer to `request`, `None` for anything but the three
/// APIs a partition reader needs.
fn answer(request: &RequestBody, port: u16, records: &Bytes) -> Option<ResponseBody> {
    Some(match request {
        RequestBody::ApiVersions(_) => ResponseBody::ApiVersions(ApiVersionsResponse {
            api_keys: [ApiKey::ApiVersions, ApiKey::Metadata, ApiKey::Fetch]
                .into_iter()
                .map(|k| ApiVersion {
                    api_key: k as i16,
                    min_version: k.request_versions().min,
                    max_version: k.request_versions().max,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        RequestBody::Metadata(_) => ResponseBody::Metadata(MetadataResponse {
            brokers: vec![MetadataResponseBroker {
                node_id: 0,
                host: "127.0.0.1".into(),
                port: i32::from(port),
                ..Default::default()
            }],
            controller_id: 0,
            topics: vec![MetadataResponseTopic {
                name: Some(TOPIC.into()),
                topic_id: TOPIC_ID,
                partitions: vec![MetadataResponsePartition {
                    partition_index: 0,
                    leader_id: 0,
                    replica_nodes: vec![0],
                    isr_nodes: vec![0],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
        RequestBody::Fetch(fetch) => ResponseBody::Fetch(FetchResponse {
            responses: fetch
                .topics
                .iter()
                .map(|t| FetchableTopicResponse {
                    topic: t.topic.clone(),
                    topic_id: t.topic_id,
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| PartitionData {
                            partition_index: p.partition,
                            high_watermark: 1000,
                            last_stable_offset: 1000,
                            log_start_offset: 0,
                            records: Some(records.clone()),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        _ => return None,
    })
}

/// Starts the malicious broker; returns its address.
async fn malicious(records: Bytes) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let records = Arc::new(records);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let records = records.clone();
            tokio::spawn(async move {
                let mut buf = BytesMut::new();
                loop {
                    while let Ok(Some(f)) = frame::decode_frame(&mut buf, 1 << 24) {
                        let Ok((header, body)) = frame::decode_request(f) else {
                            return;
                        };
                        let Some(response) = answer(&body, port, &records) else {
                            return; // an API it does not serve: hang up
                        };
                        let mut out = BytesMut::new();
                        let v = header.request_api_version;
                        frame::encode_response_body(&mut out, header.correlation_id, v, &response)
                            .unwrap();
                        if socket.write_all(&out).await.is_err() {
                            return;
                        }
                    }
                    match socket.read_buf(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
            });
        }
    });
    format!("127.0.0.1:{port}")
}

/// A field of `/proc/self/status` in bytes (`VmRSS`, `VmHWM`).
fn proc_status(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("{field} not in /proc/self/status"));
    let kib: usize = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap();
    kib * 1024
}

/// Reads `records` from the bomb broker; returns the error, the peak RSS
/// growth and how long the error took.
async fn read_bomb(records: Bytes) -> (kafkit_reader::Error, usize, Duration) {
    let addr = malicious(records).await;
    // Reset the peak RSS counter (VmHWM) to the current RSS.
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let before = proc_status("VmRSS:");
    let start = Instant::now();
    let mut reader = Reader::builder([addr])
        .partition(TOPIC, 0)
        .start_offset(StartOffset::Offset(0))
        .build()
        .await
        .unwrap();
    let fetched = tokio::time::timeout(Duration::from_secs(20), reader.fetch_message())
        .await
        .expect("the bomb does not hang the reader");
    let took = start.elapsed();
    let growth = proc_status("VmHWM:").saturating_sub(before);
    let e = fetched.expect_err("a bomb is no message");
    let _ = reader.close().await;
    (e, growth, took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compression_bomb_in_a_fetch_is_a_typed_error_in_bounded_memory() {
    // ~1 KiB per 1 MiB member: 1 GiB in about 1 MiB.
    let gzip = repeated(Compression::Gzip, 1024);
    // 64 MiB per few-KiB frame: 1 GiB in tens of KiB.
    let zstd = repeated(Compression::Zstd, 16);
    // lz4 tops out near 255:1: 1 GiB in about 4 MiB.
    let lz4 = repeated(Compression::Lz4, 256);
    let bombs = [
        ("gzip", Compression::Gzip, batch(Compression::Gzip, &gzip)),
        ("zstd", Compression::Zstd, batch(Compression::Zstd, &zstd)),
        ("lz4", Compression::Lz4, batch(Compression::Lz4, &lz4)),
        (
            "snappy",
            Compression::Snappy,
            batch(Compression::Snappy, &snappy_claiming_a_gibibyte()),
        ),
        (
            "gzip-legacy",
            Compression::Gzip,
            legacy_wrapper(Compression::Gzip, &gzip),
        ),
    ];
    drop((gzip, zstd, lz4));
    for (name, codec, records) in bombs {
        let size = records.len();
        let (e, growth, took) = read_bomb(records).await;
        println!(
            "bomb {name} fetched={size} inflates_to={INFLATED} error=\"{e}\" \
             peak_rss_growth_mib={} took_ms={}",
            growth / MIB,
            took.as_millis()
        );
        match e.kind() {
            ErrorKind::Corrupt(kafkit_protocol::DecodeError::DecompressedTooLarge {
                codec: c,
                limit,
            }) => assert_eq!(
                (*c, *limit),
                (codec.name(), DEFAULT_DECOMPRESSED_LIMIT),
                "{name}"
            ),
            other => panic!("{name}: expected DecompressedTooLarge, got {other:?}"),
        }
        assert_eq!(
            e.partition(),
            Some(0),
            "{name}: the error names the partition"
        );
        assert!(
            growth < RSS_CAP,
            "{name}: peak RSS grew {} MiB, more than the {} MiB cap",
            growth / MIB,
            RSS_CAP / MIB
        );
    }
}
