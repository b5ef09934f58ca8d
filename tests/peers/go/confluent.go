package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

type confluentPeer struct{}

func confluentBase(o *options) kafka.ConfigMap {
	c := kafka.ConfigMap{
		"bootstrap.servers": strings.Join(o.brokers, ","),
		"client.id":         "kafkit-peer-go-confluent",
	}
	if o.verbose {
		c["debug"] = "broker,topic,msg,cgrp"
	}
	return c
}

func confluentProducerConfig(o *options) (kafka.ConfigMap, error) {
	c := confluentBase(o)
	c["acks"] = o.acks
	c["compression.type"] = o.codec
	c["linger.ms"] = int(o.linger.Milliseconds())
	// librdkafka keeps null-key records on one partition for
	// sticky.partitioning.linger.ms, whose documented default is twice
	// linger.ms but whose built-in value is a fixed 10 ms: set it, so that
	// linger 0 really places each keyless record on its own.
	c["sticky.partitioning.linger.ms"] = 2 * int(o.linger.Milliseconds())
	c["enable.idempotence"] = o.idempotent
	if !o.idempotent {
		// Without idempotence, one request in flight keeps input order.
		c["max.in.flight.requests.per.connection"] = 1
	}
	switch o.partitioner {
	case "", "manual":
		// librdkafka's default (consistent_random); manual uses the
		// explicit partition of each message.
	case "crc32", "consistent":
		c["partitioner"] = "consistent"
	case "consistent_random", "murmur2", "murmur2_random", "fnv1a", "fnv1a_random", "random":
		c["partitioner"] = o.partitioner
	default:
		return nil, errUnsupported("librdkafka has no partitioner " + o.partitioner)
	}
	return c, nil
}

func confluentHeaders(hs []header) []kafka.Header {
	var out []kafka.Header
	for _, h := range hs {
		out = append(out, kafka.Header{Key: h.Key, Value: h.Value})
	}
	return out
}

// confluentLogEvents prints the producer's non-delivery events to stderr.
func confluentLogEvents(p *kafka.Producer) {
	for ev := range p.Events() {
		logf("confluent: %v", ev)
	}
}

func (confluentPeer) produce(ctx context.Context, o *options, recs []inRecord) ([]ack, error) {
	c, err := confluentProducerConfig(o)
	if err != nil {
		return nil, err
	}
	p, err := kafka.NewProducer(&c)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	go confluentLogEvents(p)
	deliveries := make(chan kafka.Event, len(recs))
	for i, r := range recs {
		tp := kafka.TopicPartition{Topic: &o.topic, Partition: kafka.PartitionAny}
		if r.Partition != nil {
			tp.Partition = *r.Partition
		}
		m := &kafka.Message{TopicPartition: tp, Key: r.Key, Value: r.Value, Headers: confluentHeaders(r.Headers), Opaque: i}
		if err := confluentSend(ctx, p, m, deliveries); err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		if i == 0 {
			// librdkafka partitions the records queued before its first
			// metadata the moment that metadata arrives, while the
			// partitions are still being handed to their leader's broker
			// thread; its `random` partitioner draws once more for a
			// partition without one, which put 13/49 of the keyless
			// records on the one partition attached first and 6/49 on
			// each other (752 against 354 of 2800, seen under load).
			// Waiting for the first delivery partitions the rest on a
			// settled topic.
			p.Flush(30000)
		}
	}
	var acks []ack
	var errs []error
	for range recs {
		select {
		case ev := <-deliveries:
			m := ev.(*kafka.Message)
			if m.TopicPartition.Error != nil {
				errs = append(errs, fmt.Errorf("record %v: %w", m.Opaque, m.TopicPartition.Error))
				continue
			}
			off := int64(m.TopicPartition.Offset)
			if off < 0 {
				off = -1
			}
			acks = append(acks, ack{I: m.Opaque.(int), Partition: m.TopicPartition.Partition, Offset: off})
		case <-ctx.Done():
			return acks, context.Cause(ctx)
		}
	}
	return acks, errors.Join(errs...)
}

// confluentSend enqueues m, waiting while librdkafka's queue is full.
func confluentSend(ctx context.Context, p *kafka.Producer, m *kafka.Message, deliveries chan kafka.Event) error {
	for {
		err := p.Produce(m, deliveries)
		var kerr kafka.Error
		if err == nil || !errors.As(err, &kerr) || kerr.Code() != kafka.ErrQueueFull {
			return err
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(time.Millisecond):
		}
	}
}

