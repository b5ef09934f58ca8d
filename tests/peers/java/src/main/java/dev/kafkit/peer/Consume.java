package dev.kafkit.peer;

import java.io.InputStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.consumer.CommitFailedException;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.CloseOptions;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.RangeAssignor;
import org.apache.kafka.clients.consumer.RoundRobinAssignor;
import org.apache.kafka.clients.consumer.StickyAssignor;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.RebalanceInProgressException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * {@code consume} and {@code group-member}. Without a group the consumer
 * assigns itself every partition of the topic and seeks to {@code --from}.
 * With {@code --group} it subscribes, prints rebalance events, and commits
 * (synchronously) exactly the records it printed: after each poll batch, on
 * revocation, and before closing. Auto-commit is always off.
 */
final class Consume {
    private final KafkaConsumer<byte[], byte[]> consumer;
    /** Next offsets of printed records not yet committed. */
    private final Map<TopicPartition, OffsetAndMetadata> pending = new HashMap<>();

    private Consume(KafkaConsumer<byte[], byte[]> consumer) {
        this.consumer = consumer;
    }

    /** Consumer settings shared with bench-consume: byte arrays, no auto-commit. */
    static Properties consumerProps(Flags f) {
        Properties p = f.clientBase();
        p.put("key.deserializer", ByteArrayDeserializer.class.getName());
        p.put("value.deserializer", ByteArrayDeserializer.class.getName());
        p.put("enable.auto.commit", "false");
        p.put("auto.offset.reset", "earliest");
        return p;
    }

