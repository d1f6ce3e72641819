package txvalidator

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/btcsuite/btcd/wire/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	txvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/txvalidator/v1"

	"github.com/btcmesh/btcmesh/internal/rules"
)

// TestValidateGRPC runs the MODE_FULL rules through the gRPC server with
// real signed transactions.
func TestValidateGRPC(t *testing.T) {
	e := startEnv(t, Config{SigCacheEntries: 1000, Workers: 2})
	alice, bob := newWallet(1), newWallet(2)

	t.Run("valid spends of every kind", func(t *testing.T) {
		var jobs []*txvalidatorv1.TxJob
		for i, k := range []kind{p2pkh, p2wpkh, p2tr} {
			_, j := build(t, txSpec{
				coins: []coin{fundingCoin(alice, k, uint32(i), 100_000)},
				outs:  []*wire.TxOut{out(t, bob, p2pkh, 90_000)},
			})
			jobs = append(jobs, j)
		}
		// One transaction spending all three kinds at once.
		_, mixed := build(t, txSpec{
			coins: []coin{fundingCoin(alice, p2pkh, 10, 50_000), fundingCoin(alice, p2wpkh, 11, 50_000), fundingCoin(alice, p2tr, 12, 50_000)},
			outs:  []*wire.TxOut{out(t, bob, p2tr, 140_000)},
		})
		jobs = append(jobs, mixed)
		for _, policy := range []bool{false, true} {
			resp := e.validate(t, fullReq(policy, jobs...))
			for i, r := range resp.GetResults() {
				wantValid(t, r)
				if i < 3 && r.GetFee() != 10_000 {
					t.Errorf("job %d fee %d, want 10000", i, r.GetFee())
				}
				if r.GetWeight() <= 0 {
					t.Errorf("job %d weight %d", i, r.GetWeight())
				}
			}
			if got := resp.GetResults()[3].GetFee(); got != 10_000 {
				t.Errorf("mixed fee %d", got)
			}
			// P2PKH output: 1 legacy sigop (x4); P2PKH input: its
			// scriptSig has none; P2WPKH input: 1 witness sigop.
			if got := resp.GetResults()[0].GetSigopCost(); got != 4 {
				t.Errorf("p2pkh sigop cost %d, want 4", got)
			}
			if got := resp.GetResults()[1].GetSigopCost(); got != 5 {
				t.Errorf("p2wpkh sigop cost %d, want 5", got)
			}
		}
	})

	t.Run("corrupted signature fails the right input", func(t *testing.T) {
		for _, k := range []kind{p2pkh, p2wpkh, p2tr} {
			tx, j := build(t, txSpec{
				coins: []coin{fundingCoin(alice, p2wpkh, 20, 50_000), fundingCoin(alice, k, 21, 50_000)},
				outs:  []*wire.TxOut{out(t, bob, p2wpkh, 90_000)},
			})
			corruptSig(t, tx, 1)
			j.Tx = serialize(t, tx)
			for _, policy := range []bool{false, true} {
				r := e.validate(t, fullReq(policy, j)).GetResults()[0]
				wantRule(t, r, string(rules.ScriptFailed))
				if r.GetFailedInput() != 1 {
					t.Errorf("kind %d: failed_input %d, want 1", k, r.GetFailedInput())
				}
				if !strings.Contains(r.GetRejection().GetDetail(), "input 1") {
					t.Errorf("detail %q does not name the input", r.GetRejection().GetDetail())
				}
			}
		}
	})

	t.Run("wrong prevout amount breaks segwit signature", func(t *testing.T) {
		_, j := build(t, txSpec{
			coins: []coin{fundingCoin(alice, p2wpkh, 30, 50_000)},
			outs:  []*wire.TxOut{out(t, bob, p2wpkh, 40_000)},
		})
		j.Prevouts[0].Output.Value = 50_001
		r := e.validate(t, fullReq(false, j)).GetResults()[0]
		wantRule(t, r, string(rules.ScriptFailed))
	})

	t.Run("immature coinbase", func(t *testing.T) {
		c := fundingCoin(alice, p2wpkh, 40, 50_000)
		c.coinbase, c.height = true, testHeight-50
		_, j := build(t, txSpec{coins: []coin{c}, outs: []*wire.TxOut{out(t, bob, p2wpkh, 40_000)}})
		wantRule(t, e.validate(t, fullReq(false, j)).GetResults()[0], string(rules.PrematureCoinbaseSpend))
		// 100 confirmations later it is mature.
		c.height = testHeight - 100
		_, j = build(t, txSpec{coins: []coin{c}, outs: []*wire.TxOut{out(t, bob, p2wpkh, 40_000)}})
		wantValid(t, e.validate(t, fullReq(false, j)).GetResults()[0])
	})

	t.Run("outputs above inputs", func(t *testing.T) {
		_, j := build(t, txSpec{
			coins: []coin{fundingCoin(alice, p2tr, 50, 50_000)},
			outs:  []*wire.TxOut{out(t, bob, p2wpkh, 50_001)},
		})
		wantRule(t, e.validate(t, fullReq(false, j)).GetResults()[0], string(rules.InBelowOut))
	})

	t.Run("BIP68 height lock", func(t *testing.T) {
		c := fundingCoin(alice, p2wpkh, 60, 50_000)
		c.height = testHeight - 5
		spec := txSpec{version: 2, sequence: []uint32{10}, coins: []coin{c}, outs: []*wire.TxOut{out(t, bob, p2wpkh, 40_000)}}
		_, j := build(t, spec)
		r := e.validate(t, fullReq(false, j)).GetResults()[0]
		wantRule(t, r, string(rules.NonBIP68Final))
		// Version 1 ignores sequence locks.
		spec.version = 1
		_, j = build(t, spec)
		wantValid(t, e.validate(t, fullReq(false, j)).GetResults()[0])
		// Old enough: prevout height + 10 - 1 < block height.
		spec.version = 2
		spec.coins[0].height = testHeight - 10
		_, j = build(t, spec)
		wantValid(t, e.validate(t, fullReq(false, j)).GetResults()[0])
		spec.coins[0].height = testHeight - 9
		_, j = build(t, spec)
		wantRule(t, e.validate(t, fullReq(false, j)).GetResults()[0], string(rules.NonBIP68Final))
	})

	t.Run("BIP68 time lock", func(t *testing.T) {
		c := fundingCoin(alice, p2wpkh, 61, 50_000)
		c.mtp = testMTP - 1000 // lock of 2*512 s ends at testMTP+23
		spec := txSpec{version: 2, sequence: []uint32{wire.SequenceLockTimeIsSeconds | 2}, coins: []coin{c}, outs: []*wire.TxOut{out(t, bob, p2wpkh, 40_000)}}
		_, j := build(t, spec)
		wantRule(t, e.validate(t, fullReq(false, j)).GetResults()[0], string(rules.NonBIP68Final))
		spec.coins[0].mtp = testMTP - 1024
		_, j = build(t, spec)
		wantValid(t, e.validate(t, fullReq(false, j)).GetResults()[0])
		// The disable flag turns the lock off.
		spec.coins[0].mtp = testMTP
		spec.sequence[0] |= wire.SequenceLockTimeDisabled
		_, j = build(t, spec)
		wantValid(t, e.validate(t, fullReq(false, j)).GetResults()[0])
	})

	t.Run("locktime", func(t *testing.T) {
		spec := txSpec{lockTime: testHeight + 1, sequence: []uint32{0xfffffffe},
			coins: []coin{fundingCoin(alice, p2wpkh, 70, 50_000)}, outs: []*wire.TxOut{out(t, bob, p2wpkh, 40_000)}}
		_, j := build(t, spec)
		wantRule(t, e.validate(t, fullReq(false, j)).GetResults()[0], string(rules.NonFinal))
		spec.lockTime = testHeight - 1
		_, j = build(t, spec)
		wantValid(t, e.validate(t, fullReq(false, j)).GetResults()[0])
		// Time locks compare with median time past (CSV is active).
		spec.lockTime = testMTP
		_, j = build(t, spec)
		wantRule(t, e.validate(t, fullReq(false, j)).GetResults()[0], string(rules.NonFinal))
		spec.lockTime = testMTP - 1
		_, j = build(t, spec)
		wantValid(t, e.validate(t, fullReq(false, j)).GetResults()[0])
		// Final sequences make any locktime final.
		spec.lockTime, spec.sequence = testHeight+100, []uint32{wire.MaxTxInSequenceNum}
		_, j = build(t, spec)
		wantValid(t, e.validate(t, fullReq(false, j)).GetResults()[0])
	})

	t.Run("high-S is policy only", func(t *testing.T) {
		tx, j := build(t, txSpec{
			coins: []coin{fundingCoin(alice, p2wpkh, 80, 50_000), fundingCoin(alice, p2wpkh, 81, 50_000)},
			outs:  []*wire.TxOut{out(t, bob, p2wpkh, 90_000)},
		})
		tx.TxIn[1].Witness[0] = highS(t, tx.TxIn[1].Witness[0])
		j.Tx = serialize(t, tx)
		wantValid(t, e.validate(t, fullReq(false, j)).GetResults()[0])
		r := e.validate(t, fullReq(true, j)).GetResults()[0]
		wantRule(t, r, string(rules.PolicyScriptFailed))
		if r.GetFailedInput() != 1 {
			t.Errorf("failed_input %d, want 1", r.GetFailedInput())
		}
		if d := r.GetRejection().GetDetail(); !strings.Contains(d, "input 1") || !strings.Contains(strings.ToLower(d), "s value") && !strings.Contains(strings.ToLower(d), "high") {
			t.Errorf("detail %q", d)
		}
	})

	t.Run("uncompressed key in P2WPKH is policy only", func(t *testing.T) {
		_, j := build(t, txSpec{
			coins: []coin{fundingCoin(alice, p2wpkhUncompressed, 82, 50_000)},
			outs:  []*wire.TxOut{out(t, bob, p2wpkh, 40_000)},
		})
		wantValid(t, e.validate(t, fullReq(false, j)).GetResults()[0])
		wantRule(t, e.validate(t, fullReq(true, j)).GetResults()[0], string(rules.PolicyScriptFailed))
	})

	t.Run("standardness", func(t *testing.T) {
		base := func() txSpec {
			return txSpec{coins: []coin{fundingCoin(alice, p2wpkh, 90, 100_000)}, outs: []*wire.TxOut{out(t, bob, p2wpkh, 40_000)}}
		}
		opReturn := func(n int) *wire.TxOut {
			s, err := txscript.NewScriptBuilder().AddOp(txscript.OP_RETURN).AddData(make([]byte, n)).Script()
			if err != nil {
				t.Fatal(err)
			}
			return wire.NewTxOut(0, s)
		}
		cases := []struct {
			name   string
			mutate func(*txSpec)
			detail string
		}{
			{"version 4", func(s *txSpec) { s.version = 4 }, "version"},
			{"dust p2wpkh", func(s *txSpec) { s.outs = append(s.outs, out(t, bob, p2wpkh, 293)) }, "dust"},
			{"dust p2pkh", func(s *txSpec) { s.outs = append(s.outs, out(t, bob, p2pkh, 545)) }, "dust"},
			{"two op_returns", func(s *txSpec) { s.outs = append(s.outs, opReturn(10), opReturn(10)) }, "multi-op-return"},
			{"big op_return", func(s *txSpec) { s.outs = append(s.outs, opReturn(81)) }, "scriptpubkey"},
			{"nonstandard output", func(s *txSpec) { s.outs = append(s.outs, wire.NewTxOut(10_000, []byte{txscript.OP_TRUE})) }, "scriptpubkey"},
		}
		for _, c := range cases {
			spec := base()
			c.mutate(&spec)
			_, j := build(t, spec)
			wantValid(t, e.validate(t, fullReq(false, j)).GetResults()[0])
			r := e.validate(t, fullReq(true, j)).GetResults()[0]
			wantRule(t, r, string(rules.NonStandard))
			if r.GetRejection().GetDetail() != c.detail {
				t.Errorf("%s: detail %q, want %q", c.name, r.GetRejection().GetDetail(), c.detail)
			}
		}
		// At the dust limit exactly and one 80-byte OP_RETURN are standard.
		spec := base()
		spec.outs = append(spec.outs, out(t, bob, p2wpkh, 294), out(t, bob, p2pkh, 546), opReturn(80))
		_, j := build(t, spec)
		wantValid(t, e.validate(t, fullReq(true, j)).GetResults()[0])

		// A non-push scriptSig.
		tx, j := build(t, txSpec{coins: []coin{fundingCoin(alice, p2pkh, 91, 100_000)}, outs: []*wire.TxOut{out(t, bob, p2wpkh, 40_000)}})
		tx.TxIn[0].SignatureScript = append([]byte{txscript.OP_NOP}, tx.TxIn[0].SignatureScript...)
		j.Tx = serialize(t, tx)
		wantValid(t, e.validate(t, fullReq(false, j)).GetResults()[0])
		r := e.validate(t, fullReq(true, j)).GetResults()[0]
		wantRule(t, r, string(rules.NonStandard))
		if r.GetRejection().GetDetail() != "scriptsig-not-pushonly" {
			t.Errorf("detail %q", r.GetRejection().GetDetail())
		}
	})

	t.Run("decode failure and coinbase are per-job results", func(t *testing.T) {
		_, good := build(t, txSpec{coins: []coin{fundingCoin(alice, p2tr, 100, 50_000)}, outs: []*wire.TxOut{out(t, bob, p2wpkh, 40_000)}})
		bad := &txvalidatorv1.TxJob{Tx: []byte{1, 2, 3}}
		cb := wire.NewMsgTx(2)
		cb.AddTxIn(wire.NewTxIn(wire.NewOutPoint(&chainhash.Hash{}, wire.MaxPrevOutIndex), []byte{1, 2, 3}, nil))
		cb.AddTxOut(out(t, bob, p2wpkh, 50_000))
		cbJob := &txvalidatorv1.TxJob{Tx: serialize(t, cb), Prevouts: []*txvalidatorv1.Prevout{{Output: nil}}}
		cbJob.Prevouts[0] = good.Prevouts[0]
		resp := e.validate(t, fullReq(false, good, bad, cbJob))
		wantValid(t, resp.GetResults()[0])
		wantRule(t, resp.GetResults()[1], string(rules.Malformed))
		wantRule(t, resp.GetResults()[2], string(CoinbaseJob))
	})

	t.Run("bad arguments are InvalidArgument", func(t *testing.T) {
		_, j := build(t, txSpec{coins: []coin{fundingCoin(alice, p2tr, 110, 50_000)}, outs: []*wire.TxOut{out(t, bob, p2wpkh, 40_000)}})
		j.Prevouts = append(j.Prevouts, j.Prevouts[0])
		badRange := &txvalidatorv1.TxJob{Tx: j.Tx, Prevouts: j.Prevouts[:1], InputStart: 0, InputEnd: 2}
		for _, req := range []*txvalidatorv1.ValidateRequest{
			fullReq(false, j),
			fullReq(false, badRange),
			{Jobs: []*txvalidatorv1.TxJob{badRange}, Mode: txvalidatorv1.Mode(42)},
			{Jobs: []*txvalidatorv1.TxJob{badRange}, Mode: txvalidatorv1.Mode_MODE_SCRIPTS_ONLY, Flags: []txvalidatorv1.ScriptFlag{99}},
		} {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := e.client.Validate(ctx, req)
			cancel()
			if status.Code(err) != codes.InvalidArgument {
				t.Errorf("want InvalidArgument, got %v", err)
			}
		}
	})

	t.Run("metrics", func(t *testing.T) {
		g := e.deps.Metrics.(prometheus.Gatherer)
		mfs, err := g.Gather()
		if err != nil {
			t.Fatal(err)
		}
		found := map[string]*dto.MetricFamily{}
		for _, mf := range mfs {
			found[mf.GetName()] = mf
		}
		for _, name := range []string{"btcmesh_txvalidator_jobs_total", "btcmesh_txvalidator_inputs_verified_total",
			"btcmesh_txvalidator_rejected_total", "btcmesh_txvalidator_batch_seconds"} {
			if found[name] == nil {
				t.Errorf("metric %s missing", name)
			}
		}
		var premature float64
		for _, m := range found["btcmesh_txvalidator_rejected_total"].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "rule" && l.GetValue() == string(rules.PrematureCoinbaseSpend) {
					premature = m.GetCounter().GetValue()
				}
			}
		}
		if premature != 1 {
			t.Errorf("rejected_total{rule=premature} = %v, want 1", premature)
		}
	})
}

