#!/usr/bin/env python3
"""Writes the committed seed corpus under crates/protocol/fuzz/corpus/.

    python3 crates/protocol/fuzz/seed_corpus.py

Deterministic: the same fixtures give byte-identical seeds. Each seed is
named after what it came from. The script first deletes the seed files it
owns (`corpus/<target>/seed-*`) so that a re-run leaves no stale seeds;
files libFuzzer adds to the corpus directories (hash names) are left alone
but must not be committed.

Sources:
- the golden wire fixtures in crates/protocol/tests/fixtures/ (see its
  README.md and manifest.json): request and response frames, the record
  batches and legacy message sets librdkafka wrote, and the compressed
  payloads inside them;
- a few seeds built here: a request stream with several frames, oversize
  and negative frame sizes, a control batch, a log-append-time batch,
  concatenated and truncated record sets, xerial snappy, multi-member gzip.
"""

import gzip
import json
import struct
import zlib
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
FIXTURES = FUZZ.parent / "tests" / "fixtures"
CORPUS = FUZZ / "corpus"
TARGETS = ["frame", "request", "response", "record_batch", "compressed_batch"]
CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
# The frame target's chunk size is `selector % 64 + 1`.
CHUNK_SELECTORS = [0, 6, 63]

# The supported versions of the APIs the fixtures use (ApiKey::request_versions
# in crates/protocol/src/messages/mod.rs): fixtures outside them are not
# request/response seeds (they stay frame seeds, where they hit the error path).
SUPPORTED = {0: (3, 13), 1: (4, 18), 3: (0, 13), 18: (0, 4), 22: (0, 6)}


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def zigzag_varint(n: int) -> bytes:
    z = (n << 1) ^ (n >> 63)
    z &= (1 << 64) - 1
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def varint_bytes(b):
    return zigzag_varint(-1) if b is None else zigzag_varint(len(b)) + b


def record(offset_delta, ts_delta, key, value, headers=()):
    body = b"\x00" + zigzag_varint(ts_delta) + zigzag_varint(offset_delta)
    body += varint_bytes(key) + varint_bytes(value) + zigzag_varint(len(headers))
    for hk, hv in headers:
        body += varint_bytes(hk) + varint_bytes(hv)
    return zigzag_varint(len(body)) + body


def batch(records, base_offset=0, attributes=0, base_ts=1_700_000_000_000, max_ts=None,
          producer_id=-1, producer_epoch=-1, base_sequence=-1):
    data = b"".join(records)
    max_ts = base_ts if max_ts is None else max_ts
    tail = struct.pack(">hiqqqhii", attributes, max(len(records) - 1, 0), base_ts, max_ts,
                       producer_id, producer_epoch, base_sequence, len(records)) + data
    head = struct.pack(">qiib", base_offset, 49 + len(data), 0, 2)
    return head + struct.pack(">I", crc32c(tail)) + tail


def manifest():
    return json.loads((FIXTURES / "manifest.json").read_text())["files"]


def header_len(frame: bytes, kind: str, header_version: int) -> int:
    """Bytes of the request/response header at the front of a fixture frame."""
    if kind == "response":
        n = 4
    else:
        (client_id_len,) = struct.unpack(">h", frame[8:10])
        n = 10 + max(client_id_len, 0)
    flexible = header_version == (1 if kind == "response" else 2)
    if flexible:
        assert frame[n] == 0, "fixture headers carry no tagged fields"
        n += 1
    return n


def legacy_value(msg_set: bytes) -> tuple:
    """(magic, codec id, value) of the first message of a legacy set."""
    (size,) = struct.unpack(">i", msg_set[8:12])
    body = msg_set[12:12 + size]
    magic, attributes = body[4], body[5]
    pos = 6 + (8 if magic == 1 else 0)
    (klen,) = struct.unpack(">i", body[pos:pos + 4])
    pos += 4 + max(klen, 0)
    (vlen,) = struct.unpack(">i", body[pos:pos + 4])
    return magic, attributes & 7, body[pos + 4:pos + 4 + vlen]


