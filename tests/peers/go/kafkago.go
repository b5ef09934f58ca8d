package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

type kafkaGoPeer struct{}

func kafkaGoLogger(o *options) kafka.Logger {
	if !o.verbose {
		return nil
	}
	return log.New(os.Stderr, "kafka-go: ", log.LstdFlags)
}

func kafkaGoWriter(o *options) (*kafka.Writer, error) {
	if o.idempotent && o.idempotentSet {
		return nil, errUnsupported("kafka-go has no idempotent producer")
	}
	w := &kafka.Writer{
		Addr:         kafka.TCP(o.brokers...),
		Topic:        o.topic,
		BatchTimeout: o.linger,
		Logger:       kafkaGoLogger(o),
		ErrorLogger:  log.New(os.Stderr, "kafka-go: ", log.LstdFlags),
		Transport:    &kafka.Transport{ClientID: "kafkit-peer-go-kafka-go"},
	}
	switch o.acks {
	case "all":
		w.RequiredAcks = kafka.RequireAll
	case "1":
		w.RequiredAcks = kafka.RequireOne
	case "0":
		w.RequiredAcks = kafka.RequireNone
	}
	w.Compression = map[string]kafka.Compression{
		"none": 0, "gzip": kafka.Gzip, "snappy": kafka.Snappy, "lz4": kafka.Lz4, "zstd": kafka.Zstd,
	}[o.codec]
	switch o.partitioner {
	case "", "round-robin":
		w.Balancer = &kafka.RoundRobin{}
	case "least-bytes":
		w.Balancer = &kafka.LeastBytes{}
	case "hash":
		w.Balancer = &kafka.Hash{}
	case "reference-hash":
		w.Balancer = &kafka.ReferenceHash{}
	case "crc32":
		w.Balancer = kafka.CRC32Balancer{}
	case "crc32-consistent":
		w.Balancer = kafka.CRC32Balancer{Consistent: true}
	case "murmur2":
		w.Balancer = kafka.Murmur2Balancer{}
	case "murmur2-consistent":
		w.Balancer = kafka.Murmur2Balancer{Consistent: true}
	case "manual":
		// The Writer has no explicit partition; a Balancer that returns the
		// partition carried by the message does the job.
		w.Balancer = kafka.BalancerFunc(func(m kafka.Message, partitions ...int) int {
			if !slices.Contains(partitions, m.Partition) {
				logf("kafka-go: partition %d is not among %v", m.Partition, partitions)
			}
			return m.Partition
		})
	default:
		return nil, errUnsupported("kafka-go has no balancer " + o.partitioner)
	}
	return w, nil
}

func (kafkaGoPeer) produce(ctx context.Context, o *options, recs []inRecord) ([]ack, error) {
	w, err := kafkaGoWriter(o)
	if err != nil {
		return nil, err
	}
	w.BatchSize = max(len(recs), 1)
	var mu sync.Mutex
	var acks []ack
	w.Completion = func(msgs []kafka.Message, err error) {
		if err != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			acks = append(acks, ack{I: m.WriterData.(int), Partition: int32(m.Partition), Offset: m.Offset})
		}
	}
	msgs := make([]kafka.Message, len(recs))
	for i, r := range recs {
		msgs[i] = kafka.Message{Key: r.Key, Value: r.Value, WriterData: i}
		for _, h := range r.Headers {
			msgs[i].Headers = append(msgs[i].Headers, kafka.Header{Key: h.Key, Value: h.Value})
		}
		if r.Partition != nil {
			msgs[i].Partition = int(*r.Partition)
		}
	}
	werr := w.WriteMessages(ctx, msgs...)
	cerr := w.Close()
	mu.Lock()
	defer mu.Unlock()
	return acks, errors.Join(werr, cerr)
}

func kafkaGoRecord(m kafka.Message) outRecord {
	r := outRecord{Partition: int32(m.Partition), Offset: m.Offset, Key: m.Key, Value: m.Value, TimestampMs: millis(m.Time)}
	for _, h := range m.Headers {
		r.Headers = append(r.Headers, header{Key: h.Key, Value: h.Value})
	}
	return r
}

func kafkaGoReaderConfig(o *options) (kafka.ReaderConfig, error) {
	c := kafka.ReaderConfig{
		Brokers:     o.brokers,
		Topic:       o.topic,
		MaxWait:     250 * time.Millisecond,
		MaxBytes:    10 << 20,
		Logger:      kafkaGoLogger(o),
		ErrorLogger: log.New(os.Stderr, "kafka-go: ", log.LstdFlags),
		Dialer:      &kafka.Dialer{ClientID: "kafkit-peer-go-kafka-go", Timeout: 10 * time.Second, DualStack: true},
	}
	if o.isolation == "read_committed" {
		c.IsolationLevel = kafka.ReadCommitted
	}
	if o.group == "" {
		return c, nil
	}
	if o.groupProtocol != "classic" {
		return c, errUnsupported("kafka-go implements only the classic group protocol")
	}
	c.GroupID = o.group
	c.StartOffset = kafka.FirstOffset
	c.CommitInterval = 0 // CommitMessages is synchronous
	c.JoinGroupBackoff = time.Second
	switch o.assignor {
	case "":
		// kafka-go's default: range, then round robin
	case "range":
		c.GroupBalancers = []kafka.GroupBalancer{kafka.RangeGroupBalancer{}}
	case "roundrobin":
		c.GroupBalancers = []kafka.GroupBalancer{kafka.RoundRobinGroupBalancer{}}
	default:
		return c, errUnsupported("kafka-go has no " + o.assignor + " group balancer (only range, roundrobin)")
	}
	return c, nil
}

