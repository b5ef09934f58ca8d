package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

type saramaPeer struct{}

func saramaConfig(o *options) (*sarama.Config, error) {
	if o.verbose {
		sarama.Logger = log.New(os.Stderr, "sarama: ", log.LstdFlags)
	}
	c := sarama.NewConfig()
	v, err := sarama.ParseKafkaVersion(o.kafkaVersion)
	if err != nil {
		return nil, errUsage("--kafka-version: " + err.Error())
	}
	c.Version = v
	c.ClientID = "kafkit-peer-go-sarama"
	return c, nil
}

func saramaProducerConfig(o *options) (*sarama.Config, error) {
	c, err := saramaConfig(o)
	if err != nil {
		return nil, err
	}
	c.Producer.Return.Successes = true
	c.Producer.Return.Errors = true
	c.Producer.Flush.Frequency = o.linger
	switch o.acks {
	case "all":
		c.Producer.RequiredAcks = sarama.WaitForAll
	case "1":
		c.Producer.RequiredAcks = sarama.WaitForLocal
	case "0":
		c.Producer.RequiredAcks = sarama.NoResponse
	}
	c.Producer.Compression = map[string]sarama.CompressionCodec{
		"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP, "snappy": sarama.CompressionSnappy,
		"lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD,
	}[o.codec]
	// One request in flight keeps input order within a partition; the
	// idempotent producer requires it anyway.
	c.Net.MaxOpenRequests = 1
	c.Producer.Idempotent = o.idempotent
	switch o.partitioner {
	case "", "hash":
		c.Producer.Partitioner = sarama.NewHashPartitioner
	case "reference-hash":
		c.Producer.Partitioner = sarama.NewReferenceHashPartitioner
	case "crc32":
		c.Producer.Partitioner = sarama.NewConsistentCRCHashPartitioner
	case "murmur2":
		c.Producer.Partitioner = sarama.NewMurmur2Partitioner
	case "random":
		c.Producer.Partitioner = sarama.NewRandomPartitioner
	case "round-robin":
		c.Producer.Partitioner = sarama.NewRoundRobinPartitioner
	case "manual":
		c.Producer.Partitioner = sarama.NewManualPartitioner
	default:
		return nil, errUnsupported("sarama has no partitioner " + o.partitioner)
	}
	return c, nil
}

func saramaBytes(b []byte) sarama.Encoder {
	if b == nil {
		return nil // null
	}
	return sarama.ByteEncoder(b)
}

func (saramaPeer) produce(ctx context.Context, o *options, recs []inRecord) ([]ack, error) {
	c, err := saramaProducerConfig(o)
	if err != nil {
		return nil, err
	}
	p, err := sarama.NewAsyncProducer(o.brokers, c)
	if err != nil {
		return nil, err
	}
	go func() {
		for i, r := range recs {
			m := &sarama.ProducerMessage{Topic: o.topic, Key: saramaBytes(r.Key), Value: saramaBytes(r.Value), Metadata: i}
			for _, h := range r.Headers {
				m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value})
			}
			if r.Partition != nil {
				m.Partition = *r.Partition
			}
			select {
			case p.Input() <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	var acks []ack
	var firstErr error
	for pending := len(recs); pending > 0; pending-- {
		select {
		case m := <-p.Successes():
			acks = append(acks, ack{I: m.Metadata.(int), Partition: m.Partition, Offset: m.Offset})
		case pe := <-p.Errors():
			if firstErr == nil {
				firstErr = fmt.Errorf("record %v: %w", pe.Msg.Metadata, pe.Err)
			}
		case <-ctx.Done():
			p.AsyncClose()
			return acks, context.Cause(ctx)
		}
	}
	if err := p.Close(); err != nil && firstErr == nil {
		firstErr = err
	}
	return acks, firstErr
}

func saramaConsumerConfig(o *options) (*sarama.Config, error) {
	c, err := saramaConfig(o)
	if err != nil {
		return nil, err
	}
	if o.isolation == "read_committed" {
		c.Consumer.IsolationLevel = sarama.ReadCommitted
	}
	c.Consumer.Return.Errors = true
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	// Each record is marked only after it is printed; sarama commits marked
	// offsets every 100 ms, at rebalances and on close. A synchronous Commit
	// per record is impractical here: sarama sends it on the connection that
	// also carries long-polling fetches, so each waits up to MaxWaitTime.
	c.Consumer.Offsets.AutoCommit.Enable = true
	c.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
	if o.groupProtocol != "classic" {
		return nil, errUnsupported("sarama implements only the classic group protocol")
	}
	switch o.assignor {
	case "", "range":
		c.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	case "roundrobin":
		c.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRoundRobin()}
	case "sticky":
		c.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategySticky()}
	case "cooperative-sticky":
		c.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyCooperativeSticky()}
	default:
		return nil, errUnsupported("sarama has no assignor " + o.assignor)
	}
	return c, nil
}

