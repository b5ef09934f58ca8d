package main

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type franzPeer struct{}

func franzBase(o *options) []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(o.brokers...), kgo.ClientID("kafkit-peer-go-franz-go")}
	if o.verbose {
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelInfo, nil)))
	}
	return opts
}

func fnv32a(b []byte) uint32 {
	h := fnv.New32a()
	_, _ = h.Write(b)
	return h.Sum32()
}

func franzProducerOpts(o *options) ([]kgo.Opt, error) {
	opts := append(franzBase(o), kgo.DefaultProduceTopic(o.topic), kgo.ProducerLinger(o.linger))
	switch o.acks {
	case "all":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()))
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()))
	}
	if !o.idempotent {
		// Without idempotence, one request in flight keeps input order.
		opts = append(opts, kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(1))
	}
	codec := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}[o.codec]
	opts = append(opts, kgo.ProducerBatchCompression(codec))
	var p kgo.Partitioner
	switch o.partitioner {
	case "", "uniform-bytes":
		// franz-go's default partitioner; leave it unset.
	case "murmur2", "sticky-key":
		p = kgo.StickyKeyPartitioner(nil)
	case "sticky":
		p = kgo.StickyPartitioner()
	case "round-robin":
		p = kgo.RoundRobinPartitioner()
	case "least-backup":
		p = kgo.LeastBackupPartitioner()
	case "hash":
		p = kgo.StickyKeyPartitioner(kgo.SaramaCompatHasher(fnv32a))
	case "reference-hash":
		p = kgo.StickyKeyPartitioner(kgo.KafkaHasher(fnv32a))
	case "crc32":
		p = kgo.StickyKeyPartitioner(kgo.SaramaHasher(crc32.ChecksumIEEE))
	case "manual":
		p = kgo.ManualPartitioner()
	default:
		return nil, errUnsupported("franz-go has no partitioner " + o.partitioner)
	}
	if p != nil {
		opts = append(opts, kgo.RecordPartitioner(p))
	}
	return opts, nil
}

