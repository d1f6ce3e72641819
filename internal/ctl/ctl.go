package ctl

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/grpc"

	blockvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/blockvalidator/v1"
	headersv1 "github.com/btcmesh/btcmesh/proto/btcmesh/headers/v1"
	minerv1 "github.com/btcmesh/btcmesh/proto/btcmesh/miner/v1"
	nodev1 "github.com/btcmesh/btcmesh/proto/btcmesh/node/v1"
	p2pv1 "github.com/btcmesh/btcmesh/proto/btcmesh/p2p/v1"
	utxostorev1 "github.com/btcmesh/btcmesh/proto/btcmesh/utxostore/v1"

	"github.com/btcmesh/btcmesh/internal/chain"
	"github.com/btcmesh/btcmesh/internal/config"
	"github.com/btcmesh/btcmesh/internal/grpcclient"
)

// DefaultRPC is the node's default --grpc-listen address.
const DefaultRPC = "127.0.0.1:8555"

// service names a gRPC service the client talks to.
type service string

// The services, named as their --rpc-<name> flags.
const (
	svcHeaders        service = "headers"
	svcUtxoStore      service = "utxostore"
	svcBlockValidator service = "blockvalidator"
	svcMiner          service = "miner"
	svcP2P            service = "p2p"
	svcNode           service = "node"
)

// allServices lists the services in flag order.
var allServices = []service{svcHeaders, svcUtxoStore, svcBlockValidator, svcMiner, svcP2P, svcNode}

// options are the global flags.
type options struct {
	rpc      string
	perSvc   map[service]*string
	timeout  time.Duration
	network  string
	stdin    bool
	rpcWait  bool
	netParam chain.Network
}

// cli is one invocation: options, connections and typed clients.
type cli struct {
	opts   options
	ctx    context.Context
	conns  map[string]*grpc.ClientConn
	stdout io.Writer

	headers        headersv1.HeaderServiceClient
	utxo           utxostorev1.UtxoStoreServiceClient
	blockValidator blockvalidatorv1.BlockValidatorServiceClient
	miner          minerv1.MinerServiceClient
	p2p            p2pv1.P2PServiceClient
	node           nodev1.NodeServiceClient
}

// Run executes `btcmesh ctl ARGS...` and returns the process exit code:
// 0 on success, 1 on any failure (the reason is written to stderr).
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("btcmesh ctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.rpc, "rpc", DefaultRPC, "HOST:PORT of the node's gRPC API (its --grpc-listen)")
	o.perSvc = map[service]*string{}
	for _, s := range allServices {
		o.perSvc[s] = fs.String("rpc-"+string(s), "", fmt.Sprintf("HOST:PORT of the %s service when it runs as its own process (default: --rpc)", s))
	}
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "deadline for the whole command")
	fs.StringVar(&o.network, "network", "regtest", "network used to encode and parse addresses: "+strings.Join(chain.Names(), ", "))
	fs.BoolVar(&o.stdin, "stdin", false, "read extra arguments from standard input, one per line")
	fs.BoolVar(&o.rpcWait, "rpcwait", false, "wait for the server to come up instead of failing at once")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: btcmesh ctl [flags] VERB [ARGS...]\n\nVerbs (btcmesh ctl help VERB for details):\n%s\nFlags (each also settable as BTCMESH_<FLAG>):\n", verbList())
		fs.PrintDefaults()
	}
	if err := config.Parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	if err := o.validate(); err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	net, err := chain.Lookup(o.network)
	if err != nil {
		fmt.Fprintf(stderr, "error: --network: %v\n", err)
		return 1
	}
	o.netParam = net

	rest := fs.Args()
	if o.stdin {
		extra, err := readStdinArgs(stdin)
		if err != nil {
			fmt.Fprintf(stderr, "error: reading arguments from stdin: %v\n", err)
			return 1
		}
		rest = append(rest, extra...)
	}
	if len(rest) == 0 {
		fmt.Fprintln(stderr, "error: too few parameters (need at least command)")
		fs.Usage()
		return 1
	}
	name, vargs := rest[0], rest[1:]
	if name == "help" {
		return runHelp(vargs, stdout, stderr)
	}
	v, ok := verbs()[name]
	if !ok {
		fmt.Fprintf(stderr, "error: unknown command %q (btcmesh ctl help lists commands)\n", name)
		return 1
	}
	if len(vargs) < v.min || len(vargs) > v.max {
		fmt.Fprintf(stderr, "error: %s takes %s, got %d\nusage: btcmesh ctl %s %s\n",
			name, countText(v.min, v.max), len(vargs), name, v.args)
		return 1
	}

	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	c := &cli{opts: o, ctx: ctx, conns: map[string]*grpc.ClientConn{}, stdout: stdout}
	defer c.close()
	if err := c.dialAll(); err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	result, err := v.run(c, vargs)
	if err != nil {
		writeError(stderr, err)
		return 1
	}
	if err := printResult(stdout, result); err != nil {
		fmt.Fprintf(stderr, "error: writing result: %v\n", err)
		return 1
	}
	return 0
}