func saramaRecord(m *sarama.ConsumerMessage) outRecord {
	r := outRecord{Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value, TimestampMs: millis(m.Timestamp)}
	for _, h := range m.Headers {
		r.Headers = append(r.Headers, header{Key: string(h.Key), Value: h.Value})
	}
	return r
}

func (saramaPeer) consume(ctx context.Context, o *options, s *sink) error {
	c, err := saramaConsumerConfig(o)
	if err != nil {
		return err
	}
	if o.group == "" {
		return saramaEachPartition(ctx, o, c, func(m *sarama.ConsumerMessage) bool {
			ok, _ := s.deliver(saramaRecord(m), nil)
			return ok
		})
	}
	g, err := sarama.NewConsumerGroup(o.brokers, o.group, c)
	if err != nil {
		return err
	}
	go func() {
		for err := range g.Errors() {
			logf("sarama group: %v", err)
		}
	}()
	h := &saramaHandler{s: s, topic: o.topic, coop: o.assignor == "cooperative-sticky", owned: map[int32]bool{}}
	for ctx.Err() == nil {
		if err := g.Consume(ctx, []string{o.topic}, h); err != nil {
			if errors.Is(err, sarama.ErrClosedConsumerGroup) {
				break
			}
			logf("sarama consume: %v", err)
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return g.Close()
}

// saramaEachPartition reads every partition of o.topic from the oldest offset
// until ctx is done or fn returns false.
func saramaEachPartition(ctx context.Context, o *options, c *sarama.Config, fn func(*sarama.ConsumerMessage) bool) error {
	cons, err := sarama.NewConsumer(o.brokers, c)
	if err != nil {
		return err
	}
	defer cons.Close()
	parts, err := cons.Partitions(o.topic)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for _, p := range parts {
		pc, err := cons.ConsumePartition(o.topic, p, sarama.OffsetOldest)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pc.AsyncClose()
			for {
				select {
				case m := <-pc.Messages():
					if !fn(m) {
						cancel()
						return
					}
				case err := <-pc.Errors():
					logf("sarama partition %d: %v", p, err)
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	wg.Wait()
	return nil
}

// saramaHandler prints records of its claims and marks each one for commit
// after it is printed. It reports claims as assigned/revoked events.
type saramaHandler struct {
	s     *sink
	topic string
	coop  bool
	mu    sync.Mutex
	owned map[int32]bool
}

func (h *saramaHandler) change(kind string, parts []int32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var changed []int32
	for _, p := range parts {
		if h.owned[p] != (kind == "assigned") {
			h.owned[p] = kind == "assigned"
			changed = append(changed, p)
		}
	}
	if len(changed) > 0 {
		h.s.event(kind, changed)
	}
}

func (h *saramaHandler) Setup(sess sarama.ConsumerGroupSession) error {
	h.change("assigned", sess.Claims()[h.topic])
	return nil
}

func (h *saramaHandler) Cleanup(sess sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	var all []int32
	for p, owned := range h.owned {
		if owned {
			all = append(all, p)
		}
	}
	h.mu.Unlock()
	h.change("revoked", all)
	return nil
}

func (h *saramaHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	if h.coop {
		// Cooperative sessions survive rebalances; claims come and go.
		h.change("assigned", []int32{claim.Partition()})
		defer func() {
			// A claim that ends while the session lives was revoked by a
			// rebalance; at session end Cleanup reports the rest at once.
			if sess.Context().Err() == nil {
				h.change("revoked", []int32{claim.Partition()})
			}
		}()
	}
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			ok, err := h.s.deliver(saramaRecord(m), func() error {
				sess.MarkMessage(m, "")
				return nil
			})
			if !ok || err != nil {
				return err
			}
		case <-sess.Context().Done():
			return nil
		}
	}
}

func (saramaPeer) benchProduce(ctx context.Context, o *options, w *benchWork, settings func(map[string]any)) (span, error) {
	c, err := saramaProducerConfig(o)
	if err != nil {
		return span{}, err
	}
	// NewAsyncProducer connects and loads the cluster's metadata.
	p, err := sarama.NewAsyncProducer(o.brokers, c)
	if err != nil {
		return span{}, err
	}
	defer p.AsyncClose()
	settings(map[string]any{
		"path": "AsyncProducer", "flush_frequency_ms": c.Producer.Flush.Frequency.Milliseconds(),
		"batch_max_bytes": c.Producer.MaxMessageBytes, "batch_max_records": limit(c.Producer.Flush.MaxMessages),
		"max_in_flight": fmt.Sprintf("%d per broker (Net.MaxOpenRequests)", c.Net.MaxOpenRequests),
		"buffer":        fmt.Sprintf("no byte limit; channels of %d messages", c.ChannelBufferSize),
		"kafka_version": c.Version.String(),
	})
	cnt := newBenchCounter(o.count)
	go func() {
		for range p.Successes() {
			cnt.add(1, 0, nil)
		}
	}()
	go func() {
		for pe := range p.Errors() {
			cnt.add(1, 0, pe.Err)
		}
	}()
	value := sarama.ByteEncoder(w.value)
	start := stampNow()
	for i := 0; i < o.count; i++ {
		m := &sarama.ProducerMessage{Topic: o.topic, Key: saramaBytes(w.key(i)), Value: value, Partition: w.partition(i)}
		select {
		case p.Input() <- m:
		case <-ctx.Done():
			return span{}, context.Cause(ctx)
		}
	}
	if err := cnt.wait(ctx); err != nil {
		return span{}, err
	}
	return cnt.since(start), nil
}

func (saramaPeer) benchConsume(ctx context.Context, o *options, settings func(map[string]any)) (span, int64, error) {
	c, err := saramaConsumerConfig(o)
	if err != nil {
		return span{}, 0, err
	}
	settings(map[string]any{
		"path":                "Consumer.ConsumePartition per partition",
		"fetch_min_bytes":     c.Consumer.Fetch.Min,
		"fetch_max_bytes":     limit(int(c.Consumer.Fetch.Max)),
		"partition_max_bytes": c.Consumer.Fetch.Default,
		"fetch_max_wait_ms":   c.Consumer.MaxWaitTime.Milliseconds(),
		"buffer":              fmt.Sprintf("%d messages per partition", c.ChannelBufferSize),
		"kafka_version":       c.Version.String(),
	})
	// NewConsumer connects and loads the metadata before the clock starts.
	cons, err := sarama.NewConsumer(o.brokers, c)
	if err != nil {
		return span{}, 0, err
	}
	defer cons.Close()
	parts, err := cons.Partitions(o.topic)
	if err != nil {
		return span{}, 0, err
	}
	cnt := newBenchCounter(o.count)
	readers, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	cnt.begin()
	for _, p := range parts {
		pc, err := cons.ConsumePartition(o.topic, p, sarama.OffsetOldest)
		if err != nil {
			stop()
			wg.Wait()
			return span{}, 0, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pc.AsyncClose()
			for {
				select {
				case m := <-pc.Messages():
					if !cnt.add(1, int64(len(m.Value)), nil) {
						return
					}
				case err := <-pc.Errors():
					logf("sarama partition %d: %v", p, err)
				case <-readers.Done():
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
