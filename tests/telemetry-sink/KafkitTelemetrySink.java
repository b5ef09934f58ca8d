// A broker-side client-telemetry exporter (KIP-714) for kafkit's tests.
//
// The broker loads it as a metrics reporter (`metric.reporters`); because
// it also provides a ClientTelemetryExporter, the broker advertises
// GetTelemetrySubscriptions and PushTelemetry and hands it every pushed
// payload, decompressed. It parses each payload with the OTLP classes that
// kafka-clients bundles (so a payload that is not valid OTLP fails the
// push with INVALID_RECORD) and appends one JSON line per push to the file
// named by the broker setting `kafkit.telemetry.file`.
//
// The test harness compiles it with javac against the broker's own jars
// and puts the class directory on the broker's class path. It uses only
// the JDK and kafka-clients.

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Map;

import org.apache.kafka.common.metrics.KafkaMetric;
import org.apache.kafka.common.metrics.MetricsReporter;
import org.apache.kafka.server.telemetry.ClientTelemetryContext;
import org.apache.kafka.server.telemetry.ClientTelemetryExporter;
import org.apache.kafka.server.telemetry.ClientTelemetryExporterProvider;
import org.apache.kafka.server.telemetry.ClientTelemetryPayload;
import org.apache.kafka.shaded.io.opentelemetry.proto.common.v1.AnyValue;
import org.apache.kafka.shaded.io.opentelemetry.proto.common.v1.KeyValue;
import org.apache.kafka.shaded.io.opentelemetry.proto.metrics.v1.Metric;
import org.apache.kafka.shaded.io.opentelemetry.proto.metrics.v1.MetricsData;
import org.apache.kafka.shaded.io.opentelemetry.proto.metrics.v1.NumberDataPoint;
import org.apache.kafka.shaded.io.opentelemetry.proto.metrics.v1.ResourceMetrics;
import org.apache.kafka.shaded.io.opentelemetry.proto.metrics.v1.ScopeMetrics;

public class KafkitTelemetrySink implements MetricsReporter, ClientTelemetryExporterProvider {
    private Path file;

    @Override
    public void configure(Map<String, ?> configs) {
        Object path = configs.get("kafkit.telemetry.file");
        if (path == null) {
            throw new IllegalArgumentException("kafkit.telemetry.file is not set");
        }
        file = Paths.get(path.toString());
    }

    @Override
    public void init(List<KafkaMetric> metrics) {}

    @Override
    public void metricChange(KafkaMetric metric) {}

    @Override
    public void metricRemoval(KafkaMetric metric) {}

    @Override
    public void close() {}

    @Override
    public ClientTelemetryExporter clientTelemetryExporter() {
        return new ClientTelemetryExporter() {
            @Override
            public void exportMetrics(ClientTelemetryContext context, ClientTelemetryPayload payload) {
                export(context, payload);
            }
        };
    }