func confluentConsumerConfig(o *options) (kafka.ConfigMap, error) {
	c := confluentBase(o)
	c["enable.auto.commit"] = false
	c["enable.auto.offset.store"] = false
	c["auto.offset.reset"] = "earliest"
	c["isolation.level"] = o.isolation
	if o.group == "" {
		// librdkafka wants a group.id even for assign(); it is never joined
		// and nothing is committed.
		c["group.id"] = fmt.Sprintf("kafkit-peer-go-nogroup-%d-%d", os.Getpid(), time.Now().UnixNano())
		return c, nil
	}
	c["group.id"] = o.group
	if o.groupProtocol == "consumer" {
		c["group.protocol"] = "consumer"
		switch o.assignor {
		case "", "uniform", "sticky":
			c["group.remote.assignor"] = "uniform"
		case "range":
			c["group.remote.assignor"] = "range"
		default:
			return nil, errUsage("--group-protocol consumer with confluent needs --assignor range or uniform")
		}
		return c, nil
	}
	switch o.assignor {
	case "":
		// librdkafka's default: range,roundrobin
	case "range", "roundrobin", "cooperative-sticky":
		c["partition.assignment.strategy"] = o.assignor
	default:
		return nil, errUnsupported("librdkafka has no " + o.assignor + " assignor (only range, roundrobin, cooperative-sticky)")
	}
	return c, nil
}

func confluentRecord(m *kafka.Message) outRecord {
	r := outRecord{
		Partition: m.TopicPartition.Partition, Offset: int64(m.TopicPartition.Offset),
		Key: m.Key, Value: m.Value, TimestampMs: millis(m.Timestamp),
	}
	for _, h := range m.Headers {
		r.Headers = append(r.Headers, header{Key: h.Key, Value: h.Value})
	}
	return r
}

func partitionsOf(tps []kafka.TopicPartition, topic string) []int32 {
	ps := []int32{}
	for _, tp := range tps {
		if tp.Topic != nil && *tp.Topic == topic {
			ps = append(ps, tp.Partition)
		}
	}
	return ps
}

// confluentStart creates a consumer that is subscribed to o.topic (with a
// group) or assigned all its partitions from the beginning (without).
func confluentStart(o *options, s *sink) (*kafka.Consumer, error) {
	cm, err := confluentConsumerConfig(o)
	if err != nil {
		return nil, err
	}
	c, err := kafka.NewConsumer(&cm)
	if err != nil {
		return nil, err
	}
	if o.group != "" {
		// The library performs the (incremental) assign after the callback.
		err = c.Subscribe(o.topic, func(c *kafka.Consumer, ev kafka.Event) error {
			switch e := ev.(type) {
			case kafka.AssignedPartitions:
				s.event("assigned", partitionsOf(e.Partitions, o.topic))
			case kafka.RevokedPartitions:
				kind := "revoked"
				if c.AssignmentLost() {
					kind = "lost"
				}
				s.event(kind, partitionsOf(e.Partitions, o.topic))
			}
			return nil
		})
	} else {
		var md *kafka.Metadata
		md, err = c.GetMetadata(&o.topic, false, 10000)
		if err == nil {
			var tps []kafka.TopicPartition
			for _, p := range md.Topics[o.topic].Partitions {
				tps = append(tps, kafka.TopicPartition{Topic: &o.topic, Partition: p.ID, Offset: kafka.OffsetBeginning})
			}
			if len(tps) == 0 {
				err = fmt.Errorf("topic %s has no partitions", o.topic)
			} else {
				err = c.Assign(tps)
			}
		}
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// confluentPoll polls c until ctx is done or fn returns false.
func confluentPoll(ctx context.Context, c *kafka.Consumer, fn func(*kafka.Message) bool) error {
	for ctx.Err() == nil {
		switch e := c.Poll(100).(type) {
		case *kafka.Message:
			if e.TopicPartition.Error != nil {
				logf("confluent: %v", e.TopicPartition.Error)
				continue
			}
			if !fn(e) {
				return nil
			}
		case kafka.Error:
			if e.IsFatal() {
				return e
			}
			logf("confluent: %v", e)
		}
	}
	return nil
}

func (confluentPeer) consume(ctx context.Context, o *options, s *sink) error {
	c, err := confluentStart(o, s)
	if err != nil {
		return err
	}
	var commitErr error
	err = confluentPoll(ctx, c, func(m *kafka.Message) bool {
		var commit func() error
		if o.group != "" {
			commit = func() error { _, err := c.CommitMessage(m); return err }
		}
		ok, err := s.deliver(confluentRecord(m), commit)
		if err != nil {
			commitErr = err
			return false
		}
		return ok
	})
	return errors.Join(err, commitErr, c.Close())
}

// confluentBenchProducer is the librdkafka producer configuration of
// bench-produce, beyond confluentProducerConfig: the buffer kafkit's writer
// has (64 MiB, 1M records; librdkafka's own are 1 GiB and 100k), the five
// requests in flight idempotence allows (librdkafka would lower its default
// of 1,000,000 to 5 itself), and librdkafka's batch defaults, set so that
// the settings line shows what is in force.
var confluentBenchProducer = kafka.ConfigMap{
	"queue.buffering.max.kbytes":   benchBufferBytes / 1024,
	"queue.buffering.max.messages": benchBufferRecords,
	"batch.size":                   1000000,
	"batch.num.messages":           10000,
	"go.delivery.report.fields":    "none",
}

// confluentBenchConsumer is librdkafka's fetch defaults, set so that the
// settings line shows what is in force.
var confluentBenchConsumer = kafka.ConfigMap{
	"fetch.min.bytes":            1,
	"fetch.max.bytes":            52428800,
	"max.partition.fetch.bytes":  1048576,
	"fetch.wait.max.ms":          500,
	"queued.max.messages.kbytes": 65536,
	"queued.min.messages":        100000,
}

func (confluentPeer) benchProduce(ctx context.Context, o *options, w *benchWork, settings func(map[string]any)) (span, error) {
	c, err := confluentProducerConfig(o)
	if err != nil {
		return span{}, err
	}
	for k, v := range confluentBenchProducer {
		c[k] = v
	}
	if o.idempotent {
		c["max.in.flight.requests.per.connection"] = 5
	}
	p, err := kafka.NewProducer(&c)
	if err != nil {
		return span{}, err
	}
	defer p.Close()
	go confluentLogEvents(p)
	// Connect and load the topic's metadata before the clock starts.
	if _, err := p.GetMetadata(&o.topic, false, 10000); err != nil {
		return span{}, err
	}
	_, ver := kafka.LibraryVersion()
	settings(map[string]any{
		"path": "Producer.Produce with a delivery channel", "librdkafka": ver,
		"batch_max_bytes": c["batch.size"], "batch_max_records": c["batch.num.messages"],
		"max_in_flight": fmt.Sprintf("%v per connection", c["max.in.flight.requests.per.connection"]),
		"buffer": fmt.Sprintf("%v KiB, %v records",
			c["queue.buffering.max.kbytes"], c["queue.buffering.max.messages"]),
		"go.delivery.report.fields": c["go.delivery.report.fields"],
	})
	deliveries := make(chan kafka.Event, 100000)
	cnt := newBenchCounter(o.count)
	go func() {
		for ev := range deliveries {
			m := ev.(*kafka.Message)
			cnt.add(1, 0, m.TopicPartition.Error)
		}
	}()
	partition := func(i int) int32 { return kafka.PartitionAny }
	if w.partitions > 0 {
		partition = w.partition
	}
	start := stampNow()
	for i := 0; i < o.count; i++ {
		m := &kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &o.topic, Partition: partition(i)},
			Key:            w.key(i), Value: w.value,
		}
		if err := confluentSend(ctx, p, m, deliveries); err != nil {
			return span{}, err
		}
	}
	if err := cnt.wait(ctx); err != nil {
		return span{}, err
	}
	return cnt.since(start), nil
}

