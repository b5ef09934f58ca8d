package main

// The bench-produce and bench-consume commands (README.md, "bench-produce"):
// what a producer sends, the settings line, the counter that stops the
// clock, and the process's own CPU time, peak memory and the bytes it sent
// (its TCP connections' acknowledged bytes, and what its write calls wrote).
// The client-specific halves are the benchProduce and benchConsume methods
// of each peer.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// The producer buffer every client that has such a limit gets, kafkit's
// writer defaults: 64 MiB and 1,000,000 records.
const (
	benchBufferBytes   = 64 << 20
	benchBufferRecords = 1_000_000
)

// stamp is this process at one moment: the wall clock, the CPU time of the
// whole process (user + system, every thread, the runtime's included), the
// bytes its write calls have written (wchar, -1 if unknown) and the bytes
// each of its open TCP connections has had acknowledged (nil if unknown).
type stamp struct {
	wall    time.Time
	cpu     time.Duration
	written int64
	sent    map[string]int64
}

func stampNow() stamp {
	return stamp{wall: time.Now(), cpu: processCPU(), written: ioWchar(), sent: tcpBytesAcked()}
}

// span is what passed between two stamps; written and sent are -1 when
// unknown. fetches (Fetch responses read, where a consumer counts them) is
// 0 when unknown.
type span struct {
	wall    time.Duration
	cpu     time.Duration
	written int64
	sent    int64
	fetches int64
}

func (s stamp) until(end stamp) span {
	sp := span{wall: end.wall.Sub(s.wall), cpu: end.cpu - s.cpu, written: -1, sent: -1}
	if s.written >= 0 && end.written >= s.written {
		sp.written = end.written - s.written
	}
	if s.sent != nil && end.sent != nil {
		// Each socket's growth; all of a socket opened in between, less
		// its SYN (one byte of tcpi_bytes_acked); a socket closed in
		// between is not counted (the clients keep theirs open).
		sp.sent = 0
		for sock, acked := range end.sent {
			before, ok := s.sent[sock]
			if !ok {
				before = 1
			}
			if acked > before {
				sp.sent += acked - before
			}
		}
	}
	return sp
}

// ioWchar is wchar of /proc/self/io: the bytes the process's write calls
// (on sockets, pipes, eventfds and files alike) have written; -1 if unknown.
func ioWchar() int64 {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "wchar:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}

// tcpiBytesAcked is the offset of tcpi_bytes_acked (a u64) in Linux's
// struct tcp_info (Linux 4.1+): 8 one-byte fields, 24 u32s, two u64s.
const tcpiBytesAcked = 8 + 24*4 + 2*8

// tcpBytesAcked is tcpi_bytes_acked of each open TCP socket of the process,
// by its "socket:[inode]" name: the bytes it has sent over that connection
// that the peer acknowledged; nil if unknown.
func tcpBytesAcked() map[string]int64 {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil
	}
	acked := map[string]int64{}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		link, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil || !strings.HasPrefix(link, "socket:") {
			continue
		}
		var info [256]byte
		size := uint32(len(info))
		_, _, errno := syscall.Syscall6(syscall.SYS_GETSOCKOPT, uintptr(fd),
			syscall.SOL_TCP, syscall.TCP_INFO,
			uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&size)), 0)
		if errno != 0 || size < tcpiBytesAcked+8 {
			continue // not a TCP socket, or closed meanwhile
		}
		acked[link] = int64(binary.NativeEndian.Uint64(info[tcpiBytesAcked:]))
	}
	return acked
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
	line := map[string]any{
		"client":          o.client,
		"records":         o.count,
		"bytes":           bytes,
		"seconds":         secs,
		"records_per_sec": float64(o.count) / secs,
		"mb_per_sec":      float64(bytes) / secs / 1e6,
		"cpu_seconds":     sp.cpu.Seconds(),
		"peak_rss_bytes":  peakRSS(),
	}
	if sp.written >= 0 {
		line["wchar"] = sp.written
	}
	if sp.sent >= 0 {
		line["tcp_bytes_sent"] = sp.sent
	}
	if sp.fetches > 0 {
		line["fetches"] = sp.fetches
	}
	emit(line)
}

// benchTopics is --topic split at commas: bench-consume reads every
// partition of each.
func benchTopics(o *options) []string {
	var topics []string
	for _, t := range strings.Split(o.topic, ",") {
		if t = strings.TrimSpace(t); t != "" {
			topics = append(topics, t)
		}
	}
	return topics
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
