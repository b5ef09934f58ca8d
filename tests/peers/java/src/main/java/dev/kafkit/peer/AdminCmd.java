package dev.kafkit.peer;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.admin.UserScramCredentialsDescription;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.quota.ClientQuotaEntity;
import org.apache.kafka.common.quota.ClientQuotaFilter;

/**
 * {@code admin SUBCOMMAND}: one Admin client call, one JSON line out. The
 * read-only subcommands live here; the ones that change the cluster are in
 * {@link AdminAlter}.
 */
final class AdminCmd {
    private AdminCmd() {}

    static void run(String sub, Flags f) throws Exception {
        Properties props = f.clientBase();
        ObjectNode out;
        switch (sub) {
            case "describe-topic": out = describeTopic(f, props); break;
            case "describe-configs": out = describeConfigs(f, props); break;
            case "list-acls": out = listAcls(f, props); break;
            case "describe-scram": out = describeScram(f, props); break;
            case "describe-quotas": out = describeQuotas(f, props); break;
            case "group-offsets": out = groupOffsets(f, props); break;
            default: out = AdminAlter.run(sub, f, props); break;
        }
        Json.emit(out);
    }

    /**
     * Opens the Admin client once the subcommand has read its own flags:
     * applies {@code --client-config} overrides and rejects unknown flags.
     */
    static Admin open(Flags f, Properties props) {
        f.applyOverrides(props);
        f.finish();
        return Admin.create(props);
    }

    private static ObjectNode describeTopic(Flags f, Properties props) throws Exception {
        String topic = f.req("topic");
        try (Admin admin = open(f, props)) {
            TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
            ObjectNode o = Json.obj();
            o.put("topic", topic);
            o.put("partitions", d.partitions().size());
            o.put("replication_factor", d.partitions().isEmpty() ? 0 : d.partitions().get(0).replicas().size());
            return o;
        }
    }

    /**
     * {@code {"configs":{name:value}}}: every entry whose value does not come
     * from the built-in default (topic overrides, dynamic broker settings and
     * static broker settings). Sensitive values are null.
     */
    private static ObjectNode describeConfigs(Flags f, Properties props) throws Exception {
        String topic = f.opt("topic");
        String broker = f.opt("broker");
        if ((topic == null) == (broker == null)) {
            throw new IllegalArgumentException("describe-configs wants exactly one of --topic T or --broker ID");
        }
        ConfigResource res = topic != null
            ? new ConfigResource(ConfigResource.Type.TOPIC, topic)
            : new ConfigResource(ConfigResource.Type.BROKER, broker);
        try (Admin admin = open(f, props)) {
            Config config = admin.describeConfigs(List.of(res)).all().get().get(res);
            Map<String, String> sorted = new TreeMap<>();
            for (ConfigEntry e : config.entries()) {
                if (e.source() != ConfigEntry.ConfigSource.DEFAULT_CONFIG) {
                    sorted.put(e.name(), e.value());
                }
            }
            ObjectNode o = Json.obj();
            ObjectNode c = o.putObject("configs");
            sorted.forEach(c::put);
            return o;
        }
    }

    private static ObjectNode listAcls(Flags f, Properties props) throws Exception {
        try (Admin admin = open(f, props)) {
            List<AclBinding> acls = new ArrayList<>(admin.describeAcls(AclBindingFilter.ANY).values().get());
            acls.sort(Comparator.comparing(AclBinding::toString));
            ObjectNode o = Json.obj();
            ArrayNode a = o.putArray("acls");
            for (AclBinding b : acls) {
                ObjectNode e = a.addObject();
                e.put("resource_type", b.pattern().resourceType().name());
                e.put("name", b.pattern().name());
                e.put("pattern_type", b.pattern().patternType().name());
                e.put("principal", b.entry().principal());
                e.put("host", b.entry().host());
                e.put("operation", b.entry().operation().name());
                e.put("permission", b.entry().permissionType().name());
            }
            return o;
        }
    }

    private static ObjectNode describeScram(Flags f, Properties props) throws Exception {
        try (Admin admin = open(f, props)) {
            Map<String, UserScramCredentialsDescription> users =
                new TreeMap<>(admin.describeUserScramCredentials().all().get());
            ObjectNode o = Json.obj();
            ArrayNode a = o.putArray("users");
            users.forEach((name, d) -> {
                ObjectNode u = a.addObject();
                u.put("user", name);
                ArrayNode ms = u.putArray("mechanisms");
                List<ScramCredentialInfo> infos = new ArrayList<>(d.credentialInfos());
                infos.sort(Comparator.comparing(i -> i.mechanism().mechanismName()));
                for (ScramCredentialInfo i : infos) {
                    ObjectNode m = ms.addObject();
                    m.put("mechanism", i.mechanism().mechanismName());
                    m.put("iterations", i.iterations());
                }
            });
            return o;
        }
    }

    /**
     * {@code {"quotas":[{"entity":{type:name|null},"values":{key:number}}]}};
     * a null entity name is the default entity. Values are doubles.
     */
    private static ObjectNode describeQuotas(Flags f, Properties props) throws Exception {
        try (Admin admin = open(f, props)) {
            Map<ClientQuotaEntity, Map<String, Double>> all =
                admin.describeClientQuotas(ClientQuotaFilter.all()).entities().get();
            List<ClientQuotaEntity> entities = new ArrayList<>(all.keySet());
            entities.sort(Comparator.comparing(e -> new TreeMap<>(e.entries()).toString()));
            ObjectNode o = Json.obj();
            ArrayNode a = o.putArray("quotas");
            for (ClientQuotaEntity e : entities) {
                ObjectNode q = a.addObject();
                ObjectNode ent = q.putObject("entity");
                new TreeMap<>(e.entries()).forEach(ent::put);
                ObjectNode vals = q.putObject("values");
                new TreeMap<>(all.get(e)).forEach(vals::put);
            }
            return o;
        }
    }

    private static ObjectNode groupOffsets(Flags f, Properties props) throws Exception {
        String group = f.req("group");
        try (Admin admin = open(f, props)) {
            Map<TopicPartition, OffsetAndMetadata> offsets =
                admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
            List<TopicPartition> parts = new ArrayList<>(offsets.keySet());
            parts.sort(Comparator.comparing(TopicPartition::topic).thenComparingInt(TopicPartition::partition));
            ObjectNode o = Json.obj();
            ArrayNode a = o.putArray("offsets");
            for (TopicPartition tp : parts) {
                OffsetAndMetadata om = offsets.get(tp);
                if (om == null) {
                    continue;
                }
                ObjectNode e = a.addObject();
                e.put("topic", tp.topic());
                e.put("partition", tp.partition());
                e.put("offset", om.offset());
            }
            return o;
        }
    }
}
