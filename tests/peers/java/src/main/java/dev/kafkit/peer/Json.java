package dev.kafkit.peer;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedOutputStream;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collection;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.TreeMap;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;

/**
 * JSON lines in and out. Stdout carries nothing but one JSON object per
 * line; every line is flushed at once so a test reading the pipe sees it
 * (for example a rebalance event) while the peer keeps running. Byte
 * strings (keys, values, header values) travel as standard base64 with
 * padding, and JSON null stands for a null byte string.
 */
final class Json {
    static final ObjectMapper MAPPER = new ObjectMapper()
        .configure(JsonGenerator.Feature.AUTO_CLOSE_TARGET, false);
    private static final OutputStream STDOUT =
        new BufferedOutputStream(new FileOutputStream(FileDescriptor.out), 1 << 16);

    private Json() {}

    static ObjectNode obj() {
        return MAPPER.createObjectNode();
    }

    static ArrayNode arr() {
        return MAPPER.createArrayNode();
    }

    /** Writes one line to stdout and flushes it. Safe from any thread. */
    static void emit(JsonNode node) {
        synchronized (STDOUT) {
            try {
                STDOUT.write(MAPPER.writeValueAsBytes(node));
                STDOUT.write('\n');
                STDOUT.flush();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }

    static void done(long count) {
        ObjectNode n = obj();
        n.put("done", true);
        n.put("count", count);
        emit(n);
    }

    static JsonNode parse(String line) {
        try {
            return MAPPER.readTree(line);
        } catch (IOException e) {
            throw new IllegalArgumentException("bad JSON input line: " + line, e);
        }
    }

    /** Base64 text, or null for null bytes. */
    static String b64(byte[] bytes) {
        return bytes == null ? null : Base64.getEncoder().encodeToString(bytes);
    }

    /** Decodes a base64 field; a missing field or JSON null gives null. */
    static byte[] unb64(JsonNode node, String what) {
        if (node == null || node.isNull()) {
            return null;
        }
        if (!node.isTextual()) {
            throw new IllegalArgumentException(what + " must be a base64 string or null");
        }
        try {
            return Base64.getDecoder().decode(node.asText());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(what + " is not valid base64: " + node.asText());
        }
    }

    /** {@code [{"key":k,"value":base64|null}, ...]} in record order. */
    static ArrayNode headers(Iterable<Header> headers) {
        ArrayNode a = arr();
        for (Header h : headers) {
            ObjectNode o = a.addObject();
            o.put("key", h.key());
            o.put("value", b64(h.value()));
        }
        return a;
    }

    /** A consumed record as the consume commands print it. */
    static ObjectNode record(ConsumerRecord<byte[], byte[]> r) {
        ObjectNode o = obj();
        o.put("partition", r.partition());
        o.put("offset", r.offset());
        o.put("key", b64(r.key()));
        o.put("value", b64(r.value()));
        o.set("headers", headers(r.headers()));
        o.put("timestamp_ms", r.timestamp());
        return o;
    }

    /** {@code {"event":name,"partitions":[{"topic":t,"partition":p}, ...]}}, sorted. */
    static void event(String name, Collection<TopicPartition> parts) {
        List<TopicPartition> sorted = new ArrayList<>(parts);
        sorted.sort(Comparator.comparing(TopicPartition::topic)
            .thenComparingInt(TopicPartition::partition));
        ObjectNode o = obj();
        o.put("event", name);
        ArrayNode a = o.putArray("partitions");
        for (TopicPartition tp : sorted) {
            ObjectNode p = a.addObject();
            p.put("topic", tp.topic());
            p.put("partition", tp.partition());
        }
        emit(o);
    }

    /** {@code {"settings":{...}}}: the client configs a command set, sorted by name. */
    static void settings(Properties props) {
        ObjectNode o = obj();
        ObjectNode s = o.putObject("settings");
        Map<String, String> sorted = new TreeMap<>();
        props.forEach((k, v) -> sorted.put(String.valueOf(k), String.valueOf(v)));
        sorted.forEach(s::put);
        emit(o);
    }

    /** Puts an Optional number, or JSON null when empty. */
    static void putOpt(ObjectNode o, String field, Optional<? extends Number> v) {
        if (v.isPresent()) {
            o.put(field, v.get().longValue());
        } else {
            o.putNull(field);
        }
    }
}