func (kafkaGoPeer) consume(ctx context.Context, o *options, s *sink) error {
	c, err := kafkaGoReaderConfig(o)
	if err != nil {
		return err
	}
	if o.group == "" {
		return kafkaGoEachPartition(ctx, o, c, func(m kafka.Message) bool {
			ok, _ := s.deliver(kafkaGoRecord(m), nil)
			return ok
		})
	}
	// The Reader exposes no rebalance callbacks, so no events are printed.
	r := kafka.NewReader(c)
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			r.Close()
			return err
		}
		ok, err := s.deliver(kafkaGoRecord(m), func() error {
			return r.CommitMessages(context.Background(), m)
		})
		if err != nil {
			r.Close()
			return fmt.Errorf("commit: %w", err)
		}
		if !ok {
			break
		}
	}
	return r.Close()
}

// kafkaGoEachPartition runs one partition Reader per partition of o.topic
// from the first offset until ctx is done or fn returns false.
func kafkaGoEachPartition(ctx context.Context, o *options, c kafka.ReaderConfig, fn func(kafka.Message) bool) error {
	conn, err := c.Dialer.DialContext(ctx, "tcp", o.brokers[0])
	if err != nil {
		return err
	}
	parts, err := conn.ReadPartitions(o.topic)
	conn.Close()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(parts))
	for _, p := range parts {
		pc := c
		pc.Partition = p.ID
		r := kafka.NewReader(pc)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			for {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					if ctx.Err() == nil {
						errs <- err
						cancel()
					}
					return
				}
				if !fn(m) {
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func (kafkaGoPeer) benchProduce(ctx context.Context, o *options, w *benchWork, settings func(map[string]any)) (span, error) {
	if o.idempotentSet && o.idempotent {
		return span{}, errUnsupported("kafka-go has no idempotent producer")
	}
	o.idempotent = false
	kw, err := kafkaGoWriter(o)
	if err != nil {
		return span{}, err
	}
	defer kw.Close()
	const chunk = 1000
	kw.Async = true
	kw.BatchSize = 10000
	kw.BatchBytes = 1 << 20
	cnt := newBenchCounter(o.count)
	kw.Completion = func(msgs []kafka.Message, err error) { cnt.add(len(msgs), 0, err) }
	// Connect and load the topic's metadata through the writer's transport
	// before the clock starts, as the other clients do.
	client := &kafka.Client{Addr: kw.Addr, Transport: kw.Transport}
	if _, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{o.topic}}); err != nil {
		return span{}, err
	}
	settings(map[string]any{
		"path": "Writer{Async: true}, WriteMessages with 1000 messages a call", "idempotent": "no (kafka-go has none)",
		"batch_max_records": kw.BatchSize, "batch_max_bytes": kw.BatchBytes,
		"batch_timeout_ms": kw.BatchTimeout.Milliseconds(), "write_messages_chunk": chunk,
		"max_in_flight": "1 per partition", "buffer": "no limit (Async)",
	})
	start := stampNow()
	for sent := 0; sent < o.count; {
		n := min(chunk, o.count-sent)
		// A fresh slice each call: the async writer keeps the messages.
		msgs := make([]kafka.Message, n)
		for i := range msgs {
			msgs[i] = kafka.Message{Key: w.key(sent + i), Value: w.value, Partition: int(w.partition(sent + i))}
		}
		if err := kw.WriteMessages(ctx, msgs...); err != nil {
			return span{}, err
		}
		sent += n
	}
	if err := cnt.wait(ctx); err != nil {
		return span{}, err
	}
	return cnt.since(start), nil
}

func (kafkaGoPeer) benchConsume(ctx context.Context, o *options, settings func(map[string]any)) (span, int64, error) {
	o.group = ""
	c, err := kafkaGoReaderConfig(o)
	if err != nil {
		return span{}, 0, err
	}
	// kafka-go's defaults, set so that the settings line shows them.
	c.MinBytes = 1
	c.QueueCapacity = 100
	settings(map[string]any{
		"path":                "one partition Reader per partition",
		"fetch_min_bytes":     c.MinBytes,
		"fetch_max_bytes":     c.MaxBytes,
		"partition_max_bytes": c.MaxBytes,
		"fetch_max_wait_ms":   c.MaxWait.Milliseconds(),
		"buffer":              fmt.Sprintf("%d messages per partition", c.QueueCapacity),
	})
	// The partitions, before the clock starts; each Reader then dials its
	// own connection, which counts.
	conn, err := c.Dialer.DialContext(ctx, "tcp", o.brokers[0])
	if err != nil {
		return span{}, 0, err
	}
	parts, err := conn.ReadPartitions(o.topic)
	conn.Close()
	if err != nil {
		return span{}, 0, err
	}
	cnt := newBenchCounter(o.count)
	readers, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	cnt.begin()
	for _, p := range parts {
		pc := c
		pc.Partition = p.ID
		r := kafka.NewReader(pc)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			for {
				m, err := r.ReadMessage(readers)
				if err != nil {
					if readers.Err() == nil {
						cnt.add(o.count, 0, fmt.Errorf("partition %d: %w", p.ID, err))
					}
					return
				}
				if !cnt.add(1, int64(len(m.Value)), nil) {
					return
				}
			}
		}()
	}
	err = cnt.wait(ctx)
	stop()
	wg.Wait()
	if err != nil {
		return span{}, 0, err
	}
	return cnt.span(), cnt.total(), nil
}
