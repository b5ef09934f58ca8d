package dev.kafkit.peer;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import org.apache.kafka.common.utils.Utils;

/**
 * {@code partition-for-key --partitions N}: for each stdin line (a base64
 * key, or the word {@code null}) prints {@code {"partition":p}} where p is
 * the Java producer's default partition for a keyed record,
 * {@code toPositive(murmur2(key)) % N}. A null key has no fixed partition
 * (the producer spreads keyless records itself), so it prints
 * {@code {"partition":null}}. An empty line is the empty key (base64 "").
 */
final class Partition {
    private Partition() {}

    static void run(Flags f) throws Exception {
        int partitions = Math.toIntExact(f.reqNum("partitions"));
        f.finish();
        if (partitions <= 0) {
            throw new IllegalArgumentException("--partitions must be positive");
        }
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        long n = 0;
        while ((line = in.readLine()) != null) {
            line = line.trim();
            ObjectNode o = Json.obj();
            if (line.equals("null")) {
                o.putNull("partition");
            } else {
                byte[] key;
                try {
                    key = Base64.getDecoder().decode(line);
                } catch (IllegalArgumentException e) {
                    throw new IllegalArgumentException("line " + n + " is not base64: " + line);
                }
                o.put("partition", partitionFor(key, partitions));
            }
            Json.emit(o);
            n++;
        }
        Json.done(n);
    }

    /** The built-in partitioner's formula for a non-null key. */
    static int partitionFor(byte[] key, int partitions) {
        return Utils.toPositive(Utils.murmur2(key)) % partitions;
    }
}
