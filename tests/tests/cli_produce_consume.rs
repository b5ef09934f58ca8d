//! The `kafkit` tool end to end against tansu: lines produced with keys and
//! headers come back as JSON and through format strings, `--exit` stops at
//! the end of every partition, `-o -N`, `--partition` and `--count` pick
//! the records, errors exit with their documented codes, and `--help`
//! reads for the tool and each subcommand.

mod cli_support;

use cli_support::{kafkit, run};
use kafkit_tests::{TestBroker, unique_topic};
use serde_json::Value;

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?} is not JSON: {e}")))
        .collect()
}

#[test]
fn produced_lines_with_keys_and_headers_come_back_as_json() {
    let broker = TestBroker::start();
    let topic = unique_topic("cli-json");
    broker.create_topic(&topic, 1);

    let produced = kafkit(
        &broker,
        &[
            "produce",
            &topic,
            "-K",
            ":",
            "-H",
            "source=cli-test",
            "-H",
            "n=1",
        ],
        "user-1:hello\nuser-2:from: a colon\nno key here\n",
    )
    .ok();
    assert!(
        produced.stderr.contains("produced 3 records"),
        "summary: {}",
        produced.stderr
    );

    let consumed = kafkit(
        &broker,
        &[
            "consume",
            &topic,
            "--offset",
            "beginning",
            "--exit",
            "--format",
            "json",
        ],
        "",
    )
    .ok();
    let records = json_lines(&consumed.stdout);
    assert_eq!(records.len(), 3, "{consumed:?}");
    let expected = [
        (Value::from("user-1"), "hello"),
        (Value::from("user-2"), "from: a colon"),
        (Value::Null, "no key here"),
    ];
    for (i, (record, (key, value))) in records.iter().zip(expected).enumerate() {
        assert_eq!(record["topic"], topic.as_str());
        assert_eq!(record["partition"], 0);
        assert_eq!(record["offset"], i as i64);
        assert_eq!(record["key"], key);
        assert_eq!(record["value"], value);
        assert_eq!(
            record["headers"],
            serde_json::json!([{"key": "source", "value": "cli-test"}, {"key": "n", "value": "1"}])
        );
        assert!(record["timestamp"].as_i64().unwrap() > 1_600_000_000_000);
    }
    assert!(
        consumed.stderr.contains("consumed 3 records"),
        "{}",
        consumed.stderr
    );

    let formatted = kafkit(
        &broker,
        &["consume", &topic, "-e", "-q", "-f", "%k=%v (%p@%o)"],
        "",
    )
    .ok();
    assert_eq!(
        formatted.lines(),
        [
            "user-1=hello (0@0)",
            "user-2=from: a colon (0@1)",
            "=no key here (0@2)"
        ]
    );
    assert!(
        formatted.stderr.is_empty(),
        "--quiet prints no summary: {}",
        formatted.stderr
    );
}

#[test]
fn consume_exit_stops_at_the_end_of_every_partition() {
    let broker = TestBroker::start();
    let topic = unique_topic("cli-exit");
    broker.create_topic(&topic, 3);
    let lines: String = (0..30).map(|i| format!("key-{i}:value-{i}\n")).collect();
    kafkit(&broker, &["produce", &topic, "-K", ":", "-q"], &lines).ok();
    // One record for partition 2 alone, written after the others, from a file.
    let file = std::env::temp_dir().join(format!("{topic}.txt"));
    std::fs::write(&file, "last of 2\n").unwrap();
    let path = file.display().to_string();
    kafkit(
        &broker,
        &["produce", &topic, "-p", "2", "-q", "--file", &path],
        "ignored stdin\n",
    )
    .ok();
    std::fs::remove_file(&file).unwrap();
    let bad_partition = kafkit(&broker, &["produce", &topic, "-p", "3"], "x\n");
    assert_eq!(bad_partition.code, Some(4), "{bad_partition:?}");
    let no_file = kafkit(&broker, &["produce", &topic, "--file", &path], "");
    assert_eq!(no_file.code, Some(1), "{no_file:?}");

    let all = kafkit(&broker, &["consume", &topic, "--exit", "-q"], "").ok();
    let mut values = all.lines();
    values.sort_unstable();
    let mut expected: Vec<String> = (0..30).map(|i| format!("value-{i}")).collect();
    expected.push("last of 2".to_owned());
    expected.sort_unstable();
    assert_eq!(values, expected, "every record of every partition, once");

    let tail = kafkit(
        &broker,
        &[
            "consume", &topic, "-p", "2", "-o", "-1", "-e", "-q", "-f", "%p:%v",
        ],
        "",
    )
    .ok();
    assert_eq!(tail.lines(), ["2:last of 2"]);

    let counted = kafkit(&broker, &["consume", &topic, "-c", "4", "-q"], "").ok();
    assert_eq!(
        counted.lines().len(),
        4,
        "--count stops after 4: {counted:?}"
    );

    // Nothing after the end: --exit with --offset end prints nothing and returns.
    let none = kafkit(&broker, &["consume", &topic, "-o", "end", "-e", "-q"], "").ok();
    if !broker.has_tansu_bug("the latest ListOffsets answer is the last batch's first offset + 1") {
        assert_eq!(none.stdout, "");
    }
}