func (confluentPeer) benchConsume(ctx context.Context, o *options, settings func(map[string]any)) (span, int64, error) {
	o.group = ""
	cm, err := confluentConsumerConfig(o)
	if err != nil {
		return span{}, 0, err
	}
	for k, v := range confluentBenchConsumer {
		cm[k] = v
	}
	c, err := kafka.NewConsumer(&cm)
	if err != nil {
		return span{}, 0, err
	}
	defer c.Close()
	// Every partition from the beginning: no group is joined (librdkafka
	// wants a group.id anyway) and nothing is committed.
	md, err := c.GetMetadata(&o.topic, false, 10000)
	if err != nil {
		return span{}, 0, err
	}
	var tps []kafka.TopicPartition
	for _, p := range md.Topics[o.topic].Partitions {
		tps = append(tps, kafka.TopicPartition{Topic: &o.topic, Partition: p.ID, Offset: kafka.OffsetBeginning})
	}
	if len(tps) == 0 {
		return span{}, 0, fmt.Errorf("topic %s has no partitions", o.topic)
	}
	_, ver := kafka.LibraryVersion()
	settings(map[string]any{
		"path": "Consumer.Assign + Poll", "librdkafka": ver,
		"fetch_min_bytes":     cm["fetch.min.bytes"],
		"fetch_max_bytes":     cm["fetch.max.bytes"],
		"partition_max_bytes": cm["max.partition.fetch.bytes"],
		"fetch_max_wait_ms":   cm["fetch.wait.max.ms"],
		"buffer": fmt.Sprintf("%v KiB, %v records per partition",
			cm["queued.max.messages.kbytes"], cm["queued.min.messages"]),
	})
	cnt := newBenchCounter(o.count)
	cnt.begin()
	if err := c.Assign(tps); err != nil {
		return span{}, 0, err
	}
	err = confluentPoll(ctx, c, func(m *kafka.Message) bool { return cnt.add(1, int64(len(m.Value)), nil) })
	if err != nil {
		return span{}, 0, err
	}
	if err := cnt.wait(ctx); err != nil {
		return span{}, 0, err
	}
	return cnt.span(), cnt.total(), nil
}
