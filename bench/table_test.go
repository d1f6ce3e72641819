package bench

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/btcsuite/btcd/wire/v2"
)

// benchConfig shapes the measured blocks.
type benchConfig struct {
	inputs int // inputs per measured block
	perTx  int // inputs per transaction
	rounds int // measured blocks per row
}

func envInt(t testing.TB, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// TestConsensusTable prints the validation table (make bench). Every ratio
// compares runs made side by side in this process; nothing is asserted
// about time. BTCMESH_BENCH_ROUNDS sets the blocks per row (10), and
// BTCMESH_BENCH_PROFILE=DIR saves a CPU profile of each of btcmesh's
// timed cold and mempool-validated submissions there.
func TestConsensusTable(t *testing.T) {
	if os.Getenv("BTCMESH_BENCH") == "" {
		t.Skip("set BTCMESH_BENCH=1 to print the validation table (make bench)")
	}
	cfg := benchConfig{
		inputs: envInt(t, "BTCMESH_BENCH_INPUTS", 3000),
		perTx:  envInt(t, "BTCMESH_BENCH_INPUTS_PER_TX", 3),
		rounds: envInt(t, "BTCMESH_BENCH_ROUNDS", 10),
	}
	runTable(t, cfg, os.Stdout)
}

// TestHarnessSmoke runs the table's machinery on small blocks: both
// chains must accept every generated block, cold and mempool-validated.
func TestHarnessSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts every block-path service and a btcd chain")
	}
	m := runTable(t, benchConfig{inputs: 30, perTx: 3, rounds: 1}, io.Discard)
	// The mempool-validated block's 10 transactions skipped their scripts;
	// every other block transaction ran them.
	if hits := m.counter(t, "btcmesh_blockvalidator_script_cache_hits_total"); hits != 10 {
		t.Fatalf("script cache hits %v, want 10", hits)
	}
}

// measured is one block of the table with what each row needs.
type measured struct {
	coins []coin
	txs   []*wire.MsgTx
	block *wire.MsgBlock
	raw   []byte
	sigs  []sigJob
}

// timings accumulates one row's durations.
type timings struct{ mesh, ref time.Duration }

