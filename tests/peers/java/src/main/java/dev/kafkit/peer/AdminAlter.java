package dev.kafkit.peer;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialAlteration;
import org.apache.kafka.clients.admin.UserScramCredentialDeletion;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.quota.ClientQuotaAlteration;
import org.apache.kafka.common.quota.ClientQuotaEntity;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

/**
 * The admin subcommands that change the cluster. Each prints
 * {@code {"ok":true,...}} once the broker has accepted the change.
 */
final class AdminAlter {
    private AdminAlter() {}

    static ObjectNode run(String sub, Flags f, Properties props) throws Exception {
        switch (sub) {
            case "create-topic": return createTopic(f, props);
            case "create-acl": return createAcl(f, props);
            case "alter-scram": return alterScram(f, props);
            case "alter-quota": return alterQuota(f, props);
            case "alter-group-offsets": return alterGroupOffsets(f, props);
            default: throw new IllegalArgumentException("unknown admin subcommand: " + sub);
        }
    }

    private static String upper(String s) {
        return s.toUpperCase(Locale.ROOT).replace('-', '_');
    }

    private static ObjectNode ok() {
        ObjectNode o = Json.obj();
        o.put("ok", true);
        return o;
    }

    /** {@code --topic T --partitions N [--replication-factor R] [--config k=v]...} */
    private static ObjectNode createTopic(Flags f, Properties props) throws Exception {
        String topic = f.req("topic");
        int partitions = Math.toIntExact(f.reqNum("partitions"));
        String rf = f.opt("replication-factor");
        Map<String, String> configs = f.pairs("config");
        NewTopic nt = new NewTopic(topic, Optional.of(partitions),
            rf == null ? Optional.empty() : Optional.of(Short.parseShort(rf)));
        nt.configs(configs);
        try (Admin admin = AdminCmd.open(f, props)) {
            admin.createTopics(List.of(nt)).all().get();
        }
        ObjectNode o = ok();
        o.put("topic", topic);
        return o;
    }

    /**
     * {@code --principal User:x (--topic T | --group G) --operation READ
     * --permission ALLOW [--host *] [--pattern-type LITERAL|PREFIXED]}
     */
    private static ObjectNode createAcl(Flags f, Properties props) throws Exception {
        String principal = f.req("principal");
        String topic = f.opt("topic");
        String group = f.opt("group");
        if ((topic == null) == (group == null)) {
            throw new IllegalArgumentException("create-acl wants exactly one of --topic T or --group G");
        }
        AclOperation op = AclOperation.fromString(upper(f.req("operation")));
        AclPermissionType perm = AclPermissionType.fromString(upper(f.req("permission")));
        PatternType pattern = PatternType.fromString(upper(f.str("pattern-type", "LITERAL")));
        if (op == AclOperation.UNKNOWN || op == AclOperation.ANY) {
            throw new IllegalArgumentException("unknown --operation " + f.opt("operation"));
        }
        if (perm == AclPermissionType.UNKNOWN || perm == AclPermissionType.ANY) {
            throw new IllegalArgumentException("unknown --permission " + f.opt("permission"));
        }
        if (pattern != PatternType.LITERAL && pattern != PatternType.PREFIXED) {
            throw new IllegalArgumentException("--pattern-type wants LITERAL or PREFIXED");
        }
        ResourcePattern res = topic != null
            ? new ResourcePattern(ResourceType.TOPIC, topic, pattern)
            : new ResourcePattern(ResourceType.GROUP, group, pattern);
        AclBinding binding = new AclBinding(res,
            new AccessControlEntry(principal, f.str("host", "*"), op, perm));
        try (Admin admin = AdminCmd.open(f, props)) {
            admin.createAcls(List.of(binding)).all().get();
        }
        return ok();
    }

    /**
     * {@code --user U --password P [--mechanism SCRAM-SHA-256|SCRAM-SHA-512]
     * [--iterations 4096]}, or {@code --user U --mechanism M --delete true}.
     */
    private static ObjectNode alterScram(Flags f, Properties props) throws Exception {
        String user = f.req("user");
        String mechName = f.str("mechanism", "SCRAM-SHA-256");
        ScramMechanism mech = ScramMechanism.fromMechanismName(mechName);
        if (mech == ScramMechanism.UNKNOWN) {
            throw new IllegalArgumentException("unknown --mechanism " + mechName);
        }
        UserScramCredentialAlteration alteration;
        if (f.bool("delete", false)) {
            alteration = new UserScramCredentialDeletion(user, mech);
        } else {
            int iterations = f.intNum("iterations", 4096);
            alteration = new UserScramCredentialUpsertion(user,
                new ScramCredentialInfo(mech, iterations), f.req("password"));
        }
        try (Admin admin = AdminCmd.open(f, props)) {
            admin.alterUserScramCredentials(List.of(alteration)).all().get();
        }
        return ok();
    }

    /**
     * {@code --user U --key producer_byte_rate [--value 1024]}: sets a user
     * quota, or removes it when --value is absent or {@code null}.
     */
    private static ObjectNode alterQuota(Flags f, Properties props) throws Exception {
        String user = f.req("user");
        String key = f.req("key");
        String value = f.opt("value");
        Double v = value == null || value.equals("null") ? null : Double.valueOf(value);
        ClientQuotaEntity entity = new ClientQuotaEntity(Map.of(ClientQuotaEntity.USER, user));
        ClientQuotaAlteration alteration =
            new ClientQuotaAlteration(entity, List.of(new ClientQuotaAlteration.Op(key, v)));
        try (Admin admin = AdminCmd.open(f, props)) {
            admin.alterClientQuotas(List.of(alteration)).all().get();
        }
        return ok();
    }

    /** {@code --group G --topic T --partition p --offset o}; the group must be empty. */
    private static ObjectNode alterGroupOffsets(Flags f, Properties props) throws Exception {
        String group = f.req("group");
        TopicPartition tp = new TopicPartition(f.req("topic"), Math.toIntExact(f.reqNum("partition")));
        long offset = f.reqNum("offset");
        try (Admin admin = AdminCmd.open(f, props)) {
            admin.alterConsumerGroupOffsets(group, Map.of(tp, new OffsetAndMetadata(offset))).all().get();
        }
        return ok();
    }
}
