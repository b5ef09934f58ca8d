// Command kafkit-peer-go drives four Go Kafka clients (sarama, kafka-go,
// franz-go, confluent-kafka-go) through a small JSON-lines contract so that
// kafkit's tests can check interoperability and compare throughput.
//
// Usage: kafkit-peer-go CLIENT COMMAND [SUBCOMMAND] [flags]
//
// See README.md for the exact contract.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// options holds every flag; each command reads the ones it needs.
type options struct {
	client  string
	command string
	sub     string // admin subcommand

	brokers       []string
	topic         string
	codec         string
	partitioner   string
	acks          string
	idempotent    bool
	idempotentSet bool // --idempotent was given explicitly
	count         int
	timeout       time.Duration
	from          string
	group         string
	assignor      string
	groupProtocol string
	isolation     string
	size          int
	keys          int // bench-produce: distinct keys (0: keyless)
	partitions    int
	linger        time.Duration
	replication   int
	configs       []string
	ifNotExists   bool
	kafkaVersion  string
	verbose       bool
	timeoutWasSet bool
}

// peer is implemented once per client library.
type peer interface {
	// produce writes recs in order and returns one ack per acknowledged record.
	produce(ctx context.Context, o *options, recs []inRecord) ([]ack, error)
	// consume reads records into s until ctx is done (s cancels ctx once
	// its limit is reached), then commits and closes.
	consume(ctx context.Context, o *options, s *sink) error
	// benchProduce sends o.count records of w and returns the span from
	// just before the first send to the last acknowledgement.
	benchProduce(ctx context.Context, o *options, w *benchWork, settings func(map[string]any)) (span, error)
	// benchConsume reads o.count records from the start of every partition
	// and returns the span from the assignment to the last record, and the value
	// bytes read.
	benchConsume(ctx context.Context, o *options, settings func(map[string]any)) (span, int64, error)
}

var peers = map[string]peer{
	"sarama":    saramaPeer{},
	"kafka-go":  kafkaGoPeer{},
	"franz-go":  franzPeer{},
	"confluent": confluentPeer{},
}

// errUnsupported marks a feature the chosen client does not have (exit 3).
type errUnsupported string

func (e errUnsupported) Error() string { return "unsupported: " + string(e) }

// errUsage marks bad command-line input (exit 2).
type errUsage string

func (e errUsage) Error() string { return "usage: " + string(e) }

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	o, err := parseArgs(args)
	if err != nil {
		return fail(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	if o.command == "admin" {
		if o.client != "franz-go" {
			return fail(errUnsupported("admin is implemented with franz-go's kadm only; use client franz-go"))
		}
		err = runAdmin(ctx, o)
	} else {
		err = runCommand(ctx, o, peers[o.client])
	}
	if err != nil {
		return fail(err)
	}
	return 0
}

func fail(err error) int {
	emit(map[string]any{"error": err.Error()})
	var u errUnsupported
	var us errUsage
	switch {
	case errors.As(err, &u):
		return 3
	case errors.As(err, &us):
		return 2
	}
	return 1
}

func parseArgs(args []string) (*options, error) {
	if len(args) < 2 {
		return nil, errUsage("kafkit-peer-go CLIENT COMMAND [flags]; CLIENT is sarama|kafka-go|franz-go|confluent")
	}
	o := &options{client: args[0], command: args[1]}
	if _, ok := peers[o.client]; !ok {
		return nil, errUsage("unknown client " + o.client)
	}
	rest := args[2:]
	switch o.command {
	case "produce", "consume", "group-member", "bench-produce", "bench-consume":
	case "admin":
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			return nil, errUsage("admin needs a subcommand")
		}
		o.sub, rest = rest[0], rest[1:]
	default:
		return nil, errUsage("unknown command " + o.command)
	}

	fs := flag.NewFlagSet("kafkit-peer-go", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	brokers := fs.String("brokers", "127.0.0.1:9092", "comma-separated bootstrap brokers")
	fs.StringVar(&o.topic, "topic", "", "topic")
	fs.StringVar(&o.codec, "codec", "none", "none|gzip|snappy|lz4|zstd")
	fs.StringVar(&o.partitioner, "partitioner", "", "client-specific partitioner name (default: the client's default)")
	fs.StringVar(&o.acks, "acks", "all", "all|1|0")
	fs.BoolVar(&o.idempotent, "idempotent", false, "enable the idempotent producer")
	fs.IntVar(&o.count, "count", 0, "records to read or write")
	timeoutMs := fs.Int("timeout-ms", 60000, "overall deadline in milliseconds")
	fs.StringVar(&o.from, "from", "", "earliest: read partitions from the start without a group")
	fs.StringVar(&o.group, "group", "", "consumer group id")
	fs.StringVar(&o.assignor, "assignor", "", "range|roundrobin|sticky|cooperative-sticky (default: the client's default)")
	fs.StringVar(&o.groupProtocol, "group-protocol", "classic", "classic|consumer (KIP-848)")
	fs.StringVar(&o.isolation, "isolation", "read_uncommitted", "read_uncommitted|read_committed")
	fs.IntVar(&o.size, "size", 100, "bench record value size in bytes")
	fs.IntVar(&o.keys, "keys", 0, "bench-produce: record i gets key i % N of N distinct keys (0: no keys)")
	fs.IntVar(&o.partitions, "partitions", 0, "partitions (create-topic; bench-produce creates the topic if missing)")
	lingerMs := fs.Int("linger-ms", 5, "producer linger in milliseconds")
	fs.IntVar(&o.replication, "replication-factor", -1, "create-topic replication factor (-1: broker default)")
	fs.Var((*multiFlag)(&o.configs), "config", "create-topic config k=v (repeatable)")
	fs.BoolVar(&o.ifNotExists, "if-not-exists", false, "create-topic: succeed if the topic exists")
	fs.StringVar(&o.kafkaVersion, "kafka-version", "4.0.0", "sarama: protocol version to assume")
	fs.BoolVar(&o.verbose, "verbose", false, "client debug logs on stderr")
	if err := fs.Parse(rest); err != nil {
		return nil, errUsage(err.Error())
	}
	if fs.NArg() > 0 {
		return nil, errUsage("unexpected argument " + fs.Arg(0))
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "idempotent":
			o.idempotentSet = true
		case "timeout-ms":
			o.timeoutWasSet = true
		}
	})
	for _, b := range strings.Split(*brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			o.brokers = append(o.brokers, b)
		}
	}
	o.timeout = time.Duration(*timeoutMs) * time.Millisecond
	o.linger = time.Duration(*lingerMs) * time.Millisecond
	// bench-produce is idempotent unless told otherwise.
	if o.command == "bench-produce" && !o.idempotentSet {
		o.idempotent = true
	}
	return o, o.validate()
}

