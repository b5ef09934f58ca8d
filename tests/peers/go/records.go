package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"
)

// header is one record header on the wire contract. A nil Value is JSON null
// (a null header value); an empty non-nil Value is "".
type header struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

// inRecord is one line of produce input. encoding/json decodes null into a
// nil slice and "" into an empty non-nil slice, which is exactly the
// null/empty distinction the contract needs.
type inRecord struct {
	Key       []byte   `json:"key"`
	Value     []byte   `json:"value"`
	Headers   []header `json:"headers"`
	Partition *int32   `json:"partition"`
}

// outRecord is one consumed record.
type outRecord struct {
	Partition   int32    `json:"partition"`
	Offset      int64    `json:"offset"`
	Key         []byte   `json:"key"`
	Value       []byte   `json:"value"`
	Headers     []header `json:"headers"`
	TimestampMs int64    `json:"timestamp_ms"`
}

// ack reports one acknowledged produce input record.
type ack struct {
	I         int   `json:"i"`
	Partition int32 `json:"partition"`
	Offset    int64 `json:"offset"`
}

var stdoutMu sync.Mutex

// emit writes v as one JSON line on stdout.
func emit(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"error": "encoding output: " + err.Error()})
	}
	stdoutMu.Lock()
	defer stdoutMu.Unlock()
	_, _ = os.Stdout.Write(append(b, '\n'))
}

// sink prints consumed records and rebalance events and stops the consumer
// once limit records (0: no limit) have been printed and committed.
type sink struct {
	mu    sync.Mutex
	limit int
	n     int
	stop  context.CancelFunc
}

// deliver prints r unless the limit was already reached, then runs commit
// (which may be nil). It reports whether r was printed; a consumer must stop
// and must not commit when it returns false.
func (s *sink) deliver(r outRecord, commit func() error) (bool, error) {
	if r.Headers == nil {
		r.Headers = []header{}
	}
	s.mu.Lock()
	if s.limit > 0 && s.n >= s.limit {
		s.mu.Unlock()
		return false, nil
	}
	emit(r)
	s.n++
	full := s.limit > 0 && s.n >= s.limit
	s.mu.Unlock()
	var err error
	if commit != nil {
		err = commit()
	}
	if full {
		s.stop()
	}
	return true, err
}

// event prints a rebalance event with sorted partitions; events without
// partitions (e.g. empty incremental assignments) are not printed.
func (s *sink) event(kind string, partitions []int32) {
	if len(partitions) == 0 {
		return
	}
	ps := append([]int32{}, partitions...)
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	emit(map[string]any{"event": kind, "partitions": ps})
}

func (s *sink) delivered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func millis(t time.Time) int64 {
	if t.IsZero() {
		return -1
	}
	return t.UnixMilli()
}

// readInput reads the produce input lines from stdin.
func readInput() ([]inRecord, error) {
	var recs []inRecord
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for line := 1; sc.Scan(); line++ {
		b := sc.Bytes()
		if len(b) == 0 {
			continue
		}
		var r inRecord
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, errUsage(fmt.Sprintf("stdin line %d: %v", line, err))
		}
		recs = append(recs, r)
	}
	return recs, sc.Err()
}

func runProduce(ctx context.Context, o *options, p peer) error {
	recs, err := readInput()
	if err != nil {
		return err
	}
	manual := false
	for _, r := range recs {
		if r.Partition != nil {
			manual = true
		}
	}
	if manual && o.partitioner == "" {
		o.partitioner = "manual"
	}
	if o.partitioner == "manual" {
		for i, r := range recs {
			if r.Partition == nil {
				return errUsage(fmt.Sprintf("record %d has no partition but the partitioner is manual", i))
			}
		}
	} else if manual {
		return errUsage("records carry a partition but --partitioner is not manual")
	}
	acks, err := p.produce(ctx, o, recs)
	sort.Slice(acks, func(i, j int) bool { return acks[i].I < acks[j].I })
	for _, a := range acks {
		if o.acks == "0" {
			a.Offset = -1
		}
		emit(a)
	}
	if err != nil {
		return err
	}
	if len(acks) != len(recs) {
		return fmt.Errorf("only %d of %d records were acknowledged", len(acks), len(recs))
	}
	emit(map[string]any{"done": true, "count": len(acks)})
	return nil
}