// validate checks the addresses and the timeout.
func (o *options) validate() error {
	if err := config.CheckHostPort("rpc", o.rpc); err != nil {
		return err
	}
	for _, s := range allServices {
		if v := *o.perSvc[s]; v != "" {
			if err := config.CheckHostPort("rpc-"+string(s), v); err != nil {
				return err
			}
		}
	}
	if o.timeout <= 0 {
		return fmt.Errorf("--timeout must be > 0")
	}
	return nil
}

// addr returns the address serving s.
func (o *options) addr(s service) string {
	if v := *o.perSvc[s]; v != "" {
		return v
	}
	return o.rpc
}

// dialAll creates (lazily connecting) client connections, one per distinct
// address.
func (c *cli) dialAll() error {
	conn := func(s service) (*grpc.ClientConn, error) {
		a := c.opts.addr(s)
		if cc, ok := c.conns[a]; ok {
			return cc, nil
		}
		cc, err := grpcclient.Dial(a)
		if err != nil {
			return nil, err
		}
		c.conns[a] = cc
		return cc, nil
	}
	for _, s := range allServices {
		cc, err := conn(s)
		if err != nil {
			return err
		}
		switch s {
		case svcHeaders:
			c.headers = headersv1.NewHeaderServiceClient(cc)
		case svcUtxoStore:
			c.utxo = utxostorev1.NewUtxoStoreServiceClient(cc)
		case svcBlockValidator:
			c.blockValidator = blockvalidatorv1.NewBlockValidatorServiceClient(cc)
		case svcMiner:
			c.miner = minerv1.NewMinerServiceClient(cc)
		case svcP2P:
			c.p2p = p2pv1.NewP2PServiceClient(cc)
		case svcNode:
			c.node = nodev1.NewNodeServiceClient(cc)
		}
	}
	return nil
}

// close closes every connection.
func (c *cli) close() {
	for _, cc := range c.conns {
		_ = cc.Close()
	}
}

// callOpts are the per-call options: fail fast when the server is down
// (grpcclient.Dial waits for readiness by default, right for services but
// not for a person at a terminal) unless --rpcwait.
func (c *cli) callOpts() []grpc.CallOption {
	return []grpc.CallOption{grpc.WaitForReady(c.opts.rpcWait)}
}

// readStdinArgs reads one argument per line, as bitcoin-cli -stdin does.
// Lines may be arbitrarily long (a 4 MB block is 8 MB of hex).
func readStdinArgs(r io.Reader) ([]string, error) {
	if r == nil {
		return nil, nil
	}
	br := bufio.NewReaderSize(r, 1<<20)
	var out []string
	for {
		line, err := br.ReadString('\n')
		if len(line) > 0 {
			line = strings.TrimSuffix(line, "\n")
			line = strings.TrimSuffix(line, "\r")
			out = append(out, line)
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// countText describes an argument count range.
func countText(minArgs, maxArgs int) string {
	plural := func(n int) string {
		if n == 1 {
			return "1 argument"
		}
		return fmt.Sprintf("%d arguments", n)
	}
	switch {
	case minArgs == maxArgs:
		return plural(minArgs)
	case minArgs == 0:
		return "at most " + plural(maxArgs)
	default:
		return fmt.Sprintf("%d to %d arguments", minArgs, maxArgs)
	}
}
