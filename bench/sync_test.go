package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/database"
	_ "github.com/btcsuite/btcd/database/ffldb" // registers the ffldb driver
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/txscript/v2"

	headersv1 "github.com/btcmesh/btcmesh/proto/btcmesh/headers/v1"

	"github.com/btcmesh/btcmesh/internal/grpcclient"
	"github.com/btcmesh/btcmesh/internal/testenv"
)

// TestSyncTable prints the sync row (make bench-sync): one btcd holding a
// generated regtest chain, then, in turn, a fresh `btcmesh node` and a
// fresh btcd connected only to it, each timed from process start until it
// reports the source's tip as its best block. Nothing is asserted about
// time.
//
// BTCMESH_BIN names a built btcmesh (else it is built), BTCD_BIN a btcd
// (else it is built from the module, cached like test/'s interop btcd);
// BTCMESH_BENCH_SYNC_BLOCKS and _TXS_PER_BLOCK shape the chain (2000 and
// 100), BTCMESH_BENCH_SYNC_ROUNDS is how many times each node syncs (1),
// alternating which goes first; BTCMESH_BENCH_SYNC_NODES=btcmesh (or
// btcd) syncs only that one; BTCMESH_BENCH_SYNC_MESH_ARGS adds flags to
// `btcmesh node` (experiments); BTCMESH_BENCH_SYNC_LOGS names a directory to
// keep the nodes' logs (and btcmesh's sampled metrics) in; with it,
// BTCMESH_BENCH_SYNC_PROFILE=DURATION also saves a CPU profile of btcmesh
// that long, from 3 s after its start, as <name>.pprof there.
func TestSyncTable(t *testing.T) {
	if os.Getenv("BTCMESH_BENCH") == "" {
		t.Skip("set BTCMESH_BENCH=1 to print the sync table (make bench-sync)")
	}
	cfg := syncChainCfg{
		blocks:   envInt(t, "BTCMESH_BENCH_SYNC_BLOCKS", 2000),
		perBlock: envInt(t, "BTCMESH_BENCH_SYNC_TXS_PER_BLOCK", 100),
	}
	rounds := envInt(t, "BTCMESH_BENCH_SYNC_ROUNDS", 1)
	runSyncTable(t, cfg, rounds, os.Getenv("BTCMESH_BENCH_SYNC_NODES"), os.Stdout)
}