#[test]
fn errors_exit_with_their_documented_codes() {
    let broker = TestBroker::start();
    let missing = unique_topic("cli-missing");

    let consume = kafkit(&broker, &["consume", &missing, "--exit"], "");
    assert_eq!(consume.code, Some(4), "unknown topic: {consume:?}");
    assert!(
        consume.stderr.contains("UNKNOWN_TOPIC_OR_PARTITION"),
        "{}",
        consume.stderr
    );
    assert!(consume.stdout.is_empty());

    let produce = kafkit(&broker, &["produce", &missing], "x\n");
    assert_eq!(produce.code, Some(4), "{produce:?}");

    let topic = unique_topic("cli-codes");
    broker.create_topic(&topic, 1);
    let partition = kafkit(&broker, &["consume", &topic, "-p", "7", "-e"], "");
    assert_eq!(partition.code, Some(4), "unknown partition: {partition:?}");

    // Nothing listens on port 1: a connection error.
    let refused = run(&["-b", "127.0.0.1:1", "topics", "list"], "");
    assert_eq!(refused.code, Some(3), "{refused:?}");
    assert!(refused.stderr.contains("127.0.0.1:1"), "{}", refused.stderr);

    let usage = run(&["consume", &topic, "--offset", "middle"], "");
    assert_eq!(usage.code, Some(2), "{usage:?}");
    let exclusive = run(&["consume", &topic, "-p", "0", "--group", "g"], "");
    assert_eq!(exclusive.code, Some(2), "{exclusive:?}");
    let group_offset = kafkit(&broker, &["consume", &topic, "-G", "g", "-o", "5"], "");
    assert_eq!(group_offset.code, Some(2), "{group_offset:?}");
}

#[test]
fn help_reads_for_the_tool_and_every_subcommand() {
    let top = run(&["--help"], "").ok();
    for needle in [
        "produce",
        "consume",
        "topics",
        "groups",
        "offsets",
        "cluster",
        "Exit codes:",
    ] {
        assert!(
            top.stdout.contains(needle),
            "--help lacks {needle}:\n{}",
            top.stdout
        );
    }
    for needle in [
        "--brokers",
        "KAFKIT_BROKERS",
        "--tls",
        "--insecure-skip-verify",
        "--sasl-mechanism",
    ] {
        assert!(
            top.stdout.contains(needle),
            "--help lacks {needle}:\n{}",
            top.stdout
        );
    }
    let commands: [&[&str]; 12] = [
        &["produce"],
        &["consume"],
        &["topics", "list"],
        &["topics", "describe"],
        &["topics", "create"],
        &["topics", "delete"],
        &["groups", "list"],
        &["groups", "describe"],
        &["groups", "lag"],
        &["groups", "delete"],
        &["offsets"],
        &["cluster", "describe"],
    ];
    for command in commands {
        let mut args = command.to_vec();
        args.push("--help");
        let help = run(&args, "").ok();
        assert!(
            help.stdout.contains("Usage: kafkit"),
            "{command:?}:\n{}",
            help.stdout
        );
        assert!(
            help.stdout.contains("Example"),
            "{command:?} has no example:\n{}",
            help.stdout
        );
    }
    let consume = run(&["consume", "--help"], "").ok();
    assert!(
        consume.stdout.contains("%k key"),
        "format tokens:\n{}",
        consume.stdout
    );
    assert_eq!(run(&["--version"], "").ok().stdout.trim(), "kafkit 0.1.0");
}

/// The JSON snapshots `--stats` prints on stderr, one per line.
fn stats_lines(stderr: &str, kind: &str) -> Vec<Value> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["stats"] == kind)
        .collect()
}

#[test]
fn stats_print_json_snapshots_with_offsets_lag_and_round_trips() {
    let broker = TestBroker::start();
    let topic = unique_topic("cli-stats");
    broker.create_topic(&topic, 2);
    let lines: String = (0..50).map(|i| format!("k{i}:v{i}\n")).collect();
    kafkit(&broker, &["produce", &topic, "-K", ":"], &lines).ok();

    // --exit waits for a quiet 200 ms tick at the end: several 50 ms
    // snapshots come first.
    let consumed = kafkit(
        &broker,
        &[
            "consume", &topic, "--exit", "--stats", "50ms", "--format", "%v\n",
        ],
        "",
    )
    .ok();
    let snapshots = stats_lines(&consumed.stderr, "fetcher");
    let last = snapshots
        .last()
        .unwrap_or_else(|| panic!("no snapshot: {}", consumed.stderr));
    let partitions = last["snapshot"]["partitions"].as_array().unwrap();
    assert_eq!(partitions.len(), 2, "{last}");
    let ends: i64 = partitions
        .iter()
        .map(|p| {
            assert_eq!(p["lag"], 0, "read to the end: {p}");
            assert_eq!(p["position"], p["high_watermark"], "{p}");
            p["high_watermark"].as_i64().unwrap()
        })
        .sum();
    assert_eq!(ends, 50);
    assert_eq!(last["snapshot"]["fetch"]["messages"], 50);
    let brokers = last["snapshot"]["transport"]["brokers"].as_array().unwrap();
    assert!(!brokers.is_empty(), "{last}");
    let rtt = &brokers[0]["stats"]["rtt"];
    assert!(rtt["count"].as_u64().unwrap() > 0, "{rtt}");
    assert!(rtt["p50_us"].as_u64().unwrap() > 0, "{rtt}");

    // A group consumer's snapshot has the group's state.
    let group = unique_topic("cli-stats-group");
    let consumed = kafkit(
        &broker,
        &[
            "consume", &topic, "--group", &group, "--exit", "--stats", "50ms", "--format", "%v\n",
        ],
        "",
    )
    .ok();
    let snapshots = stats_lines(&consumed.stderr, "reader");
    let stable = snapshots
        .iter()
        .rev()
        .find(|s| s["snapshot"]["group"]["state"] == "stable")
        .unwrap_or_else(|| panic!("never stable: {}", consumed.stderr));
    let g = &stable["snapshot"]["group"];
    assert_eq!(g["group_id"], group.as_str());
    assert_eq!(g["assigned"], 2);
    assert_eq!(g["last_rebalance_reason"], "first join");
    assert!(g["generation"].as_i64().unwrap() >= 1, "{g}");
}