    static void run(Flags f, boolean member) throws Exception {
        String topic = f.req("topic");
        long count = member ? f.num("count", -1) : f.reqNum("count");
        long timeoutMs = f.num("timeout-ms", member ? 0 : 60_000);
        String group = f.opt("group");
        if (member && group == null) {
            throw new IllegalArgumentException("group-member needs --group");
        }
        String from = f.oneOf("from", null, "earliest", "latest");
        Properties props = consumerProps(f);
        props.put("isolation.level",
            f.oneOf("isolation", "read_uncommitted", "read_uncommitted", "read_committed"));
        if (group != null) {
            groupProps(f, props, group);
        }
        f.applyOverrides(props);
        f.finish();
        if ((group == null) == (from == null)) {
            throw new IllegalArgumentException("consume wants exactly one of --from earliest|latest or --group G");
        }

        final boolean[] stdinClosed = {false};
        if (member) {
            Thread t = new Thread(() -> {
                drain(System.in);
                synchronized (stdinClosed) {
                    stdinClosed[0] = true;
                }
            }, "stdin-watch");
            t.setDaemon(true);
            t.start();
        }

        long deadline = timeoutMs > 0 ? System.currentTimeMillis() + timeoutMs : Long.MAX_VALUE;
        long printed = 0;
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            Consume c = new Consume(consumer);
            if (group == null) {
                List<TopicPartition> parts = partitions(consumer, topic, deadline);
                consumer.assign(parts);
                if (from.equals("earliest")) {
                    consumer.seekToBeginning(parts);
                } else {
                    consumer.seekToEnd(parts);
                }
            } else {
                consumer.subscribe(List.of(topic), c.listener());
            }
            while (count < 0 || printed < count) {
                if (member) {
                    synchronized (stdinClosed) {
                        if (stdinClosed[0]) {
                            break;
                        }
                    }
                }
                long left = deadline - System.currentTimeMillis();
                if (left <= 0) {
                    if (count >= 0) {
                        throw new IllegalStateException("timed out after " + timeoutMs + " ms with "
                            + printed + " of " + count + " records");
                    }
                    break;
                }
                ConsumerRecords<byte[], byte[]> batch =
                    consumer.poll(Duration.ofMillis(Math.min(left, member ? 100 : 500)));
                for (ConsumerRecord<byte[], byte[]> r : batch) {
                    if (count >= 0 && printed >= count) {
                        break;
                    }
                    Json.emit(Json.record(r));
                    printed++;
                    c.pending.put(new TopicPartition(r.topic(), r.partition()),
                        new OffsetAndMetadata(r.offset() + 1, r.leaderEpoch(), ""));
                }
                if (group != null) {
                    c.commit(null);
                }
            }
            if (group != null) {
                c.commit(null);
            }
            consumer.close(CloseOptions.timeout(Duration.ofSeconds(30)));
        }
        Json.done(printed);
    }

    /** group.id, the group protocol and the assignor. */
    private static void groupProps(Flags f, Properties p, String group) {
        p.put("group.id", group);
        String protocol = f.oneOf("group-protocol", "classic", "classic", "consumer");
        p.put("group.protocol", protocol);
        String assignor = f.oneOf("assignor", null,
            "range", "roundrobin", "sticky", "cooperative-sticky", "uniform");
        String instance = f.opt("group-instance-id");
        if (instance != null) {
            p.put("group.instance.id", instance);
        }
        String session = f.opt("session-timeout-ms");
        if (protocol.equals("classic")) {
            if (session != null) {
                p.put("session.timeout.ms", session);
            }
            if (assignor != null) {
                p.put("partition.assignment.strategy", classicAssignor(assignor));
            }
        } else {
            if (session != null) {
                throw new IllegalArgumentException(
                    "--session-timeout-ms is a broker setting under --group-protocol consumer");
            }
            // Server-side assignors are "uniform" and "range"; the client-side
            // names all map to uniform, the sticky one of the two.
            if (assignor != null) {
                p.put("group.remote.assignor", assignor.equals("range") ? "range" : "uniform");
            }
        }
    }

    private static String classicAssignor(String name) {
        switch (name) {
            case "range": return RangeAssignor.class.getName();
            case "roundrobin": return RoundRobinAssignor.class.getName();
            case "sticky": return StickyAssignor.class.getName();
            case "cooperative-sticky": return CooperativeStickyAssignor.class.getName();
            default: throw new IllegalArgumentException(
                "--assignor " + name + " exists only under --group-protocol consumer");
        }
    }

    /** Commits pending offsets (only those of {@code only}, when given). */
    private void commit(Collection<TopicPartition> only) {
        Map<TopicPartition, OffsetAndMetadata> now = new HashMap<>(pending);
        if (only != null) {
            now.keySet().retainAll(only);
        }
        if (now.isEmpty()) {
            return;
        }
        try {
            consumer.commitSync(now);
            now.keySet().forEach(pending::remove);
        } catch (RebalanceInProgressException e) {
            // Kept; the next poll finishes the rebalance and we try again
            // (or the revocation callback commits them).
            System.err.println("commit deferred: " + e.getMessage());
        } catch (CommitFailedException e) {
            // The partitions moved on without us: the new owner re-reads them.
            System.err.println("commit failed, offsets dropped: " + e.getMessage());
            now.keySet().forEach(pending::remove);
        }
    }

    private ConsumerRebalanceListener listener() {
        return new ConsumerRebalanceListener() {
            @Override
            public void onPartitionsRevoked(Collection<TopicPartition> parts) {
                commit(parts);
                Json.event("revoked", parts);
            }

            @Override
            public void onPartitionsAssigned(Collection<TopicPartition> parts) {
                Json.event("assigned", parts);
            }

            @Override
            public void onPartitionsLost(Collection<TopicPartition> parts) {
                parts.forEach(pending::remove);
                Json.event("lost", parts);
            }
        };
    }

    /** Every partition of {@code topic}, waiting for metadata until the deadline. */
    static List<TopicPartition> partitions(KafkaConsumer<?, ?> consumer, String topic, long deadline)
        throws InterruptedException {
        while (true) {
            List<PartitionInfo> infos = consumer.partitionsFor(topic);
            if (infos != null && !infos.isEmpty()) {
                List<TopicPartition> out = new ArrayList<>();
                for (PartitionInfo pi : infos) {
                    out.add(new TopicPartition(topic, pi.partition()));
                }
                out.sort((a, b) -> Integer.compare(a.partition(), b.partition()));
                return out;
            }
            if (System.currentTimeMillis() >= deadline) {
                throw new IllegalStateException("no metadata for topic " + topic);
            }
            Thread.sleep(200);
        }
    }

    /** Reads and discards a stream until it ends. */
    static void drain(InputStream in) {
        byte[] buf = new byte[4096];
        try {
            while (in.read(buf) >= 0) {
                // discard
            }
        } catch (Exception ignored) {
            // a broken stdin counts as closed
        }
    }
}