// runSyncTable syncs the nodes named in nodes ("btcmesh", "btcd"; both
// when empty) rounds times each and prints the table.
func runSyncTable(t *testing.T, cfg syncChainCfg, rounds int, nodes string, out io.Writer) {
	doMesh := nodes == "" || strings.Contains(nodes, "btcmesh")
	doBtcd := nodes == "" || strings.Contains(nodes, "btcd")
	btcd := syncBtcdBinary(t)
	mesh := syncMeshBinary(t)
	chain, cached, took := loadSyncChain(t, cfg)
	how := "generated"
	if cached {
		how = "loaded from cache"
	}
	fmt.Fprintf(out, "sync chain: %d blocks, %d transactions (+ coinbases), %s in %s (%s)\n",
		len(chain.blocks), chain.ntx, how, took.Round(time.Millisecond), cfg.cacheDir())
	src, srcTook := startSyncSource(t, btcd, chain)
	fmt.Fprintf(out, "source btcd at the tip (submitblock) in %s\n", srcTook.Round(time.Millisecond))

	tip := chain.tip()
	// One run per node and round: the sync time and the CPU seconds the
	// node and the source used meanwhile (zero for a node not run).
	type syncRun struct {
		took        time.Duration
		cpu, srcCPU float64
	}
	var meshRuns, btcdRuns []syncRun
	run := func(name string, do bool, sync func() (time.Duration, float64)) syncRun {
		if !do {
			return syncRun{}
		}
		srcBefore := src.cpuSeconds()
		d, cpu := sync()
		t.Logf("%s synced in %s", name, d.Round(time.Millisecond))
		return syncRun{took: d, cpu: cpu, srcCPU: src.cpuSeconds() - srcBefore}
	}
	for r := range rounds {
		meshName, btcdName := fmt.Sprintf("btcmesh-%d", r), fmt.Sprintf("btcd-%d", r)
		runMesh := func() {
			meshRuns = append(meshRuns, run(meshName, doMesh, func() (time.Duration, float64) {
				return syncMeshNode(t, mesh, src.p2p, tip, meshName)
			}))
		}
		runBtcd := func() {
			btcdRuns = append(btcdRuns, run(btcdName, doBtcd, func() (time.Duration, float64) {
				return syncBtcdNode(t, btcd, src.p2p, tip, btcdName)
			}))
		}
		if r%2 == 0 {
			runMesh()
			runBtcd()
		} else {
			runBtcd()
			runMesh()
		}
	}
	times := func(runs []syncRun) []time.Duration {
		out := make([]time.Duration, len(runs))
		for i, r := range runs {
			out[i] = r.took
		}
		return out
	}
	meshTimes, btcdTimes := times(meshRuns), times(btcdRuns)
	sum := func(ds []time.Duration) time.Duration {
		var s time.Duration
		for _, d := range ds {
			s += d
		}
		return s
	}
	fmt.Fprintf(out, "\nbtcmesh sync bench: fresh node syncing from one btcd over loopback, %d round(s), GOMAXPROCS=%d, %d CPUs\n",
		rounds, runtime.GOMAXPROCS(0), runtime.NumCPU())
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "row\tround\tblocks\ttxs\tbtcmesh\tbtcd\tspeed-up btcd/btcmesh\ttarget\t")
	for r := range rounds {
		fmt.Fprintf(w, "sync\t%d\t%d\t%d\t%.2f s\t%.2f s\t%.2f\t>= 1.5\t\n", r, len(chain.blocks), chain.ntx,
			meshTimes[r].Seconds(), btcdTimes[r].Seconds(), btcdTimes[r].Seconds()/meshTimes[r].Seconds())
	}
	if rounds > 1 {
		m, b := sum(meshTimes), sum(btcdTimes)
		fmt.Fprintf(w, "sync\tall\t%d\t%d\t%.2f s\t%.2f s\t%.2f\t>= 1.5\t\n", len(chain.blocks), chain.ntx,
			m.Seconds()/float64(rounds), b.Seconds()/float64(rounds), b.Seconds()/m.Seconds())
	}
	_ = w.Flush()
	fmt.Fprintln(out, "CPU seconds used while syncing (the node itself / the source btcd serving it):")
	w = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "round\tbtcmesh\tits source\tbtcd\tits source\t")
	for r := range rounds {
		m, b := meshRuns[r], btcdRuns[r]
		fmt.Fprintf(w, "%d\t%.1f s\t%.1f s\t%.1f s\t%.1f s\t\n", r, m.cpu, m.srcCPU, b.cpu, b.srcCPU)
	}
	_ = w.Flush()
	m := sum(meshTimes).Seconds() / float64(rounds)
	if m == 0 {
		return
	}
	fmt.Fprintf(out, "btcmesh: %.0f blocks/s, %.0f txs/s\n", float64(len(chain.blocks))/m, float64(chain.ntx)/m)
}

