package dev.kafkit.peer;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.consumer.AcknowledgeType;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaShareConsumer;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicIdPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * {@code share-consume}: a share-group member (KafkaShareConsumer) in
 * explicit acknowledgement mode. Every printed record is acknowledged with
 * {@code --ack} (accept, release or reject) and the acknowledgements are
 * committed after each poll batch; records of a batch past {@code --count}
 * are released unprinted. Before joining, the group's
 * {@code share.auto.offset.reset} is set to {@code --from} (default
 * earliest, so records produced before the group existed are delivered).
 */
final class ShareConsume {
    private ShareConsume() {}

    static void run(Flags f) throws Exception {
        String topic = f.req("topic");
        String group = f.req("group");
        long count = f.reqNum("count");
        long timeoutMs = f.num("timeout-ms", 60_000);
        String ackName = f.oneOf("ack", "accept", "accept", "release", "reject");
        AcknowledgeType ack = AcknowledgeType.valueOf(ackName.toUpperCase());
        String from = f.oneOf("from", "earliest", "earliest", "latest", "keep");
        Properties props = f.clientBase();
        Properties adminProps = (Properties) props.clone();
        props.put("group.id", group);
        props.put("key.deserializer", ByteArrayDeserializer.class.getName());
        props.put("value.deserializer", ByteArrayDeserializer.class.getName());
        props.put("share.acknowledgement.mode", "explicit");
        f.applyOverrides(props);
        f.applyOverrides(adminProps);
        f.finish();

        if (!from.equals("keep")) {
            setAutoOffsetReset(adminProps, group, from);
        }

        long deadline = System.currentTimeMillis() + timeoutMs;
        long printed = 0;
        try (KafkaShareConsumer<byte[], byte[]> consumer = new KafkaShareConsumer<>(props)) {
            consumer.subscribe(List.of(topic));
            while (printed < count) {
                long left = deadline - System.currentTimeMillis();
                if (left <= 0) {
                    throw new IllegalStateException("timed out after " + timeoutMs + " ms with "
                        + printed + " of " + count + " records");
                }
                ConsumerRecords<byte[], byte[]> batch = consumer.poll(Duration.ofMillis(Math.min(left, 500)));
                for (ConsumerRecord<byte[], byte[]> r : batch) {
                    if (printed >= count) {
                        consumer.acknowledge(r, AcknowledgeType.RELEASE);
                        continue;
                    }
                    ObjectNode o = Json.record(r);
                    Optional<Short> dc = r.deliveryCount();
                    Json.putOpt(o, "delivery_count", dc);
                    Json.emit(o);
                    consumer.acknowledge(r, ack);
                    printed++;
                }
                if (!batch.isEmpty()) {
                    report(consumer.commitSync());
                }
            }
            consumer.close(Duration.ofSeconds(30));
        }
        Json.done(printed);
    }

    /** Logs per-partition acknowledgement failures to stderr. */
    private static void report(Map<TopicIdPartition, Optional<KafkaException>> result) {
        result.forEach((tp, err) -> err.ifPresent(e ->
            System.err.println("acknowledgement failed for " + tp + ": " + e)));
    }

    /** Sets the share group's share.auto.offset.reset group config. */
    private static void setAutoOffsetReset(Properties adminProps, String group, String value)
        throws Exception {
        try (Admin admin = Admin.create(adminProps)) {
            ConfigResource res = new ConfigResource(ConfigResource.Type.GROUP, group);
            AlterConfigOp op = new AlterConfigOp(
                new ConfigEntry("share.auto.offset.reset", value), AlterConfigOp.OpType.SET);
            admin.incrementalAlterConfigs(Map.of(res, List.of(op))).all().get();
        }
    }
}