func (o *options) validate() error {
	if len(o.brokers) == 0 {
		return errUsage("--brokers is empty")
	}
	needsTopic := o.command != "admin" || (o.sub != "list-acls" && o.sub != "describe-scram" &&
		o.sub != "describe-quotas" && o.sub != "group-offsets")
	if needsTopic && o.topic == "" {
		return errUsage("--topic is required")
	}
	switch o.codec {
	case "none", "gzip", "snappy", "lz4", "zstd":
	default:
		return errUsage("unknown --codec " + o.codec)
	}
	switch o.acks {
	case "all", "-1":
		o.acks = "all"
	case "1", "0":
	default:
		return errUsage("--acks must be all, 1 or 0")
	}
	if o.idempotent && o.acks != "all" {
		if o.idempotentSet {
			return errUsage("--idempotent needs --acks all")
		}
		o.idempotent = false
	}
	switch o.isolation {
	case "read_uncommitted", "read_committed":
	default:
		return errUsage("--isolation must be read_uncommitted or read_committed")
	}
	switch o.assignor {
	case "", "range", "roundrobin", "sticky", "cooperative-sticky", "uniform":
	default:
		return errUsage("unknown --assignor " + o.assignor)
	}
	if o.groupProtocol != "classic" && o.groupProtocol != "consumer" {
		return errUsage("--group-protocol must be classic or consumer")
	}
	switch o.command {
	case "consume":
		if o.count <= 0 {
			return errUsage("consume needs --count > 0")
		}
		if o.group == "" && o.from == "" {
			o.from = "earliest"
		}
		if o.group != "" && o.from != "" {
			return errUsage("use either --from earliest or --group")
		}
		if o.from != "" && o.from != "earliest" {
			return errUsage("--from only supports earliest")
		}
	case "group-member":
		if o.group == "" {
			return errUsage("group-member needs --group")
		}
		if !o.timeoutWasSet {
			o.timeout = 0 // runs until stdin closes
		}
	case "bench-produce", "bench-consume":
		if o.count <= 0 || o.size < 0 || o.keys < 0 {
			return errUsage("bench needs --count > 0, --size >= 0 and --keys >= 0")
		}
	}
	return nil
}

func runCommand(ctx context.Context, o *options, p peer) error {
	switch o.command {
	case "produce":
		return runProduce(ctx, o, p)
	case "consume", "group-member":
		return runConsume(ctx, o, p)
	case "bench-produce":
		return runBenchProduce(ctx, o, p)
	case "bench-consume":
		return runBenchConsume(ctx, o, p)
	}
	return errUsage("unknown command " + o.command)
}

func runConsume(ctx context.Context, o *options, p peer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := &sink{limit: o.count, stop: cancel}
	stdinClosed := make(chan struct{})
	if o.command == "group-member" {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			close(stdinClosed)
			cancel()
		}()
	}
	err := p.consume(ctx, o, s)
	n := s.delivered()
	if err != nil {
		return err
	}
	if o.count > 0 && n < o.count {
		select {
		case <-stdinClosed:
		default:
			return fmt.Errorf("stopped after %d of %d records: %v", n, o.count, context.Cause(ctx))
		}
	}
	emit(map[string]any{"done": true, "count": n})
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "kafkit-peer-go: "+format+"\n", args...)
}