// TestSyncChainSmoke checks the generator: a small chain of the same
// shape connects, every script checked, in btcd's blockchain package.
func TestSyncChainSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("generates and connects a small chain")
	}
	cfg := syncChainCfg{blocks: 3, perBlock: 7}
	c := genSyncChain(t, cfg)
	c.restamp(time.Now().Add(-time.Minute))
	if got, want := len(c.blocks), syncMature+1+3; got != want {
		t.Fatalf("%d blocks, want %d", got, want)
	}
	if c.ntx != 1+3*7 {
		t.Fatalf("%d transactions, want %d", c.ntx, 1+3*7)
	}
	// The cache round-trips.
	path := filepath.Join(t.TempDir(), "chain.bin")
	if err := c.write(path); err != nil {
		t.Fatal(err)
	}
	back, err := readSyncChain(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if back.tip() != c.tip() || back.ntx != c.ntx {
		t.Fatalf("cache read back tip %s (%d txs), wrote %s (%d)", back.tip(), back.ntx, c.tip(), c.ntx)
	}
	db, err := database.Create("ffldb", t.TempDir(), c.params.Net)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	bc, err := blockchain.New(&blockchain.Config{DB: db, ChainParams: c.params, TimeSource: blockchain.NewMedianTime(),
		SigCache: txscript.NewSigCache(1000)})
	if err != nil {
		t.Fatal(err)
	}
	for i, mb := range c.blocks {
		main, orphan, err := bc.ProcessBlock(btcutil.NewBlock(mb), blockchain.BFNone)
		if err != nil || !main || orphan {
			t.Fatalf("block %d: main %v orphan %v: %v", i+1, main, orphan, err)
		}
	}
	if best := bc.BestSnapshot(); best.Hash != c.tip() {
		t.Fatalf("btcd tip %s, want %s", best.Hash, c.tip())
	}
}

// syncProc is a node process of the sync row.
type syncProc struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan error
}

// startSyncProc runs bin with args, its output in a log file that is kept
// in $BTCMESH_BENCH_SYNC_LOGS when set; it is stopped at cleanup.
func startSyncProc(t *testing.T, name, bin string, args ...string) *syncProc {
	t.Helper()
	dir := os.Getenv("BTCMESH_BENCH_SYNC_LOGS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	p := &syncProc{name: name, cmd: exec.Command(bin, args...), log: f, done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			if b, err := os.ReadFile(f.Name()); err == nil {
				lines := strings.Split(string(b), "\n")
				t.Logf("---- log of %s ----\n%s", name, strings.Join(lines[max(0, len(lines)-40):], "\n"))
			}
		}
		_ = f.Close()
	})
	return p
}

// stop interrupts the process and waits for it (killing it after 30 s).
func (p *syncProc) stop() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-p.done:
		p.done <- err
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		p.done <- <-p.done
	}
}

// exited reports the process's exit while it was expected to run.
// cpuSeconds is the user and system CPU time the running process has
// used so far (from /proc; 0 where there is none).
func (p *syncProc) cpuSeconds() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name; utime and stime are
	// the 14th and 15th fields of the line, in clock ticks (100 a second
	// on Linux).
	rest := string(b)
	if i := strings.LastIndexByte(rest, ')'); i >= 0 {
		rest = rest[i+1:]
	}
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100
}

func (p *syncProc) exited() error {
	select {
	case err := <-p.done:
		p.done <- err
		return fmt.Errorf("%s exited: %v", p.name, err)
	default:
		return nil
	}
}

// syncBtcd is a btcd of the sync row with its RPC client.
type syncBtcd struct {
	*syncProc
	p2p, rpcAddr string
	rpc          *rpcclient.Client
}