    private synchronized void export(ClientTelemetryContext context, ClientTelemetryPayload payload) {
        ByteBuffer data = payload.data().duplicate();
        byte[] bytes = new byte[data.remaining()];
        data.get(bytes);
        MetricsData metrics;
        try {
            metrics = MetricsData.parseFrom(bytes);
        } catch (IOException e) {
            throw new IllegalArgumentException("not OTLP MetricsData: " + e.getMessage(), e);
        }
        StringBuilder line = new StringBuilder();
        // The instance id in hex, 32 digits, as the test compares it.
        String instance = String.format("%016x%016x",
            payload.clientInstanceId().getMostSignificantBits(),
            payload.clientInstanceId().getLeastSignificantBits());
        line.append("{\"instance\":").append(quote(instance));
        line.append(",\"terminating\":").append(payload.isTerminating());
        line.append(",\"content_type\":").append(quote(payload.contentType()));
        line.append(",\"client_id\":")
            .append(quote(context.authorizableRequestContext().clientId()));
        line.append(",\"push_interval_ms\":").append(context.pushIntervalMs());
        line.append(",\"bytes\":").append(bytes.length);
        line.append(",\"resource\":{");
        boolean first = true;
        for (ResourceMetrics rm : metrics.getResourceMetricsList()) {
            for (KeyValue kv : rm.getResource().getAttributesList()) {
                if (!first) line.append(',');
                first = false;
                line.append(quote(kv.getKey())).append(':').append(value(kv.getValue()));
            }
        }
        line.append("},\"scopes\":[");
        first = true;
        for (ResourceMetrics rm : metrics.getResourceMetricsList()) {
            for (ScopeMetrics sm : rm.getScopeMetricsList()) {
                if (!first) line.append(',');
                first = false;
                line.append(quote(sm.getScope().getName() + " " + sm.getScope().getVersion()));
            }
        }
        line.append("],\"metrics\":[");
        first = true;
        for (ResourceMetrics rm : metrics.getResourceMetricsList()) {
            for (ScopeMetrics sm : rm.getScopeMetricsList()) {
                for (Metric m : sm.getMetricsList()) {
                    if (!first) line.append(',');
                    first = false;
                    appendMetric(line, m);
                }
            }
        }
        line.append("]}\n");
        try {
            Files.write(file, line.toString().getBytes(StandardCharsets.UTF_8),
                StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new IllegalStateException("cannot write " + file + ": " + e.getMessage(), e);
        }
    }

    private static void appendMetric(StringBuilder line, Metric m) {
        line.append("{\"name\":").append(quote(m.getName()));
        List<NumberDataPoint> points;
        switch (m.getDataCase()) {
            case GAUGE:
                line.append(",\"kind\":\"gauge\"");
                points = m.getGauge().getDataPointsList();
                break;
            case SUM:
                line.append(",\"kind\":\"sum\",\"temporality\":")
                    .append(m.getSum().getAggregationTemporalityValue())
                    .append(",\"monotonic\":").append(m.getSum().getIsMonotonic());
                points = m.getSum().getDataPointsList();
                break;
            default:
                line.append(",\"kind\":").append(quote(m.getDataCase().toString()));
                points = List.of();
        }
        line.append(",\"points\":[");
        boolean first = true;
        for (NumberDataPoint p : points) {
            if (!first) line.append(',');
            first = false;
            line.append("{\"start\":").append(Long.toUnsignedString(p.getStartTimeUnixNano()));
            line.append(",\"time\":").append(Long.toUnsignedString(p.getTimeUnixNano()));
            switch (p.getValueCase()) {
                case AS_INT:
                    line.append(",\"int\":").append(p.getAsInt());
                    break;
                case AS_DOUBLE:
                    line.append(",\"double\":").append(p.getAsDouble());
                    break;
                default:
                    break;
            }
            line.append(",\"attributes\":{");
            boolean firstAttribute = true;
            for (KeyValue kv : p.getAttributesList()) {
                if (!firstAttribute) line.append(',');
                firstAttribute = false;
                line.append(quote(kv.getKey())).append(':').append(value(kv.getValue()));
            }
            line.append("}}");
        }
        line.append("]}");
    }

    private static String value(AnyValue v) {
        switch (v.getValueCase()) {
            case STRING_VALUE:
                return quote(v.getStringValue());
            case INT_VALUE:
                return Long.toString(v.getIntValue());
            case BOOL_VALUE:
                return Boolean.toString(v.getBoolValue());
            case DOUBLE_VALUE:
                return Double.toString(v.getDoubleValue());
            default:
                return quote(v.getValueCase().toString());
        }
    }

    private static String quote(String s) {
        if (s == null) return "null";
        StringBuilder out = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') {
                out.append('\\').append(c);
            } else if (c < 0x20) {
                out.append(String.format("\\u%04x", (int) c));
            } else {
                out.append(c);
            }
        }
        return out.append('"').toString();
    }
}