// TestScriptsOnly checks input ranges, explicit flags and the lowest
// failing input of a large transaction split over workers.
func TestScriptsOnly(t *testing.T) {
	e := startEnv(t, Config{SigCacheEntries: 0, Workers: 4})
	alice, bob := newWallet(3), newWallet(4)

	const n = 600
	var coins []coin
	for i := range n {
		k := []kind{p2wpkh, p2tr, p2pkh}[i%3]
		coins = append(coins, fundingCoin(alice, k, uint32(i), 10_000))
	}
	tx, job := build(t, txSpec{coins: coins, outs: []*wire.TxOut{out(t, bob, p2tr, n*10_000-5000)}})
	req := func(j *txvalidatorv1.TxJob) *txvalidatorv1.ValidateRequest {
		return &txvalidatorv1.ValidateRequest{Jobs: []*txvalidatorv1.TxJob{j}, Context: testContext(), Mode: txvalidatorv1.Mode_MODE_SCRIPTS_ONLY}
	}
	wantValid(t, e.validate(t, req(job)).GetResults()[0])

	corruptSig(t, tx, 450)
	corruptSig(t, tx, 599)
	corruptSig(t, tx, 200)
	bad := serialize(t, tx)
	r := e.validate(t, req(&txvalidatorv1.TxJob{Tx: bad, Prevouts: job.Prevouts})).GetResults()[0]
	wantRule(t, r, string(rules.ScriptFailed))
	if r.GetFailedInput() != 200 {
		t.Fatalf("failed_input %d, want the lowest failing input 200", r.GetFailedInput())
	}
	for _, c := range []struct {
		start, end uint32
		fail       int32
	}{{0, 200, -1}, {201, 450, -1}, {0, 201, 200}, {300, 600, 450}, {451, 600, 599}, {451, 599, -1}} {
		r := e.validate(t, req(&txvalidatorv1.TxJob{Tx: bad, Prevouts: job.Prevouts, InputStart: c.start, InputEnd: c.end})).GetResults()[0]
		if c.fail < 0 {
			wantValid(t, r)
			continue
		}
		wantRule(t, r, string(rules.ScriptFailed))
		if r.GetFailedInput() != c.fail {
			t.Errorf("[%d,%d): failed_input %d, want %d", c.start, c.end, r.GetFailedInput(), c.fail)
		}
	}

	// Explicit flags: without WITNESS a corrupted P2WPKH spend passes (its
	// program is not checked); with WITNESS it fails.
	wtx, wj := build(t, txSpec{coins: []coin{fundingCoin(alice, p2wpkh, 9000, 10_000)}, outs: []*wire.TxOut{out(t, bob, p2wpkh, 9_000)}})
	corruptSig(t, wtx, 0)
	wj.Tx = serialize(t, wtx)
	noWitness, err := FlagsToProto(txscript.ScriptBip16 | txscript.ScriptVerifyDERSignatures)
	if err != nil {
		t.Fatal(err)
	}
	rq := req(wj)
	rq.Flags = noWitness
	wantValid(t, e.validate(t, rq).GetResults()[0])
	rq.Flags = append(rq.Flags, txvalidatorv1.ScriptFlag_SCRIPT_FLAG_WITNESS)
	wantRule(t, e.validate(t, rq).GetResults()[0], string(rules.ScriptFailed))
}

