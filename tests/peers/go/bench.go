package main

// The bench-produce and bench-consume commands (README.md, "bench-produce"):
// what a producer sends, the settings line, the counter that stops the
// clock, and the process's own CPU time and peak memory. The client-specific
// halves are the benchProduce and benchConsume methods of each peer.

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The producer buffer every client that has such a limit gets, kafkit's
// writer defaults: 64 MiB and 1,000,000 records.
const (
	benchBufferBytes   = 64 << 20
	benchBufferRecords = 1_000_000
)

// stamp is this process at one moment: the wall clock and the CPU time of
// the whole process (user + system, every thread, the runtime's included).
type stamp struct {
	wall time.Time
	cpu  time.Duration
}

func stampNow() stamp {
	return stamp{wall: time.Now(), cpu: processCPU()}
}

// span is what passed between two stamps.
type span struct {
	wall time.Duration
	cpu  time.Duration
}

func (s stamp) until(end stamp) span {
	return span{wall: end.wall.Sub(s.wall), cpu: end.cpu - s.cpu}
}

// processCPU is getrusage(RUSAGE_SELF): user plus system time of every
// thread of the process.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSS is VmHWM from /proc/self/status in bytes (0 if unknown): the
// largest resident set the process has had.
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			fields := strings.Fields(rest)
			if len(fields) == 0 {
				return 0
			}
			kb, err := strconv.ParseInt(fields[0], 10, 64)
			if err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}

// benchWork is what bench-produce sends: record i carries value, the key
// keys[i % len(keys)] (none when keys is empty) and, when partitions > 0
// (the manual partitioner), goes to partition i % partitions.
type benchWork struct {
	value      []byte
	keys       [][]byte
	partitions int
}

// benchKeys are n distinct keys, "key-000000", "key-000001", ...: the same
// bytes every client of the benchmark sends.
func benchKeys(n int) [][]byte {
	keys := make([][]byte, n)
	for j := range keys {
		keys[j] = []byte(fmt.Sprintf("key-%06d", j))
	}
	return keys
}

func (w *benchWork) key(i int) []byte {
	if len(w.keys) == 0 {
		return nil
	}
	return w.keys[i%len(w.keys)]
}

func (w *benchWork) partition(i int) int32 {
	if w.partitions <= 0 {
		return 0
	}
	return int32(i % w.partitions)
}

// limit is n for the settings line, or "none" when n is 0 (no limit).
func limit(n int) any {
	if n == 0 {
		return "none"
	}
	return n
}

func runBenchProduce(ctx context.Context, o *options, p peer) error {
	if o.partitioner == "manual" && o.partitions <= 0 {
		return errUsage("bench-produce --partitioner manual needs --partitions P")
	}
	if o.partitions > 0 {
		if err := ensureTopic(ctx, o, o.topic, o.partitions); err != nil {
			return err
		}
	}
	w := &benchWork{value: make([]byte, o.size), keys: benchKeys(o.keys)}
	_, _ = rand.Read(w.value)
	partitioner := o.partitioner
	switch partitioner {
	case "":
		partitioner = "default"
	case "manual":
		w.partitions = o.partitions
		partitioner = fmt.Sprintf("manual: record i to partition i %% %d", o.partitions)
	}
	printSettings := func(extra map[string]any) {
		s := map[string]any{
			"client": o.client, "command": o.command, "topic": o.topic,
			"records": o.count, "size": o.size, "partitions": o.partitions, "keys": o.keys,
			"linger_ms": o.linger.Milliseconds(), "acks": o.acks,
			"idempotent": o.idempotent, "compression": o.codec, "partitioner": partitioner,
		}
		for k, v := range extra {
			s[k] = v
		}
		emit(map[string]any{"settings": s})
	}
	sp, err := p.benchProduce(ctx, o, w, printSettings)
	if err != nil {
		return err
	}
	emitStats(o, int64(o.count)*int64(o.size), sp)
	return nil
}

func runBenchConsume(ctx context.Context, o *options, p peer) error {
	printSettings := func(extra map[string]any) {
		s := map[string]any{
			"client": o.client, "command": o.command, "topic": o.topic,
			"records": o.count, "isolation": o.isolation,
		}
		for k, v := range extra {
			s[k] = v
		}
		emit(map[string]any{"settings": s})
	}
	sp, bytes, err := p.benchConsume(ctx, o, printSettings)
	if err != nil {
		return err
	}
	emitStats(o, bytes, sp)
	return nil
}

func emitStats(o *options, bytes int64, sp span) {
	secs := sp.wall.Seconds()
	emit(map[string]any{
		"client":          o.client,
		"records":         o.count,
		"bytes":           bytes,
		"seconds":         secs,
		"records_per_sec": float64(o.count) / secs,
		"mb_per_sec":      float64(bytes) / secs / 1e6,
		"cpu_seconds":     sp.cpu.Seconds(),
		"peak_rss_bytes":  peakRSS(),
	})
}

// benchCounter counts completions (acknowledgements or records read) and
// stamps the target-th.
type benchCounter struct {
	mu     sync.Mutex
	target int
	n      int
	errs   int
	first  error
	bytes  int64
	start  stamp // at begin
	end    stamp // at the target-th completion
	done   chan struct{}
}

func newBenchCounter(target int) *benchCounter {
	return &benchCounter{target: target, done: make(chan struct{})}
}

// add counts n completions (err != nil: failures) carrying bytes. It
// reports whether more are wanted.
func (c *benchCounter) add(n int, bytes int64, err error) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n >= c.target {
		return false
	}
	if err != nil {
		c.errs += n
		if c.first == nil {
			c.first = err
		}
	}
	c.n += n
	c.bytes += bytes
	if c.n >= c.target {
		c.end = stampNow()
		close(c.done)
	}
	return c.n < c.target
}

// begin starts a consumer's clock: call it once the client is connected and
// knows the topic, just before it is told to read (assigns its partitions).
func (c *benchCounter) begin() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.start = stampNow()
}

// total returns the bytes counted so far.
func (c *benchCounter) total() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// wait blocks until the target is reached or ctx ends, and fails if any
// completion failed.
func (c *benchCounter) wait(ctx context.Context) error {
	select {
	case <-c.done:
	case <-ctx.Done():
		select {
		case <-c.done: // both were ready
		default:
			c.mu.Lock()
			defer c.mu.Unlock()
			return fmt.Errorf("bench stopped after %d of %d records: %v", c.n, c.target, context.Cause(ctx))
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.errs > 0 {
		return fmt.Errorf("%d of %d records failed; first error: %v", c.errs, c.target, c.first)
	}
	return nil
}

// since is the span from s (taken before the first send) to the last
// completion: a producer's timed section.
func (c *benchCounter) since(s stamp) span {
	c.mu.Lock()
	defer c.mu.Unlock()
	return s.until(c.end)
}

// span is the span from begin to the last completion: a consumer's timed
// section, from its assignment to its last record.
func (c *benchCounter) span() span {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.start.until(c.end)
}
