package dev.kafkit.peer;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.consumer.CloseOptions;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;

/**
 * {@code bench-produce} and {@code bench-consume}: throughput of the Java
 * client, for comparison with kafkit. Each prints the effective client
 * settings ({@code {"settings":{...}}}) and then one result line
 * {@code {"client":"java","records":N,"bytes":B,"seconds":s,
 * "records_per_sec":r,"mb_per_sec":m,"cpu_seconds":c,"peak_rss_bytes":p,
 * "wchar":w}} (MB = 10^6 bytes). Produce is timed from just before the first
 * send to the last acknowledgement, consume from the assignment (once
 * connected) to the last record. CPU is
 * the whole JVM's (every thread: the client's, the JIT's, the GC's) over
 * that span; the peak RSS is VmHWM at the end; wchar is what the JVM's write
 * calls wrote over that span ({@code /proc/self/io}: its requests, and any
 * other write), left out when unknown.
 */
final class Bench {
    private Bench() {}

    /**
     * {@code --count N --size B [--linger-ms 5] [--acks all] [--idempotent true] [--codec none]
     * [--batch-size BYTES] [--partitions P --partitioner manual|default] [--keys K]
     * [--timeout-ms 120000]}: records
     * with a fixed random value, sent async. With {@code --partitioner manual} record i goes to
     * partition i % P; with {@code --keys K} it carries the key {@code key-%06d} of i % K.
     */
    static void produce(Flags f) throws Exception {
        String topic = f.req("topic");
        long count = f.reqNum("count");
        int size = Math.toIntExact(f.reqNum("size"));
        int partitions = f.intNum("partitions", 0);
        boolean manual = f.oneOf("partitioner", "default", "default", "manual").equals("manual");
        int keyCount = f.intNum("keys", 0);
        long timeoutMs = f.num("timeout-ms", 120_000);
        if (manual && partitions <= 0) {
            throw new IllegalArgumentException("--partitioner manual needs --partitions P");
        }
        if (keyCount < 0) {
            throw new IllegalArgumentException("--keys must not be negative");
        }
        Properties props = Produce.producerProps(f);
        props.put("linger.ms", Long.toString(f.num("linger-ms", 5)));
        String batch = f.opt("batch-size");
        if (batch != null) {
            props.put("batch.size", batch);
        }
        f.applyOverrides(props);
        f.finish();
        ProducerConfig config = new ProducerConfig(props);
        ObjectNode s = Json.obj();
        s.put("client", "java");
        s.put("command", "bench-produce");
        s.put("records", count);
        s.put("size", size);
        s.put("partitions", partitions);
        s.put("keys", keyCount);
        String acks = config.getString(ProducerConfig.ACKS_CONFIG);
        s.put("acks", acks.equals("-1") ? "all" : acks);
        s.put("idempotent", config.getBoolean(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG));
        s.put("linger_ms", number(config.values().get(ProducerConfig.LINGER_MS_CONFIG)));
        s.put("compression", config.getString(ProducerConfig.COMPRESSION_TYPE_CONFIG));
        s.put("partitioner", manual ? "manual: record i to partition i % " + partitions
            : "default (murmur2 of the key; keyless: sticky)");
        s.put("batch_max_bytes", config.getInt(ProducerConfig.BATCH_SIZE_CONFIG));
        s.put("batch_max_records", "none");
        s.put("max_in_flight", config.getInt(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION)
            + " per connection");
        s.put("buffer", config.getLong(ProducerConfig.BUFFER_MEMORY_CONFIG) + " B");
        s.put("max_request_size", config.getInt(ProducerConfig.MAX_REQUEST_SIZE_CONFIG));
        s.put("path", "KafkaProducer.send with a callback");
        settings(s);

        byte[] value = new byte[size];
        new Random(42).nextBytes(value);
        byte[][] keys = new byte[keyCount][];
        for (int j = 0; j < keyCount; j++) {
            keys[j] = String.format("key-%06d", j).getBytes(StandardCharsets.UTF_8);
        }
        CountDownLatch outstanding = new CountDownLatch(Math.toIntExact(count));
        AtomicLong failed = new AtomicLong();
        AtomicReference<Exception> firstError = new AtomicReference<>();
        Stamp start;
        Stamp end;
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
            producer.partitionsFor(topic); // metadata before the clock starts
            start = Stamp.now();
            for (long i = 0; i < count; i++) {
                Integer partition = manual ? (int) (i % partitions) : null;
                byte[] key = keyCount == 0 ? null : keys[(int) (i % keyCount)];
                producer.send(new ProducerRecord<>(topic, partition, key, value), (md, err) -> {
                    if (err != null) {
                        failed.incrementAndGet();
                        firstError.compareAndSet(null, err);
                    }
                    outstanding.countDown();
                });
            }
            producer.flush();
            if (!outstanding.await(timeoutMs, TimeUnit.MILLISECONDS)) {
                throw new IllegalStateException("timed out after " + timeoutMs + " ms with "
                    + (count - outstanding.getCount()) + " of " + count + " records acknowledged");
            }
            end = Stamp.now();
            producer.close(Duration.ofSeconds(30));
        }
        if (firstError.get() != null) {
            throw new IllegalStateException(failed.get() + " of " + count + " sends failed", firstError.get());
        }
        result(count, count * size, start, end);
    }

    /**
     * {@code --count N [--timeout-ms 120000]}: reads N records from the start of every partition
     * of the topic, or of each topic of {@code --topic a,b,...}.
     */
    static void consume(Flags f) throws Exception {
        String[] topics = f.req("topic").split(",");
        long count = f.reqNum("count");
        long timeoutMs = f.num("timeout-ms", 120_000);
        Properties props = Consume.consumerProps(f);
        props.put("isolation.level",
            f.oneOf("isolation", "read_uncommitted", "read_uncommitted", "read_committed"));
        f.applyOverrides(props);
        f.finish();
        ConsumerConfig config = new ConsumerConfig(props);
        ObjectNode s = Json.obj();
        s.put("client", "java");
        s.put("command", "bench-consume");
        s.put("records", count);
        s.put("isolation", config.getString(ConsumerConfig.ISOLATION_LEVEL_CONFIG));
        s.put("path", "KafkaConsumer.assign + seekToBeginning + poll");
        s.put("fetch_min_bytes", config.getInt(ConsumerConfig.FETCH_MIN_BYTES_CONFIG));
        s.put("fetch_max_bytes", config.getInt(ConsumerConfig.FETCH_MAX_BYTES_CONFIG));
        s.put("partition_max_bytes", config.getInt(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG));
        s.put("fetch_max_wait_ms", config.getInt(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG));
        s.put("buffer", "max.poll.records " + config.getInt(ConsumerConfig.MAX_POLL_RECORDS_CONFIG));
        // The consumer always uses incremental fetch sessions (KIP-227) where the broker allows
        // them; no setting turns them off.
        s.put("fetch_sessions", true);
        settings(s);

        long received = 0;
        long bytes = 0;
        Stamp start;
        Stamp end;
        long deadline = System.currentTimeMillis() + timeoutMs;
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            // Connected and the partitions known before the clock starts.
            List<TopicPartition> parts = new ArrayList<>();
            for (String topic : topics) {
                parts.addAll(Consume.partitions(consumer, topic.trim(), deadline));
            }
            start = Stamp.now();
            consumer.assign(parts);
            consumer.seekToBeginning(parts);
            while (received < count) {
                if (System.currentTimeMillis() >= deadline) {
                    throw new IllegalStateException("timed out after " + timeoutMs + " ms with "
                        + received + " of " + count + " records");
                }
                ConsumerRecords<byte[], byte[]> batch = consumer.poll(Duration.ofMillis(500));
                for (ConsumerRecord<byte[], byte[]> r : batch) {
                    if (received == count) {
                        break;
                    }
                    received++;
                    bytes += r.value() == null ? 0 : r.value().length;
                }
            }
            end = Stamp.now();
            consumer.close(CloseOptions.timeout(Duration.ofSeconds(10)));
        }
        result(received, bytes, start, end);
    }

    /**
     * The wall clock, the JVM's CPU time (user + system, every thread) and the bytes its write
     * calls have written (wchar, -1 if unknown) at one moment.
     */
    private record Stamp(long wallNanos, long cpuNanos, long written) {
        private static final com.sun.management.OperatingSystemMXBean OS =
            (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();

        static Stamp now() {
            return new Stamp(System.nanoTime(), OS.getProcessCpuTime(), wchar());
        }
    }

    /** wchar of /proc/self/io: the bytes this process's write calls have written (-1 if unknown). */
    private static long wchar() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/io"))) {
                if (line.startsWith("wchar:")) {
                    return Long.parseLong(line.substring(6).trim());
                }
            }
        } catch (IOException | RuntimeException e) {
            // unknown
        }
        return -1;
    }

    /** VmHWM of /proc/self/status in bytes: the process's peak resident set (0 if unknown). */
    private static long peakRss() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmHWM:")) {
                    return Long.parseLong(line.substring(6).trim().split("\\s+")[0]) * 1024;
                }
            }
        } catch (IOException | RuntimeException e) {
            // unknown
        }
        return 0;
    }

    private static void settings(ObjectNode s) {
        ObjectNode o = Json.obj();
        o.set("settings", s);
        Json.emit(o);
    }

    private static long number(Object v) {
        return ((Number) v).longValue();
    }

    private static void result(long records, long bytes, Stamp start, Stamp end) {
        double seconds = (end.wallNanos() - start.wallNanos()) / 1e9;
        ObjectNode o = Json.obj();
        o.put("client", "java");
        o.put("records", records);
        o.put("bytes", bytes);
        o.put("seconds", seconds);
        o.put("records_per_sec", records / seconds);
        o.put("mb_per_sec", bytes / seconds / 1e6);
        o.put("cpu_seconds", (end.cpuNanos() - start.cpuNanos()) / 1e9);
        o.put("peak_rss_bytes", peakRss());
        if (start.written() >= 0 && end.written() >= start.written()) {
            o.put("wchar", end.written() - start.written());
        }
        Json.emit(o);
    }
}