func TestFlagsRoundTrip(t *testing.T) {
	var all txscript.ScriptFlags
	seen := map[txscript.ScriptFlags]bool{}
	for v := range txvalidatorv1.ScriptFlag_name {
		f := txvalidatorv1.ScriptFlag(v)
		if f == txvalidatorv1.ScriptFlag_SCRIPT_FLAG_UNSPECIFIED {
			if bits, err := FlagsFromProto([]txvalidatorv1.ScriptFlag{f}); err != nil || bits != 0 {
				t.Errorf("[UNSPECIFIED] gave %#x, %v; want no flags", bits, err)
			}
			continue
		}
		bits, err := FlagsFromProto([]txvalidatorv1.ScriptFlag{f})
		if err != nil {
			t.Fatalf("%v: %v", f, err)
		}
		if bits == 0 || bits&(bits-1) != 0 || seen[bits] {
			t.Fatalf("%v maps to %#x (not a fresh single bit)", f, bits)
		}
		seen[bits] = true
		all |= bits
		back, err := FlagsToProto(bits)
		if err != nil || len(back) != 1 || back[0] != f {
			t.Fatalf("%v round trip gave %v, %v", f, back, err)
		}
	}
	for _, flags := range []txscript.ScriptFlags{0, all, txscript.StandardVerifyFlags,
		txscript.ScriptBip16 | txscript.ScriptVerifyWitness | txscript.ScriptVerifyTaproot} {
		p, err := FlagsToProto(flags)
		if err != nil {
			t.Fatal(err)
		}
		got, err := FlagsFromProto(p)
		if err != nil || got != flags {
			t.Fatalf("round trip %#x -> %v -> %#x (%v)", flags, p, got, err)
		}
	}
	if named := txvalidatorv1.ScriptFlag_SCRIPT_FLAG_NULLDUMMY; !mustFlags(t, named).has(txscript.ScriptStrictMultiSig) {
		t.Error("NULLDUMMY is not ScriptStrictMultiSig")
	}
	if p, err := FlagsToProto(0); err != nil || len(p) != 1 || p[0] != txvalidatorv1.ScriptFlag_SCRIPT_FLAG_UNSPECIFIED {
		t.Errorf("FlagsToProto(0) = %v, %v; want [UNSPECIFIED]", p, err)
	}
	if _, err := FlagsToProto(1 << 30); err == nil {
		t.Error("unknown bit accepted")
	}
}

