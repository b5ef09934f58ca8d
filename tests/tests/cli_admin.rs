//! The `kafkit` tool's admin commands end to end against tansu: topics
//! create/list/describe/delete with their exit codes, groups list/lag/
//! describe/delete after a group consume (which commits, so a second
//! consume resumes), offsets and cluster describe.

mod cli_support;

use cli_support::kafkit;
use kafkit_tests::{TestBroker, unique_topic};

#[test]
fn topics_create_list_describe_delete() {
    let broker = TestBroker::start();
    let topic = unique_topic("cli-topics");

    let created = kafkit(
        &broker,
        &["topics", "create", &topic, "--partitions", "3"],
        "",
    )
    .ok();
    assert_eq!(
        created.stdout.trim(),
        format!("created topic {topic} (3 partitions)")
    );
    let again = kafkit(&broker, &["topics", "create", &topic], "");
    assert_eq!(again.code, Some(5), "already exists: {again:?}");
    assert!(
        again.stderr.contains("TOPIC_ALREADY_EXISTS"),
        "{}",
        again.stderr
    );
    kafkit(
        &broker,
        &["topics", "create", &topic, "--if-not-exists"],
        "",
    )
    .ok();

    let list = kafkit(&broker, &["topics", "list"], "").ok();
    assert!(list.lines().contains(&topic.as_str()), "{list:?}");
    let long = kafkit(&broker, &["topics", "list", "--long"], "").ok();
    let row = long
        .lines()
        .into_iter()
        .find(|l| l.split_whitespace().next() == Some(topic.as_str()))
        .unwrap_or_else(|| panic!("{topic} not in {long:?}"))
        .split_whitespace()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    assert_eq!(&row[1..3], ["3", "1"], "partitions and replication");

    let described = kafkit(&broker, &["topics", "describe", &topic], "").ok();
    assert!(
        described.stdout.starts_with(&format!("Topic: {topic}")),
        "{described:?}"
    );
    assert!(described.stdout.contains("partitions: 3"));
    let partition_rows: Vec<&str> = described
        .lines()
        .into_iter()
        .skip(2)
        .map(|l| l.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(partition_rows, ["0", "1", "2"]);

    let offsets = kafkit(&broker, &["offsets", &topic], "").ok();
    assert_eq!(
        offsets.lines().len(),
        4,
        "a header and 3 partitions: {offsets:?}"
    );
    assert!(
        offsets.lines()[1..]
            .iter()
            .all(|l| l.split_whitespace().skip(1).all(|n| n == "0"))
    );

    kafkit(&broker, &["topics", "delete", &topic], "").ok();
    let list = kafkit(&broker, &["topics", "list"], "").ok();
    assert!(!list.lines().contains(&topic.as_str()), "deleted: {list:?}");
    let gone = kafkit(&broker, &["topics", "describe", &topic], "");
    assert_eq!(gone.code, Some(4), "{gone:?}");
    let delete_again = kafkit(&broker, &["topics", "delete", &topic], "");
    assert_eq!(delete_again.code, Some(4), "{delete_again:?}");
    kafkit(&broker, &["topics", "delete", &topic, "--if-exists"], "").ok();

    let cluster = kafkit(&broker, &["cluster", "describe"], "").ok();
    assert!(cluster.stdout.contains("Cluster id:"), "{cluster:?}");
    let port = broker.addr().port().to_string();
    assert!(
        cluster.stdout.contains(&port),
        "the broker's port: {cluster:?}"
    );
}

/// The lag row of `partition` in `groups lag` output: (committed, end, lag).
fn lag_row(stdout: &str, topic: &str, partition: i32) -> (i64, i64, i64) {
    let row: Vec<&str> = stdout
        .lines()
        .find(|l| {
            l.starts_with(topic) && l.split_whitespace().nth(1) == Some(&partition.to_string())
        })
        .unwrap_or_else(|| panic!("no row for {topic}/{partition} in:\n{stdout}"))
        .split_whitespace()
        .collect();
    let n = |i: usize| {
        row[i]
            .parse::<i64>()
            .unwrap_or_else(|e| panic!("{row:?}: {e}"))
    };
    (n(2), n(3), n(4))
}

#[test]
fn groups_list_and_lag_after_a_group_consume() {
    let broker = TestBroker::start();
    let topic = unique_topic("cli-groups");
    let group = unique_topic("cli-group");
    broker.create_topic(&topic, 1);
    let lines: String = (0..5).map(|i| format!("record-{i}\n")).collect();
    kafkit(&broker, &["produce", &topic, "-q"], &lines).ok();

    let consume = [
        "consume",
        &topic,
        "-G",
        &group,
        "--exit",
        "--session-timeout",
        "2s",
        "-q",
    ];
    let first = kafkit(&broker, &consume, "").ok();
    assert_eq!(
        first.lines(),
        ["record-0", "record-1", "record-2", "record-3", "record-4"]
    );

    let listed = kafkit(&broker, &["groups", "list"], "").ok();
    assert!(
        listed
            .lines()
            .iter()
            .any(|l| l.split_whitespace().next() == Some(group.as_str())),
        "{listed:?}"
    );
    let lag = kafkit(&broker, &["groups", "lag", &group], "").ok();
    let (committed, end, behind) = lag_row(&lag.stdout, &topic, 0);
    assert_eq!(committed, 5, "the consume committed what it printed");
    if !broker.has_tansu_bug("the latest ListOffsets answer is the last batch's first offset + 1") {
        assert_eq!((end, behind), (5, 0));
    }

    kafkit(&broker, &["produce", &topic, "-q"], "record-5\nrecord-6\n").ok();
    if !broker.has_tansu_bug("the latest ListOffsets answer is the last batch's first offset + 1") {
        let lag = kafkit(&broker, &["groups", "lag", &group], "").ok();
        assert_eq!(lag_row(&lag.stdout, &topic, 0), (5, 7, 2));
    }
    // The group resumes from its commit: only the new records.
    let second = kafkit(&broker, &consume, "").ok();
    assert_eq!(second.lines(), ["record-5", "record-6"]);

    let described = kafkit(&broker, &["groups", "describe", &group], "").ok();
    assert!(
        described.stdout.starts_with(&format!("Group: {group}")),
        "{described:?}"
    );
    assert!(
        described.stdout.contains("state: Empty"),
        "left the group: {described:?}"
    );

    kafkit(&broker, &["groups", "delete", &group], "").ok();
    let gone = kafkit(&broker, &["groups", "lag", &group], "");
    assert_eq!(gone.code, Some(4), "{gone:?}");
}