func (franzPeer) produce(ctx context.Context, o *options, recs []inRecord) ([]ack, error) {
	opts, err := franzProducerOpts(o)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var mu sync.Mutex
	var acks []ack
	var errs []error
	for i, r := range recs {
		rec := &kgo.Record{Key: r.Key, Value: r.Value}
		for _, h := range r.Headers {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		if r.Partition != nil {
			rec.Partition = *r.Partition
		}
		cl.Produce(ctx, rec, func(rec *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			acks = append(acks, ack{I: i, Partition: rec.Partition, Offset: rec.Offset})
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return nil, err
	}
	mu.Lock()
	defer mu.Unlock()
	return acks, errors.Join(errs...)
}

func franzRecord(r *kgo.Record) outRecord {
	o := outRecord{Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value, TimestampMs: millis(r.Timestamp)}
	for _, h := range r.Headers {
		o.Headers = append(o.Headers, header{Key: h.Key, Value: h.Value})
	}
	return o
}

func franzConsumerOpts(o *options, s *sink) ([]kgo.Opt, error) {
	opts := append(franzBase(o), kgo.ConsumeTopics(o.topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if o.isolation == "read_committed" {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	if o.group == "" {
		return opts, nil
	}
	var b kgo.GroupBalancer
	switch o.assignor {
	case "", "cooperative-sticky":
		b = kgo.CooperativeStickyBalancer()
	case "range":
		b = kgo.RangeBalancer()
	case "roundrobin":
		b = kgo.RoundRobinBalancer()
	case "sticky", "uniform":
		b = kgo.StickyBalancer() // the server-side "uniform" assignor under KIP-848
	}
	if o.groupProtocol == "consumer" && o.assignor == "" {
		b = kgo.StickyBalancer()
	}
	opts = append(opts,
		kgo.ConsumerGroup(o.group), kgo.Balancers(b), kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			s.event("assigned", m[o.topic])
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			s.event("revoked", m[o.topic])
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			s.event("lost", m[o.topic])
		}),
	)
	if o.groupProtocol == "consumer" {
		if o.assignor != "" && o.assignor != "range" && o.assignor != "sticky" && o.assignor != "uniform" {
			return nil, errUsage("--group-protocol consumer with franz-go needs --assignor range or uniform")
		}
		opts = append(opts, kgo.ServerSideBalancer())
	}
	return opts, nil
}

// franzPoll polls cl until ctx is done or fn returns false; after each batch
// it lets a blocked rebalance proceed.
func franzPoll(ctx context.Context, cl *kgo.Client, fn func(*kgo.Record) bool) error {
	defer cl.AllowRebalance()
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var fatal error
		fetches.EachError(func(topic string, p int32, err error) {
			if errors.Is(err, kgo.ErrClientClosed) || errors.Is(err, context.Canceled) {
				fatal = err
				return
			}
			logf("franz-go fetch %s[%d]: %v", topic, p, err)
		})
		if fatal != nil {
			return fatal
		}
		stop := false
		fetches.EachRecord(func(r *kgo.Record) {
			if !stop && !fn(r) {
				stop = true
			}
		})
		cl.AllowRebalance()
		if stop {
			return nil
		}
	}
}

func (franzPeer) consume(ctx context.Context, o *options, s *sink) error {
	opts, err := franzConsumerOpts(o, s)
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	var commitErr error
	err = franzPoll(ctx, cl, func(r *kgo.Record) bool {
		var commit func() error
		if o.group != "" {
			commit = func() error { return cl.CommitRecords(context.Background(), r) }
		}
		ok, err := s.deliver(franzRecord(r), commit)
		if err != nil {
			commitErr = err
			return false
		}
		return ok
	})
	cl.Close() // leaves the group; everything printed is already committed
	return errors.Join(err, commitErr)
}

func (franzPeer) benchProduce(ctx context.Context, o *options, w *benchWork, settings func(map[string]any)) (span, error) {
	opts, err := franzProducerOpts(o)
	if err != nil {
		return span{}, err
	}
	opts = append(opts, kgo.MaxBufferedRecords(benchBufferRecords), kgo.MaxBufferedBytes(benchBufferBytes))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return span{}, err
	}
	defer cl.Close()
	// Connect before the clock starts. franz-go loads a topic's partitions
	// only on its first record, so that one round trip stays inside.
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(o.topic)
	req.Topics = append(req.Topics, rt)
	if _, err := req.RequestWith(ctx, cl); err != nil {
		return span{}, err
	}
	inflight := "5 per broker (idempotent)"
	if !o.idempotent {
		inflight = fmt.Sprintf("%v per broker", cl.OptValue(kgo.MaxProduceRequestsInflightPerBroker))
	}
	settings(map[string]any{
		"path":              "Client.Produce with a promise",
		"batch_max_bytes":   cl.OptValue(kgo.ProducerBatchMaxBytes),
		"batch_max_records": "none",
		"max_in_flight":     inflight,
		"buffer": fmt.Sprintf("%v B, %v records",
			cl.OptValue(kgo.MaxBufferedBytes), cl.OptValue(kgo.MaxBufferedRecords)),
	})
	cnt := newBenchCounter(o.count)
	done := func(_ *kgo.Record, err error) { cnt.add(1, 0, err) }
	start := stampNow()
	for i := 0; i < o.count; i++ {
		cl.Produce(ctx, &kgo.Record{Key: w.key(i), Value: w.value, Partition: w.partition(i)}, done)
	}
	if err := cnt.wait(ctx); err != nil {
		return span{}, err
	}
	return cnt.since(start), nil
}

func (franzPeer) benchConsume(ctx context.Context, o *options, settings func(map[string]any)) (span, int64, error) {
	o.group = ""
	cnt := newBenchCounter(o.count)
	// Every partition of every topic (--topic a,b,...) from its start, no
	// group: direct partition consumption.
	fetches := &franzFetchCount{}
	opts := append(franzBase(o), kgo.ConsumeTopics(benchTopics(o)...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.WithHooks(fetches))
	if o.isolation == "read_committed" {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	// A client given topics starts consuming as it is created, so the clock
	// starts here: franz-go's connecting and first metadata request count.
	cnt.begin()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return span{}, 0, err
	}
	defer cl.Close()
	settings(map[string]any{
		"path":                "PollFetches, direct partition consumption",
		"fetch_min_bytes":     cl.OptValue(kgo.FetchMinBytes),
		"fetch_max_bytes":     cl.OptValue(kgo.FetchMaxBytes),
		"partition_max_bytes": cl.OptValue(kgo.FetchMaxPartitionBytes),
		"fetch_max_wait_ms":   cl.OptValue(kgo.FetchMaxWait).(time.Duration).Milliseconds(),
		"buffer":              fmt.Sprintf("max concurrent fetches %v (-1: no limit)", cl.OptValue(kgo.MaxConcurrentFetches)),
		"topics":              len(benchTopics(o)),
		"fetch_sessions":      !cl.OptValue(kgo.DisableFetchSessions).(bool),
	})
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		err := franzPoll(ctx, cl, func(r *kgo.Record) bool { return cnt.add(1, int64(len(r.Value)), nil) })
		if err != nil && ctx.Err() == nil {
			cnt.add(o.count, 0, err)
		}
	}()
	if err := cnt.wait(ctx); err != nil {
		return span{}, 0, err
	}
	sp := cnt.span()
	sp.fetches = fetches.n.Load()
	return sp, cnt.total(), nil
}

// franzFetchCount counts the Fetch responses (API key 1) a client reads:
// the bench's fetches, for comparison with kafkit's FetchStats.
type franzFetchCount struct{ n atomic.Int64 }

func (c *franzFetchCount) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == 1 && err == nil {
		c.n.Add(1)
	}
}