def main():
    seeds = {t: {} for t in TARGETS}
    files = manifest()

    # --- frames, requests, responses -------------------------------------
    request_frames = []
    for name, meta in sorted(files.items()):
        if meta["kind"] not in ("request", "response"):
            continue
        frame = (FIXTURES / name).read_bytes()
        stem = name.replace("/", "-").removesuffix(".bin")
        key, version = meta["api_key"], meta["api_version"]
        if meta["kind"] == "request":
            request_frames.append(frame)
            sized = struct.pack(">i", len(frame)) + frame
            seeds["frame"][stem] = bytes([CHUNK_SELECTORS[len(request_frames) % 3]]) + sized
        lo, hi = SUPPORTED.get(key, (0, -1))
        if lo <= version <= hi:
            body = frame[header_len(frame, meta["kind"], meta["header_version"]):]
            seeds[meta["kind"]][stem] = bytes([key, version]) + body
            if meta["kind"] == "response":
                # The whole frame too: the response target also decodes its
                # input as header + body.
                seeds["response"][stem + "-frame"] = bytes([key, version]) + frame

    # Several frames in one stream, fed one byte at a time and 7 at a time.
    small = [f for f in request_frames if len(f) < 200][:4]
    stream = b"".join(struct.pack(">i", len(f)) + f for f in small)
    seeds["frame"]["gen-stream-4-frames-chunk1"] = bytes([0]) + stream
    seeds["frame"]["gen-stream-partial-tail-chunk7"] = bytes([6]) + stream + stream[:9]
    seeds["frame"]["gen-oversize"] = bytes([3]) + struct.pack(">i", 1 << 20) + b"\x00" * 8
    seeds["frame"]["gen-negative-size"] = bytes([3]) + struct.pack(">i", -2)
    seeds["frame"]["gen-empty-frame"] = bytes([1]) + struct.pack(">i", 0)
    # ApiVersions v0 with a null client id, and an unknown API key.
    seeds["frame"]["gen-api-versions-v0-null-client"] = bytes([5]) + struct.pack(">ihhih", 10, 18, 0, 1, -1)
    seeds["frame"]["gen-unknown-api-key"] = bytes([5]) + struct.pack(">ihhih", 10, 0x7F00, 0, 1, -1)
    # Empty bodies for a few generated request/response seeds.
    seeds["request"]["gen-api-versions-v0-empty"] = bytes([18, 0])
    seeds["request"]["gen-metadata-v0-empty-topics"] = bytes([3, 0]) + struct.pack(">i", 0)
    seeds["response"]["gen-api-versions-v0-empty"] = bytes([18, 0]) + struct.pack(">hi", 0, 0)

    # --- record sets ------------------------------------------------------
    batches = {}
    for name, meta in sorted(files.items()):
        if meta["kind"] in ("batch", "message_set"):
            data = (FIXTURES / name).read_bytes()
            stem = name.replace("/", "-").removesuffix(".bin")
            batches[stem] = data
            seeds["record_batch"][stem] = data

    none = batches["librdkafka-batch_none"]
    seeds["record_batch"]["gen-two-batches"] = none + batches["librdkafka-batch_gzip"]
    seeds["record_batch"]["gen-truncated-tail"] = batches["librdkafka-batch_zstd"] + none[:100]
    seeds["record_batch"]["gen-commit-control-batch"] = batch(
        [record(0, 0, struct.pack(">hh", 0, 1), struct.pack(">hi", 0, 5))],
        base_offset=7, attributes=0x30, producer_id=1, producer_epoch=0)
    seeds["record_batch"]["gen-log-append-time-headers"] = batch(
        [record(0, 0, b"k", b"v", [(b"h", b"1"), (b"n", None)]), record(2, 5, None, None)],
        attributes=0x08, max_ts=1_700_000_009_999)
    seeds["record_batch"]["gen-legacy-v1-then-v2"] = batches["librdkafka-legacy_v1_none"] + none

    # --- compressed payloads ----------------------------------------------
    for codec, cid in CODECS.items():
        if codec == "none":
            continue
        data = batches[f"librdkafka-batch_{codec}"]
        (count,) = struct.unpack(">i", data[57:61])
        # selector: codec + 5 * record count (magic 0 for the legacy wrapper)
        seeds["compressed_batch"][f"librdkafka-batch_{codec}-payload"] = bytes([cid + 5 * count]) + data[61:]
    for magic in (0, 1):
        for codec in ("gzip", "snappy", "lz4"):
            m, cid, value = legacy_value(batches[f"librdkafka-legacy_v{magic}_{codec}"])
            assert (m, cid) == (magic, CODECS[codec])
            seeds["compressed_batch"][f"librdkafka-legacy_v{magic}_{codec}-value"] = bytes(
                [cid + 5 * (26 * magic)]) + value
    raw = none[61:]
    seeds["compressed_batch"]["gen-none-records"] = bytes([0 + 5 * 5]) + raw
    members = gzip.compress(raw[:300], mtime=0) + gzip.compress(raw[300:], mtime=0)
    seeds["compressed_batch"]["gen-gzip-two-members"] = bytes([1 + 5 * 5]) + members
    # xerial framing around librdkafka's raw snappy block.
    block = batches["librdkafka-batch_snappy"][61:]
    xerial = b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1) + struct.pack(">i", len(block)) + block
    seeds["compressed_batch"]["gen-snappy-xerial"] = bytes([2 + 5 * 5]) + xerial
    seeds["compressed_batch"]["gen-zlib-not-gzip"] = bytes([1]) + zlib.compress(b"x" * 64)

    # --- write ------------------------------------------------------------
    total = 0
    for target, entries in seeds.items():
        d = CORPUS / target
        d.mkdir(parents=True, exist_ok=True)
        for old in d.glob("seed-*"):
            old.unlink()
        for stem, data in sorted(entries.items()):
            (d / f"seed-{stem}").write_bytes(data)
            total += len(data)
        print(f"{target}: {len(entries)} seeds, {sum(map(len, entries.values()))} bytes")
    print(f"total: {total} bytes")
    assert total < 2 * 1024 * 1024


if __name__ == "__main__":
    main()