type flagSet txscript.ScriptFlags

func (f flagSet) has(b txscript.ScriptFlags) bool { return txscript.ScriptFlags(f)&b != 0 }

func mustFlags(t *testing.T, f ...txvalidatorv1.ScriptFlag) flagSet {
	t.Helper()
	bits, err := FlagsFromProto(f)
	if err != nil {
		t.Fatal(err)
	}
	return flagSet(bits)
}

func TestConfig(t *testing.T) {
	d := DefaultConfig()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cfg  Config
		flag string
	}{
		{Config{SigCacheEntries: -1, Workers: 1}, "--txvalidator-sigcache-entries"},
		{Config{SigCacheEntries: 1, Workers: 0}, "--txvalidator-workers"},
	} {
		err := c.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.flag) {
			t.Errorf("%+v: error %v does not name %s", c.cfg, err, c.flag)
		}
	}
}

func TestDustThreshold(t *testing.T) {
	w := newWallet(5)
	for _, c := range []struct {
		k    kind
		want int64
	}{{p2pkh, 546}, {p2wpkh, 294}, {p2tr, 330}} {
		if got := DustThreshold(out(t, w, c.k, 0)); got != c.want {
			t.Errorf("kind %d: dust threshold %d, want %d", c.k, got, c.want)
		}
	}
}

