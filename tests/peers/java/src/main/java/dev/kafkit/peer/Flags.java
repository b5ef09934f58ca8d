package dev.kafkit.peer;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;

/**
 * Command-line flags of the form {@code --name value} or {@code --name=value}.
 * A flag may repeat ({@code --config a=b --config c=d}). Every flag a command
 * reads is marked used; {@link #finish()} rejects the ones nobody read, so a
 * misspelt flag fails loudly instead of being ignored.
 */
final class Flags {
    private final Map<String, List<String>> values = new LinkedHashMap<>();
    private final Set<String> used = new TreeSet<>();

    Flags(List<String> args) {
        for (int i = 0; i < args.size(); i++) {
            String arg = args.get(i);
            if (!arg.startsWith("--") || arg.length() == 2) {
                throw new IllegalArgumentException("unexpected argument: " + arg);
            }
            String name;
            String value;
            int eq = arg.indexOf('=');
            if (eq > 0) {
                name = arg.substring(2, eq);
                value = arg.substring(eq + 1);
            } else {
                name = arg.substring(2);
                if (i + 1 >= args.size()) {
                    throw new IllegalArgumentException("flag --" + name + " needs a value");
                }
                value = args.get(++i);
            }
            values.computeIfAbsent(name, k -> new ArrayList<>()).add(value);
        }
    }

    /** The last value of {@code --name}, or null when absent. */
    String opt(String name) {
        used.add(name);
        List<String> v = values.get(name);
        return v == null ? null : v.get(v.size() - 1);
    }

    String str(String name, String dflt) {
        String v = opt(name);
        return v == null ? dflt : v;
    }

    String req(String name) {
        String v = opt(name);
        if (v == null) {
            throw new IllegalArgumentException("missing required flag --" + name);
        }
        return v;
    }

    /** Every value of a repeatable flag, in order. */
    List<String> all(String name) {
        used.add(name);
        return values.getOrDefault(name, List.of());
    }

    long num(String name, long dflt) {
        String v = opt(name);
        if (v == null) {
            return dflt;
        }
        try {
            return Long.parseLong(v);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--" + name + " wants an integer, got " + v);
        }
    }

    long reqNum(String name) {
        req(name);
        return num(name, 0);
    }

    int intNum(String name, int dflt) {
        return Math.toIntExact(num(name, dflt));
    }

    boolean bool(String name, boolean dflt) {
        String v = opt(name);
        if (v == null) {
            return dflt;
        }
        switch (v) {
            case "true": return true;
            case "false": return false;
            default: throw new IllegalArgumentException("--" + name + " wants true|false, got " + v);
        }
    }

    /** One of {@code choices}, or {@code dflt} when absent. */
    String oneOf(String name, String dflt, String... choices) {
        String v = opt(name);
        if (v == null) {
            return dflt;
        }
        for (String c : choices) {
            if (c.equals(v)) {
                return v;
            }
        }
        throw new IllegalArgumentException(
            "--" + name + " wants one of " + String.join("|", choices) + ", got " + v);
    }

    /** Splits each {@code k=v} value of a repeatable flag into a map. */
    Map<String, String> pairs(String name) {
        Map<String, String> out = new LinkedHashMap<>();
        for (String kv : all(name)) {
            int eq = kv.indexOf('=');
            if (eq <= 0) {
                throw new IllegalArgumentException("--" + name + " wants key=value, got " + kv);
            }
            out.put(kv.substring(0, eq), kv.substring(eq + 1));
        }
        return out;
    }

    /**
     * Client settings every command shares: {@code --brokers} (required),
     * {@code --client-id}, and any number of {@code --client-config k=v}
     * (security settings and the like), applied last so they win.
     */
    Properties clientBase() {
        Properties p = new Properties();
        p.put("bootstrap.servers", req("brokers"));
        String id = opt("client-id");
        if (id != null) {
            p.put("client.id", id);
        }
        return p;
    }

    /** Applies {@code --client-config k=v} overrides onto {@code p}. */
    void applyOverrides(Properties p) {
        p.putAll(pairs("client-config"));
    }

    /** Fails on any flag that no code read. */
    void finish() {
        Set<String> unknown = new TreeSet<>(values.keySet());
        unknown.removeAll(used);
        if (!unknown.isEmpty()) {
            throw new IllegalArgumentException("unknown flag(s): --" + String.join(", --", unknown));
        }
    }
}
