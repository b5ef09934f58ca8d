//! A kafkit-stream `Processor` (consume, transform, produce in
//! transactions that also commit the input offsets) on three Apache Kafka
//! nodes (replication factor 3, `min.insync.replicas` 2, the transaction
//! log as replicated), while the node that hosts its transaction
//! coordinator is killed (kill -9) and restarted 5 s later: every input
//! appears in the output exactly once, as a read_committed reader sees it.
//!
//! An idempotent writer produces numbered inputs at an even pace; the
//! processor maps input `i` to output `i`, committing every 100 ms. The
//! kill comes a quarter of the way in. The output is read back raw from
//! each partition's leader and its transactions replayed from the markers
//! (`stream_support::replay_from`): records of aborted transactions drop
//! out, and none may be left in a transaction with no marker.
//!
//! Why it holds: the transaction's state (ongoing, preparing commit,
//! complete) is in the replicated `__transaction_state` log, so the
//! coordinator's successor resumes the transaction where the old one was:
//! it finishes a commit that was prepared, and a transaction it finds
//! ongoing is aborted by the processor (its inputs rewound) or times out.
//! The processor retries its retriable errors (NOT_COORDINATOR,
//! COORDINATOR_LOAD_IN_PROGRESS, a dead connection) and aborts and redoes
//! a transaction whose outcome it cannot know.
//!
//! CI size: 10,000 inputs over 20 s. `KAFKIT_RELIABILITY_FULL=1`: 200,000
//! over 120 s.

mod stream_support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafkit_protocol::records::DecodeOptions;
use kafkit_stream::{Error, Output, Processor};
use kafkit_tests::{
    ClusterScenario, Listener, Pacing, RawClient, Reliability, unique_topic, write_paced,
};
use kafkit_writer::Writer;

const PARTITIONS: usize = 6;

fn pacing() -> Pacing {
    Pacing::sized(
        Pacing {
            records: 10_000,
            span: Duration::from_secs(20),
        },
        Pacing {
            records: 200_000,
            span: Duration::from_secs(120),
        },
    )
}

/// What the processor handled: distinct inputs, and the longest pause.
#[derive(Default)]
struct Handled {
    distinct: HashSet<u64>,
    last: Option<Instant>,
    longest_gap: Duration,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processor_outputs_each_input_once_while_its_transaction_coordinator_is_killed() {
    let start = Instant::now();
    let cluster = Arc::new(tokio::task::block_in_place(|| ClusterScenario::start(&[])));
    eprintln!("cluster up after {:?}", start.elapsed());
    let (input, output) = (unique_topic("rel-eos-in"), unique_topic("rel-eos-out"));
    let (group, txn_id) = (unique_topic("rel-eos-group"), unique_topic("rel-eos-txn"));
    tokio::task::block_in_place(|| {
        cluster.create_topic(&input, PARTITIONS);
        cluster.create_topic(&output, PARTITIONS);
    });
    let records = pacing().records;

    let mut processor = Processor::builder(cluster.bootstrap().split(','))
        .group_id(&group)
        .input_topics([input.as_str()])
        .transactional_id(&txn_id)
        .commit_every(Duration::from_millis(100))
        .build()
        .await
        .expect("the processor builds");
    let handled = Arc::new(Mutex::new(Handled::default()));
    let all_handled = {
        let handled = handled.clone();
        async move {
            while handled.lock().unwrap().distinct.len() < records as usize {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let processing = {
        let (handled, output) = (handled.clone(), output.clone());
        processor.run_until(all_handled, move |m| {
            let id: u64 = std::str::from_utf8(m.value_bytes())
                .unwrap()
                .parse()
                .unwrap();
            let mut h = handled.lock().unwrap();
            let now = Instant::now();
            if let Some(last) = h.last {
                h.longest_gap = h.longest_gap.max(now - last);
            }
            h.last = Some(now);
            h.distinct.insert(id);
            let out = Output::new(output.clone(), m.value_bytes().to_vec());
            async move { Ok::<_, Error>(out) }
        })
    };

    let for_fault = cluster.clone();
    let txn = txn_id.clone();
    let writing = write_paced(
        Writer::builder(cluster.bootstrap().split(',')),
        &input,
        pacing(),
        move || {
            let victim = for_fault.transaction_coordinator(&txn);
            eprintln!("killing node {victim}, the transaction coordinator");
            for_fault.kill_for(victim, Duration::from_secs(5));
            eprintln!(
                "the transaction coordinator is node {}",
                for_fault.transaction_coordinator(&txn)
            );
        },
    );
    let (processed, written) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(300), processing),
        writing
    );
    processed
        .expect("the processor finishes")
        .expect("the processor survives the kill");
    assert_eq!((written.acked, written.failed), (records, 0));
    let stats = processor.stats();
    processor.close().await.expect("the processor closes");
    eprintln!("processor {stats:?}");

    // Read once every output partition is stable: the last commit's
    // markers are written after EndTxn answered.
    let replayed = tokio::task::block_in_place(|| {
        cluster.settle(&output);
        // One connection to each partition's leader, for every fetch.
        let mut clients: Vec<RawClient> = cluster
            .leaders(&output)
            .iter()
            .map(|leader| {
                RawClient::connect(cluster.nodes().addr(*leader as u32, Listener::Plaintext))
            })
            .collect();
        let waited = Instant::now();
        loop {
            let replayed = stream_support::replay_from(
                &output,
                PARTITIONS as i32,
                DecodeOptions::new(),
                |p, offset| clients[p as usize].fetch(&output, p, offset),
            );
            if replayed.open == 0 || waited.elapsed() > Duration::from_secs(30) {
                break replayed;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let outputs: Vec<u64> = replayed
        .values()
        .iter()
        .map(|v| v.parse().expect("outputs are ids"))
        .collect();
    let sent: Vec<u64> = (0..records).collect();
    let longest = handled.lock().unwrap().longest_gap;
    let report = Reliability::count("eos_coordinator_kill", &sent, &outputs, longest);
    eprintln!(
        "{} commit markers, {} abort markers, {} aborted records, {} open",
        replayed.commits, replayed.aborts, replayed.aborted, replayed.open
    );
    assert_eq!(
        replayed.open, 0,
        "records left in transactions with no marker"
    );
    assert_eq!((report.lost, report.duplicated), (0, 0), "{report}");
}
