package dev.kafkit.peer;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Future;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;

/**
 * {@code txn-produce}: K transactions of M keyless records each, spread
 * round-robin over the partitions. Record n of transaction i has the UTF-8
 * value {@code "i-n"}. Transaction i is aborted when
 * {@code i % A == A - 1} (never when A is 0), committed otherwise.
 * Prints {@code {"txn":i,"committed":bool,"count":M}} after each one and
 * ends with {@code {"done":true,"count":<records in committed transactions>,
 * "transactions":K,"aborted":<aborted transactions>}}.
 */
final class Txn {
    private Txn() {}

    static void run(Flags f) throws Exception {
        String topic = f.req("topic");
        String txnId = f.req("transactional-id");
        long transactions = f.reqNum("transactions");
        long perTxn = f.reqNum("per-txn");
        long abortEvery = f.num("abort-every", 0);
        if (transactions < 0 || perTxn < 0 || abortEvery < 0) {
            throw new IllegalArgumentException("--transactions, --per-txn and --abort-every must be >= 0");
        }
        Properties props = Produce.producerProps(f);
        if (!props.get("acks").equals("all") || props.get("enable.idempotence").equals("false")) {
            throw new IllegalArgumentException("transactions need --acks all and --idempotent true");
        }
        props.put("transactional.id", txnId);
        props.put("partitioner.class", org.apache.kafka.clients.producer.RoundRobinPartitioner.class.getName());
        String timeout = f.opt("transaction-timeout-ms");
        if (timeout != null) {
            props.put("transaction.timeout.ms", timeout);
        }
        f.applyOverrides(props);
        f.finish();

        long committedRecords = 0;
        long aborted = 0;
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
            producer.initTransactions();
            for (long i = 0; i < transactions; i++) {
                boolean abort = abortEvery > 0 && i % abortEvery == abortEvery - 1;
                producer.beginTransaction();
                List<Future<RecordMetadata>> acks = new ArrayList<>();
                for (long n = 0; n < perTxn; n++) {
                    byte[] value = (i + "-" + n).getBytes(StandardCharsets.UTF_8);
                    acks.add(producer.send(new ProducerRecord<>(topic, null, value)));
                }
                if (abort) {
                    // Let the records reach the log first, so that a reader
                    // really has aborted data to skip.
                    producer.flush();
                    producer.abortTransaction();
                    aborted++;
                } else {
                    producer.commitTransaction();
                    committedRecords += perTxn;
                }
                for (Future<RecordMetadata> a : acks) {
                    a.get(); // surfaces any send error of this transaction
                }
                ObjectNode o = Json.obj();
                o.put("txn", i);
                o.put("committed", !abort);
                o.put("count", perTxn);
                Json.emit(o);
            }
            producer.close(Duration.ofSeconds(30));
        }
        ObjectNode done = Json.obj();
        done.put("done", true);
        done.put("count", committedRecords);
        done.put("transactions", transactions);
        done.put("aborted", aborted);
        Json.emit(done);
    }
}