// TestChunks checks how a batch's inputs are split among workers: a
// large transaction over every worker, each of many small ones whole,
// every input of every job's range exactly once.
func TestChunks(t *testing.T) {
	cover := func(t *testing.T, jobs []*job, cs []chunk) {
		t.Helper()
		seen := map[*job][]bool{}
		for _, j := range jobs {
			if j != nil {
				seen[j] = make([]bool, j.end)
			}
		}
		for _, c := range cs {
			if c.lo < c.j.start || c.hi > c.j.end || c.lo >= c.hi {
				t.Fatalf("chunk [%d,%d) outside its job's [%d,%d)", c.lo, c.hi, c.j.start, c.j.end)
			}
			for i := c.lo; i < c.hi; i++ {
				if seen[c.j][i] {
					t.Fatalf("input %d in two chunks", i)
				}
				seen[c.j][i] = true
			}
		}
		for j, s := range seen {
			for i := j.start; i < j.end; i++ {
				if !s[i] {
					t.Fatalf("input %d of [%d,%d) in no chunk", i, j.start, j.end)
				}
			}
		}
	}

	big := []*job{{start: 0, end: 3000}}
	cs := (&engine{workers: 16}).chunks(big)
	if len(cs) < 16 {
		t.Errorf("3000 inputs in %d chunks: fewer than 16 workers' worth", len(cs))
	}
	cover(t, big, cs)

	var small []*job
	for i := range 1000 {
		if i%100 == 7 {
			small = append(small, nil) // rejected before its scripts
			continue
		}
		small = append(small, &job{start: 1, end: 4})
	}
	cs = (&engine{workers: 2}).chunks(small)
	if len(cs) != 990 {
		t.Errorf("990 three-input jobs in %d chunks, want one each", len(cs))
	}
	cover(t, small, cs)

	if cs := (&engine{workers: 4}).chunks([]*job{nil}); len(cs) != 0 {
		t.Errorf("no jobs to run, %d chunks", len(cs))
	}
}