func runTable(t *testing.T, cfg benchConfig, out io.Writer) *mesh {
	if cfg.inputs%cfg.perTx != 0 {
		t.Fatalf("inputs %d is not a multiple of inputs per tx %d", cfg.inputs, cfg.perTx)
	}
	// Blocks: one warm-up, cfg.rounds cold, cfg.rounds mempool-validated,
	// then a chain of chainLen cold blocks connected in one plan.
	chainLen := max(3, cfg.rounds)
	nBlocks := 1 + 2*cfg.rounds + chainLen
	perCB := min(2000, cfg.inputs)
	nCB := (nBlocks*cfg.inputs + perCB - 1) / perCB
	g := newGen(t, 16)
	coins := g.fund(t, nCB, perCB)
	nFunding := len(g.blocks)
	blocks := make([]*measured, nBlocks)
	for i := range blocks {
		cs := coins[i*cfg.inputs : (i+1)*cfg.inputs]
		txs := g.spendMany(t, cs, cfg.perTx, 1000)
		mb := g.block(t, txsFee(cs, txs), txs...)
		blocks[i] = &measured{coins: cs, txs: txs, block: mb, raw: serialize(t, mb), sigs: sigJobs(t, cs, txs)}
	}

	// m is the split shape, which every row measures; node is the
	// single-process shape, which row 3 measures as well. node gets every
	// block m gets up to row 3, untimed unless row 3.
	m := startMesh(t, false)
	node := startMesh(t, true)
	bc := newBtcdChain(t, g.params)
	for _, mb := range g.blocks[:nFunding] {
		raw := serialize(t, mb)
		m.submit(t, raw)
		node.submit(t, raw)
		bc.process(t, raw)
	}

	// Warm-up: connections, goroutine pools, badger and ffldb caches.
	verifyAll(t, blocks[0].sigs)
	verifyAllLibsecp(t, blocks[0].sigs)
	m.submit(t, blocks[0].raw)
	node.submit(t, blocks[0].raw)
	bc.process(t, blocks[0].raw)

	var raw, cold, warm, seq timings
	var rawLibsecp time.Duration
	var warmNode time.Duration
	var warmEach, warmNodeEach []time.Duration // row 3's submissions, one by one
	p0 := m.phases(t)
	for i, b := range blocks[1 : 1+cfg.rounds] {
		raw.ref += verifyAll(t, b.sigs)
		rawLibsecp += verifyAllLibsecp(t, b.sigs)
		meshFirst := i%2 == 0
		if !meshFirst {
			cold.ref += timed(func() { bc.process(t, b.raw) })
		}
		stop := profileSubmission(t, "row1-split", i)
		cold.mesh += timed(func() { m.submit(t, b.raw) })
		stop()
		if meshFirst {
			cold.ref += timed(func() { bc.process(t, b.raw) })
		}
		node.submit(t, b.raw)
	}
	p1 := m.phases(t)
	for i, b := range blocks[1+cfg.rounds : 1+2*cfg.rounds] {
		m.mempool(t, b.txs)
		node.mempool(t, b.txs)
		bc.warm(t, b.coins, b.txs, g.height)
		time.Sleep(300 * time.Millisecond) // tx.accepted events reach every subscriber
		// The three take turns going first.
		steps := []func(){
			func() { warm.ref += timed(func() { bc.process(t, b.raw) }) },
			func() {
				stop := profileSubmission(t, "row3-split", i)
				d := timed(func() { m.submit(t, b.raw) })
				stop()
				warm.mesh += d
				warmEach = append(warmEach, d)
			},
			func() {
				stop := profileSubmission(t, "row3-node", i)
				d := timed(func() { node.submit(t, b.raw) })
				stop()
				warmNode += d
				warmNodeEach = append(warmNodeEach, d)
			},
		}
		for k := range steps {
			// Each starts on a quiet machine: the one before it may still
			// be handling its block's aftermath (a miner re-templating),
			// and the garbage of everything before (three mempools taking
			// a block's transactions, btcd's warm-up) is collected first,
			// as the testing package does before each benchmark, so that
			// a collection it triggers is not timed as part of a block.
			time.Sleep(200 * time.Millisecond)
			runtime.GC()
			steps[(i+k)%len(steps)]()
		}
	}

	p2 := m.phases(t)

	// Headers first, then the blocks in reverse order: the last one to
	// arrive (the first of the chain) lets the whole chain connect in one
	// plan, as after a block download that completed out of order. btcd
	// gets the same blocks as orphans, then the parent; only the last
	// submission is timed on both sides.
	chain := blocks[1+2*cfg.rounds:]
	var rawChain time.Duration
	for _, b := range chain {
		rawChain += verifyAll(t, b.sigs)
	}
	var mbs []*wire.MsgBlock
	for _, b := range chain {
		mbs = append(mbs, b.block)
	}
	m.submitHeaders(t, mbs)
	for k := len(chain) - 1; k >= 1; k-- {
		m.store(t, chain[k].raw)
		bc.orphan(t, chain[k].block)
	}
	seq.ref = timed(func() { bc.process(t, chain[0].raw) })
	seq.mesh = timed(func() { m.submit(t, chain[0].raw) })
	nChain := float64(cfg.inputs * chainLen)
	n := float64(cfg.inputs * cfg.rounds)
	rate := func(d time.Duration) string { return fmt.Sprintf("%.0f in/s", n/d.Seconds()) }
	per := func(d time.Duration) string {
		return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000/float64(cfg.rounds))
	}
	fmt.Fprintf(out, "\nbtcmesh validation bench: %d-input blocks (%d txs x %d P2WPKH inputs), %d rounds, GOMAXPROCS=%d\n",
		cfg.inputs, cfg.inputs/cfg.perTx, cfg.perTx, cfg.rounds, runtime.GOMAXPROCS(0))
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "row\tmeasure\tbtcmesh\treference\tratio\ttarget\t")
	fmt.Fprintf(w, "1\tcold block, rate vs raw btcec (btcd's) verify on all cores\t%s\t%s\t%.3f\t>= 0.95\t\n",
		rate(cold.mesh), rate(raw.ref), raw.ref.Seconds()/cold.mesh.Seconds())
	if rawLibsecp > 0 {
		fmt.Fprintf(w, "1s\tsame, vs raw libsecp256k1 verify on all cores\t%s\t%s\t%.3f\t>= 0.95\t\n",
			rate(cold.mesh), rate(rawLibsecp), rawLibsecp.Seconds()/cold.mesh.Seconds())
	}
	fmt.Fprintf(w, "2\tcold block, time vs btcd ProcessBlock\t%s\t%s\t%.3f\t< 1\t\n",
		per(cold.mesh), per(cold.ref), cold.mesh.Seconds()/cold.ref.Seconds())
	fmt.Fprintf(w, "3\tmempool-validated block, time vs btcd warm caches\t%s\t%s\t%.3f\t<= 0.3\t\n",
		per(warm.mesh), per(warm.ref), warm.mesh.Seconds()/warm.ref.Seconds())
	fmt.Fprintf(w, "3n\tsame, services wired as one process (btcmesh node)\t%s\t%s\t%.3f\t<= 0.3\t\n",
		per(warmNode), per(warm.ref), warmNode.Seconds()/warm.ref.Seconds())
	fmt.Fprintf(w, "4\t%d-block chain in one connect plan, time vs btcd\t%s\t%s\t%.3f\t< 1\t\n",
		chainLen, fmt.Sprintf("%.0f in/s", nChain/seq.mesh.Seconds()), fmt.Sprintf("%.0f in/s", nChain/seq.ref.Seconds()),
		seq.mesh.Seconds()/seq.ref.Seconds())
	fmt.Fprintf(w, "4r\tsame chain, rate vs raw secp256k1 verify on all cores\t%s\t%s\t%.3f\t>= 0.95\t\n",
		fmt.Sprintf("%.0f in/s", nChain/seq.mesh.Seconds()), fmt.Sprintf("%.0f in/s", nChain/rawChain.Seconds()),
		rawChain.Seconds()/seq.mesh.Seconds())
	fmt.Fprintf(w, "ref\tbtcd cold block, rate vs raw secp256k1\t%s\t%s\t%.3f\t(~0.8)\t\n",
		rate(cold.ref), rate(raw.ref), raw.ref.Seconds()/cold.ref.Seconds())
	_ = w.Flush()
	fmt.Fprintf(out, "btcmesh split per block (SubmitBlock / connect step / txvalidator pool): cold %s / %s / %s, mempool-validated %s / %s / %s\n",
		per(cold.mesh), per(p1.connect-p0.connect), per(p1.txs-p0.txs),
		per(warm.mesh), per(p2.connect-p1.connect), per(p2.txs-p1.txs))
	for _, r := range []struct {
		name string
		each []time.Duration
	}{{"3", warmEach}, {"3n", warmNodeEach}} {
		slices.Sort(r.each)
		fmt.Fprintf(out, "row %s submissions: min %s, median %s, max %s\n",
			r.name, ms(r.each[0]), ms(r.each[len(r.each)/2]), ms(r.each[len(r.each)-1]))
	}
	return m
}

// ms formats d in milliseconds.
func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func timed(f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start)
}

// profileSubmission starts a CPU profile of one timed submission when
// BTCMESH_BENCH_PROFILE names a directory (<row>-<round>.pprof there;
// merge them with go tool pprof); it returns what stops it.
func profileSubmission(t testing.TB, row string, round int) func() {
	dir := os.Getenv("BTCMESH_BENCH_PROFILE")
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d.pprof", row, round)))
	if err != nil {
		t.Fatalf("BTCMESH_BENCH_PROFILE: %v", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatalf("BTCMESH_BENCH_PROFILE: %v", err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			t.Errorf("BTCMESH_BENCH_PROFILE: %v", err)
		}
	}
}
