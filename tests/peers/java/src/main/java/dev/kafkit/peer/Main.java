package dev.kafkit.peer;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.common.utils.AppInfoParser;

/**
 * Entry point: {@code java -jar kafkit-peer-java.jar COMMAND [flags]}.
 * Stdout carries JSON lines only; diagnostics go to stderr. Any failure
 * prints {@code {"error":"..."}} and exits with status 1. Without a command
 * it prints the usage to stderr and exits with status 2.
 */
public final class Main {
    private static final String USAGE = String.join("\n",
        "usage: java -jar kafkit-peer-java.jar COMMAND [flags]",
        "commands:",
        "  produce          --brokers B --topic T [--codec C] [--acks all|1|0] [--idempotent true|false]",
        "                   [--partitioner default|roundrobin]      (records as JSON lines on stdin)",
        "  consume          --brokers B --topic T --count N [--timeout-ms T]",
        "                   (--from earliest|latest | --group G [--assignor A] [--group-protocol P])",
        "                   [--isolation read_uncommitted|read_committed]",
        "  group-member     like consume --group, but runs until stdin closes (or --count)",
        "  txn-produce      --brokers B --topic T --transactional-id X --transactions K --per-txn M",
        "                   [--abort-every A]",
        "  share-consume    --brokers B --topic T --group G --count N [--ack accept|release|reject]",
        "  admin SUB        describe-topic | describe-configs | list-acls | describe-scram |",
        "                   describe-quotas | group-offsets | create-topic | create-acl |",
        "                   alter-scram | alter-quota | alter-group-offsets",
        "  bench-produce    --brokers B --topic T --count N --size B [--linger-ms L] [--acks A]",
        "  bench-consume    --brokers B --topic T --count N",
        "  partition-for-key --partitions N       (base64 keys or null, one a line, on stdin)",
        "  version",
        "every client command also takes --client-id ID and --client-config k=v (repeatable).",
        "see README.md for the JSON formats.");

    private Main() {}

    public static void main(String[] argv) {
        if (argv.length == 0 || argv[0].equals("-h") || argv[0].equals("--help")) {
            System.err.println(USAGE);
            System.exit(argv.length == 0 ? 2 : 0);
        }
        int status;
        try {
            run(argv[0], Arrays.asList(argv).subList(1, argv.length));
            status = 0;
        } catch (Throwable t) {
            Throwable root = unwrap(t);
            ObjectNode err = Json.obj();
            err.put("error", describe(root));
            try {
                Json.emit(err);
            } catch (RuntimeException ignored) {
                // stdout is gone; stderr still has the story
            }
            System.err.println("kafkit-peer-java: " + argv[0] + " failed:");
            if (ours(root)) {
                System.err.println(root.getMessage()); // bad usage: no stack needed
            } else {
                root.printStackTrace();
            }
            status = 1;
        }
        // Client threads (and the stdin reader) must not keep the JVM alive.
        System.exit(status);
    }

    private static void run(String command, List<String> args) throws Exception {
        switch (command) {
            case "produce":
                Produce.run(new Flags(args));
                break;
            case "consume":
                Consume.run(new Flags(args), false);
                break;
            case "group-member":
                Consume.run(new Flags(args), true);
                break;
            case "txn-produce":
                Txn.run(new Flags(args));
                break;
            case "share-consume":
                ShareConsume.run(new Flags(args));
                break;
            case "admin":
                if (args.isEmpty()) {
                    throw new IllegalArgumentException("admin needs a subcommand");
                }
                AdminCmd.run(args.get(0), new Flags(args.subList(1, args.size())));
                break;
            case "bench-produce":
                Bench.produce(new Flags(args));
                break;
            case "bench-consume":
                Bench.consume(new Flags(args));
                break;
            case "partition-for-key":
                Partition.run(new Flags(args));
                break;
            case "version": {
                new Flags(args).finish();
                ObjectNode o = Json.obj();
                o.put("client", "java");
                o.put("kafka_clients", AppInfoParser.getVersion());
                Json.emit(o);
                break;
            }
            default:
                System.err.println(USAGE);
                throw new IllegalArgumentException("unknown command: " + command);
        }
    }

    /** Strips the wrappers futures put around the exception that matters. */
    static Throwable unwrap(Throwable t) {
        while ((t instanceof ExecutionException || t instanceof CompletionException)
            && t.getCause() != null) {
            t = t.getCause();
        }
        return t;
    }

    private static boolean ours(Throwable t) {
        StackTraceElement[] st = t.getStackTrace();
        return (t instanceof IllegalArgumentException || t instanceof IllegalStateException)
            && st.length > 0 && st[0].getClassName().startsWith("dev.kafkit.peer.");
    }

    private static String describe(Throwable t) {
        String msg = t.getMessage();
        if (msg != null && ours(t)) {
            return msg; // our own usage and outcome checks read best bare
        }
        return t.getClass().getSimpleName() + (msg == null ? "" : ": " + msg);
    }
}
