package dev.kafkit.peer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.clients.producer.RoundRobinPartitioner;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * {@code produce}: one record per stdin JSON line, sent asynchronously;
 * each acknowledgement prints {@code {"i":index,"partition":p,"offset":o}}
 * in the order the acknowledgements arrive (ordered within a partition,
 * interleaved across partitions). Ends with {@code {"done":true,"count":n}}.
 */
final class Produce {
    private Produce() {}

    /**
     * Producer settings shared by produce, txn-produce and bench-produce:
     * byte-array serializers plus {@code --codec}, {@code --acks} and
     * {@code --idempotent}. Idempotence defaults to true with acks=all and
     * to false otherwise (the client refuses idempotence without acks=all).
     */
    static Properties producerProps(Flags f) {
        Properties p = f.clientBase();
        p.put("key.serializer", ByteArraySerializer.class.getName());
        p.put("value.serializer", ByteArraySerializer.class.getName());
        p.put("compression.type", f.oneOf("codec", "none", "none", "gzip", "snappy", "lz4", "zstd"));
        String acks = f.oneOf("acks", "all", "all", "-1", "1", "0");
        p.put("acks", acks.equals("-1") ? "all" : acks);
        boolean idempotent = f.bool("idempotent", p.get("acks").equals("all"));
        p.put("enable.idempotence", Boolean.toString(idempotent));
        return p;
    }

    /** {@code --partitioner default|roundrobin}: default leaves Java's built-in one. */
    static void partitioner(Flags f, Properties p) {
        if (f.oneOf("partitioner", "default", "default", "roundrobin").equals("roundrobin")) {
            p.put("partitioner.class", RoundRobinPartitioner.class.getName());
        }
    }

    static void run(Flags f) throws Exception {
        String topic = f.req("topic");
        Properties props = producerProps(f);
        partitioner(f, props);
        f.applyOverrides(props);
        f.finish();

        AtomicLong acked = new AtomicLong();
        AtomicReference<String> firstError = new AtomicReference<>();
        Semaphore completions = new Semaphore(0);
        long sent = 0;
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
            String line;
            while ((line = in.readLine()) != null) {
                if (line.isBlank()) {
                    continue;
                }
                final long index = sent;
                ProducerRecord<byte[], byte[]> rec = toRecord(topic, Json.parse(line), index);
                producer.send(rec, (md, err) -> {
                    try {
                        report(index, md, err, acked, firstError);
                    } finally {
                        completions.release();
                    }
                });
                sent++;
            }
            producer.flush();
            completions.acquire(Math.toIntExact(sent));
            producer.close(Duration.ofSeconds(30));
        }
        if (firstError.get() != null) {
            throw new IllegalStateException(
                (sent - acked.get()) + " of " + sent + " records failed; first: " + firstError.get());
        }
        Json.done(acked.get());
    }

    private static void report(long index, RecordMetadata md, Exception err,
                               AtomicLong acked, AtomicReference<String> firstError) {
        ObjectNode o = Json.obj();
        o.put("i", index);
        if (err != null) {
            String msg = err.getClass().getSimpleName() + ": " + err.getMessage();
            firstError.compareAndSet(null, "record " + index + ": " + msg);
            o.put("error", msg);
        } else {
            acked.incrementAndGet();
            o.put("partition", md.partition());
            o.put("offset", md.hasOffset() ? md.offset() : -1);
        }
        Json.emit(o);
    }

    /**
     * One input line: {@code {"key":b64|null,"value":b64|null,
     * "headers":[{"key":"k","value":b64|null}],"partition":int?,"timestamp_ms":long?}}.
     * A missing key or value counts as null.
     */
    static ProducerRecord<byte[], byte[]> toRecord(String topic, JsonNode in, long index) {
        if (!in.isObject()) {
            throw new IllegalArgumentException("input line " + index + " is not a JSON object");
        }
        String at = "input line " + index + ": ";
        byte[] key = Json.unb64(in.get("key"), at + "key");
        byte[] value = Json.unb64(in.get("value"), at + "value");
        Integer partition = null;
        JsonNode pn = in.get("partition");
        if (pn != null && !pn.isNull()) {
            if (!pn.canConvertToInt()) {
                throw new IllegalArgumentException(at + "partition must be an integer");
            }
            partition = pn.intValue();
        }
        Long timestamp = null;
        JsonNode tn = in.get("timestamp_ms");
        if (tn != null && !tn.isNull()) {
            timestamp = tn.longValue();
        }
        List<Header> headers = new ArrayList<>();
        JsonNode hn = in.get("headers");
        if (hn != null && !hn.isNull()) {
            if (!hn.isArray()) {
                throw new IllegalArgumentException(at + "headers must be an array");
            }
            for (JsonNode h : hn) {
                JsonNode hk = h.get("key");
                if (hk == null || !hk.isTextual()) {
                    throw new IllegalArgumentException(at + "header key must be a string");
                }
                headers.add(new RecordHeader(hk.asText(), Json.unb64(h.get("value"), at + "header value")));
            }
        }
        return new ProducerRecord<>(topic, partition, timestamp, key, value, headers);
    }
}