// startSyncBtcd runs btcd --regtest on loopback over datadir and waits
// until its RPC port accepts connections.
func startSyncBtcd(t *testing.T, bin, name, datadir string, extra ...string) *syncBtcd {
	t.Helper()
	b := &syncBtcd{p2p: testenv.FreeAddr(t), rpcAddr: testenv.FreeAddr(t)}
	args := append([]string{
		"--regtest", "--listen=" + b.p2p, "--rpclisten=" + b.rpcAddr,
		"--rpcuser=bench", "--rpcpass=bench", "--notls",
		"--datadir=" + filepath.Join(datadir, "data"), "--logdir=" + filepath.Join(datadir, "logs"),
		"--nodnsseed", "--nocfilters", "--debuglevel=info",
	}, extra...)
	b.syncProc = startSyncProc(t, name, bin, args...)
	rpc, err := rpcclient.New(&rpcclient.ConnConfig{
		Host: b.rpcAddr, User: "bench", Pass: "bench", HTTPPostMode: true, DisableTLS: true,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.rpc = rpc
	t.Cleanup(rpc.Shutdown)
	// rpcclient retries a refused connection with a growing backoff:
	// wait for the port instead, so the first call answers at once.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", b.rpcAddr, time.Second); err == nil {
			_ = c.Close()
			return b
		}
		if err := b.exited(); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: RPC port %s not open within a minute", name, b.rpcAddr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// best is btcd's tip ("" while its RPC is not answering).
func (b *syncBtcd) best() chainhash.Hash {
	h, err := b.rpc.GetBestBlockHash()
	if err != nil {
		return chainhash.Hash{}
	}
	return *h
}

// startSyncSource runs the btcd that holds the chain, submitting every
// block (btcd wipes a regtest database at start, so its datadir cannot be
// cached). It reports how long reaching the tip took.
func startSyncSource(t *testing.T, bin string, c *syncChain) (*syncBtcd, time.Duration) {
	t.Helper()
	start := time.Now()
	tip := c.tip()
	src := startSyncBtcd(t, bin, "source-btcd", t.TempDir())
	// Requests go out one at a time, in order; queueing them all overlaps
	// encoding and transfer with btcd's validation.
	futures := make([]rpcclient.FutureSubmitBlockResult, len(c.blocks))
	for i, mb := range c.blocks {
		futures[i] = src.rpc.SubmitBlockAsync(btcutil.NewBlock(mb), nil)
	}
	for i, f := range futures {
		if err := f.Receive(); err != nil {
			t.Fatalf("source btcd submitblock %d (height %d): %v", i, i+1, err)
		}
	}
	if best := src.best(); best != tip {
		t.Fatalf("source btcd at %s after submitting the chain, want %s", best, tip)
	}
	return src, time.Since(start)
}

// syncBtcdNode times a fresh btcd connected only to the source, from
// process start until its best block is tip.
func syncBtcdNode(t *testing.T, bin, source string, tip chainhash.Hash, name string) (time.Duration, float64) {
	t.Helper()
	start := time.Now()
	b := startSyncBtcd(t, bin, name, t.TempDir(), "--connect="+source)
	defer b.stop()
	d := waitSyncTip(t, start, b.syncProc, tip, b.best)
	return d, b.cpuSeconds()
}

// syncMeshNode times a fresh `btcmesh node` connected only to the source,
// from process start until getbestblockhash is tip.
func syncMeshNode(t *testing.T, bin, source string, tip chainhash.Hash, name string) (time.Duration, float64) {
	t.Helper()
	grpcAddr := testenv.FreeAddr(t)
	cc, err := grpcclient.Dial(grpcAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	hc := headersv1.NewHeaderServiceClient(cc)
	start := time.Now()
	metricsAddr := testenv.FreeAddr(t)
	args := []string{"node", "--datadir", t.TempDir(), "--grpc-listen", grpcAddr,
		"--metrics-listen", metricsAddr, "--nats-listen", "127.0.0.1:0",
		"--p2p-listen", testenv.FreeAddr(t), "--connect", source}
	profile := os.Getenv("BTCMESH_BENCH_SYNC_PROFILE")
	if profile != "" {
		args = append(args, "--pprof")
	}
	args = append(args, strings.Fields(os.Getenv("BTCMESH_BENCH_SYNC_MESH_ARGS"))...)
	p := startSyncProc(t, name, bin, args...)
	defer p.stop()
	if dir := os.Getenv("BTCMESH_BENCH_SYNC_LOGS"); dir != "" {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go sampleSyncMetrics(ctx, start, metricsAddr, filepath.Join(dir, name+".metrics"))
		if profile != "" {
			go saveSyncProfile(t, metricsAddr, profile, filepath.Join(dir, name+".pprof"))
		}
	}
	d := waitSyncTip(t, start, p, tip, func() chainhash.Hash {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		ci, err := hc.GetChainInfo(ctx, &headersv1.GetChainInfoRequest{})
		if err != nil {
			return chainhash.Hash{}
		}
		h, err := chainhash.NewHash(ci.GetTip().GetHash())
		if err != nil {
			return chainhash.Hash{}
		}
		return *h
	})
	return d, p.cpuSeconds()
}

// waitSyncTip polls best every 100 ms until it is tip; it returns the
// time since start at the first poll that saw the tip.
func waitSyncTip(t *testing.T, start time.Time, p *syncProc, tip chainhash.Hash, best func() chainhash.Hash) time.Duration {
	t.Helper()
	limit := 20 * time.Minute
	for {
		if best() == tip {
			return time.Since(start)
		}
		if err := p.exited(); err != nil {
			t.Fatal(err)
		}
		if time.Since(start) > limit {
			t.Fatalf("%s not at the tip %s within %s", p.name, tip, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sampleSyncMetrics appends the node's download and connect counters to
// path every 500 ms (diagnostics kept with BTCMESH_BENCH_SYNC_LOGS).
func sampleSyncMetrics(ctx context.Context, start time.Time, addr, path string) {
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	keep := []string{"btcmesh_p2p_blocks_received_total ", "btcmesh_blockvalidator_tip_height ",
		"btcmesh_blockvalidator_connect_seconds_sum ", "btcmesh_blockvalidator_connect_seconds_count "}
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		resp, err := client.Get("http://" + addr + "/metrics")
		if err != nil {
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		var vals []string
		for _, line := range strings.Split(string(body), "\n") {
			for _, k := range keep {
				if strings.HasPrefix(line, k) {
					vals = append(vals, line)
				}
			}
		}
		fmt.Fprintf(f, "%6.1fs %s\n", time.Since(start).Seconds(), strings.Join(vals, " | "))
	}
}

// saveSyncProfile fetches a CPU profile of length d (a duration) from the
// node's /debug/pprof after 3 s into path.
func saveSyncProfile(t *testing.T, addr, d, path string) {
	dur, err := time.ParseDuration(d)
	if err != nil {
		t.Errorf("BTCMESH_BENCH_SYNC_PROFILE: %v", err)
		return
	}
	time.Sleep(3 * time.Second)
	client := &http.Client{Timeout: dur + 10*time.Second}
	resp, err := client.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, int(dur.Seconds())))
	if err != nil {
		t.Logf("profile: %v", err)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Logf("profile: status %d, %v", resp.StatusCode, err)
		return
	}
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Logf("profile: %v", err)
	}
}

// syncBtcdBinary is $BTCD_BIN or btcd built from the version in go.mod,
// cached where test/'s interop tests cache it.
func syncBtcdBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("BTCD_BIN"); p != "" {
		return p
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/btcsuite/btcd").Output()
	if err != nil {
		t.Fatalf("go list -m github.com/btcsuite/btcd: %v", err)
	}
	dir := filepath.Join(os.TempDir(), "btcmesh-interop-btcd-"+strings.TrimSpace(string(out)))
	path := filepath.Join(dir, "btcd")
	if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() {
		return path
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := fmt.Sprintf("%s.%d", path, os.Getpid())
	cmd := exec.Command("go", "build", "-o", tmp, "github.com/btcsuite/btcd")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build btcd: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// syncMeshBinary is $BTCMESH_BIN or btcmesh built for this test.
func syncMeshBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("BTCMESH_BIN"); p != "" {
		return p
	}
	bin := filepath.Join(t.TempDir(), "btcmesh")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/btcmesh/btcmesh/cmd/btcmesh")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build btcmesh: %v\n%s", err, out)
	}
	return bin
}
