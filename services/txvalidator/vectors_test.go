package txvalidator

// Bitcoin Core's script and transaction vectors, run in full through the
// gRPC server. The data ships in the module cache copy of
// github.com/btcsuite/btcd/txscript/v2 (data/); it is read from there and
// never copied into this repository.

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/btcsuite/btcd/wire/v2"

	commonv1 "github.com/btcmesh/btcmesh/proto/btcmesh/common/v1"
	txvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/txvalidator/v1"

	"github.com/btcmesh/btcmesh/internal/rules"
)

const txscriptModule = "github.com/btcsuite/btcd/txscript/v2"

// vectorsDir finds txscript/v2's data directory in the module cache.
func vectorsDir(t *testing.T) string {
	t.Helper()
	if out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", txscriptModule).Output(); err == nil {
		if dir := strings.TrimSpace(string(out)); dir != "" {
			return filepath.Join(dir, "data")
		}
	}
	// Fall back to GOMODCACHE and the version this test binary was built with.
	info, ok := debug.ReadBuildInfo()
	if ok {
		cache := os.Getenv("GOMODCACHE")
		if cache == "" {
			if out, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
				cache = strings.TrimSpace(string(out))
			}
		}
		for _, m := range info.Deps {
			if m.Path == txscriptModule && cache != "" {
				return filepath.Join(cache, "github.com/btcsuite/btcd/txscript/v2@"+m.Version, "data")
			}
		}
	}
	t.Skip("txscript/v2 module directory not found (no go command and no GOMODCACHE): vectors cannot be read")
	return ""
}

// vectorFlags converts Core's comma-separated flag names into proto flags,
// exercising the same enum the callers use. "NONE" and "" are no flags.
func vectorFlags(s string) ([]txvalidatorv1.ScriptFlag, error) {
	var out []txvalidatorv1.ScriptFlag
	for _, name := range strings.Split(s, ",") {
		switch name {
		case "", "NONE":
			continue
		case "DISCOURAGE_UPGRADABLE_PUBKEYTYPE":
			name = "DISCOURAGE_UPGRADABLE_PUBKEY_TYPE"
		}
		v, ok := txvalidatorv1.ScriptFlag_value["SCRIPT_FLAG_"+name]
		if !ok {
			return nil, fmt.Errorf("unknown flag %q", name)
		}
		out = append(out, txvalidatorv1.ScriptFlag(v))
	}
	return explicitFlags(out), nil
}

// explicitFlags makes an empty set explicit: an empty list would mean the
// network's consensus flags, so "no flags" travels as [UNSPECIFIED].
func explicitFlags(f []txvalidatorv1.ScriptFlag) []txvalidatorv1.ScriptFlag {
	if len(f) == 0 {
		return []txvalidatorv1.ScriptFlag{txvalidatorv1.ScriptFlag_SCRIPT_FLAG_UNSPECIFIED}
	}
	return f
}

// shortForm parses Core's script notation: opcode names with or without
// OP_, decimal numbers (pushed as numbers), 0x-prefixed raw bytes and
// 'quoted' strings (pushed as data).
type shortForm struct{ ops map[string]byte }

func newShortForm() *shortForm {
	ops := map[string]byte{}
	for name, op := range txscript.OpcodeByName {
		if strings.HasPrefix(name, "OP_UNKNOWN") {
			continue
		}
		ops[name] = op
		isSmallInt := op == txscript.OP_0 || (op >= txscript.OP_1 && op <= txscript.OP_16)
		// "1" must stay the number 1; OP_TRUE/OP_FALSE keep their short names.
		if !isSmallInt || name == "OP_TRUE" || name == "OP_FALSE" {
			ops[strings.TrimPrefix(name, "OP_")] = op
		}
	}
	return &shortForm{ops: ops}
}

func (p *shortForm) parse(s string) ([]byte, error) {
	var script []byte
	for _, tok := range strings.Fields(s) {
		if n, err := strconv.ParseInt(tok, 10, 64); err == nil {
			b, err := txscript.NewScriptBuilder().AddInt64(n).Script()
			if err != nil {
				return nil, err
			}
			script = append(script, b...)
			continue
		}
		if strings.HasPrefix(tok, "0x") {
			b, err := hex.DecodeString(tok[2:])
			if err != nil {
				return nil, fmt.Errorf("token %q: %w", tok, err)
			}
			script = append(script, b...)
			continue
		}
		if len(tok) >= 2 && tok[0] == '\'' && tok[len(tok)-1] == '\'' {
			b, err := txscript.NewScriptBuilder().AddFullData([]byte(tok[1 : len(tok)-1])).Script()
			if err != nil {
				return nil, err
			}
			script = append(script, b...)
			continue
		}
		op, ok := p.ops[tok]
		if !ok {
			return nil, fmt.Errorf("bad token %q", tok)
		}
		script = append(script, op)
	}
	return script, nil
}

// vectorRun counts what one file contributed.
type vectorRun struct {
	name                         string
	run, valid, invalid, skipped int
	skipReasons                  map[string]int
}

func (r *vectorRun) skip(reason string) {
	r.skipped++
	if r.skipReasons == nil {
		r.skipReasons = map[string]int{}
	}
	r.skipReasons[reason]++
}

func (r *vectorRun) report(t *testing.T) {
	t.Logf("%s: %d cases run through gRPC (%d expected valid, %d expected invalid), %d not run",
		r.name, r.run, r.valid, r.invalid, r.skipped)
	reasons := make([]string, 0, len(r.skipReasons))
	for k := range r.skipReasons {
		reasons = append(reasons, k)
	}
	sort.Strings(reasons)
	for _, k := range reasons {
		t.Logf("%s: %d not run: %s", r.name, r.skipReasons[k], k)
	}
}

// vectorCase is one job with its expected verdict.
type vectorCase struct {
	name  string
	req   *txvalidatorv1.ValidateRequest
	valid bool
	// rule, when set, is the rejection expected instead of a script failure.
	rule string
}

func (e *env) check(t *testing.T, c vectorCase) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := e.client.Validate(ctx, c.req)
	if err != nil {
		t.Errorf("%s: Validate: %v", c.name, err)
		return
	}
	r := resp.GetResults()[0]
	switch {
	case c.valid && !r.GetValid():
		t.Errorf("%s: want valid, got %s: %s", c.name, r.GetRejection().GetRule(), r.GetRejection().GetDetail())
	case !c.valid && r.GetValid():
		t.Errorf("%s: want invalid, got valid", c.name)
	case !c.valid && c.rule != "" && r.GetRejection().GetRule() != c.rule:
		t.Errorf("%s: want %s, got %s: %s", c.name, c.rule, r.GetRejection().GetRule(), r.GetRejection().GetDetail())
	case !c.valid && c.rule == "" && r.GetRejection().GetRule() != string(rules.ScriptFailed):
		t.Errorf("%s: want %s, got %s: %s", c.name, rules.ScriptFailed, r.GetRejection().GetRule(), r.GetRejection().GetDetail())
	}
}

func scriptsOnly(tx *wire.MsgTx, prevouts []*wire.TxOut, flags []txvalidatorv1.ScriptFlag, start, end uint32) (*txvalidatorv1.ValidateRequest, error) {
	var buf bytes.Buffer
	if err := tx.Serialize(&buf); err != nil {
		return nil, err
	}
	job := &txvalidatorv1.TxJob{Tx: buf.Bytes(), InputStart: start, InputEnd: end}
	for _, p := range prevouts {
		job.Prevouts = append(job.Prevouts, &txvalidatorv1.Prevout{Output: &commonv1.TxOut{Value: p.Value, PkScript: p.PkScript}})
	}
	return &txvalidatorv1.ValidateRequest{
		Jobs: []*txvalidatorv1.TxJob{job}, Context: testContext(),
		Mode: txvalidatorv1.Mode_MODE_SCRIPTS_ONLY, Flags: flags,
	}, nil
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.TrimSuffix(bytes.TrimSpace(data), []byte(","))
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func btcAmount(f float64) int64 { return int64(math.Round(f * 1e8)) }

func TestVectors(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: Bitcoin Core vectors not run")
	}
	dir := vectorsDir(t)
	e := startEnv(t, Config{SigCacheEntries: 10000, Workers: 2})
	sf := newShortForm()

	t.Run("script_tests.json", func(t *testing.T) { runScriptTests(t, e, sf, filepath.Join(dir, "script_tests.json")) })
	t.Run("tx_valid.json", func(t *testing.T) { runTxTests(t, e, sf, filepath.Join(dir, "tx_valid.json"), true) })
	t.Run("tx_invalid.json", func(t *testing.T) { runTxTests(t, e, sf, filepath.Join(dir, "tx_invalid.json"), false) })
	t.Run("taproot-ref", func(t *testing.T) { runTaprootRef(t, e, filepath.Join(dir, "taproot-ref")) })
}

// numsH is BIP341's provably unspendable internal key H.
const numsH = "50929b74c1a04954b78b4b6035e97a5e078a5a0f28ec96d547bfee9ace803ac0"

// runScriptTests: [[wit..., amount]?, scriptSig, scriptPubKey, flags,
// expected, comment?]. Each runs as the spend of a crediting transaction,
// as Core builds it.
func runScriptTests(t *testing.T, e *env, sf *shortForm, path string) {
	var tests [][]any
	readJSON(t, path, &tests)
	run := &vectorRun{name: "script_tests.json"}
	defer run.report(t)
	internal, err := schnorr.ParsePubKey(must(hex.DecodeString(numsH)))
	if err != nil {
		t.Fatal(err)
	}
	for i, test := range tests {
		if len(test) == 1 {
			continue // comment line
		}
		var (
			witness    wire.TxWitness
			amount     int64
			tapLeaf    []byte
			hasTapLeaf bool
		)
		off := 0
		if w, ok := test[0].([]any); ok {
			off = 1
			amount = btcAmount(w[len(w)-1].(float64))
			for _, el := range w[:len(w)-1] {
				s := el.(string)
				switch {
				case strings.HasPrefix(s, "#SCRIPT#"):
					leaf, err := sf.parse(strings.TrimPrefix(s, "#SCRIPT#"))
					if err != nil {
						t.Fatalf("case %d: %v", i, err)
					}
					tapLeaf, hasTapLeaf = leaf, true
					witness = append(witness, leaf)
				case s == "#CONTROLBLOCK#":
					witness = append(witness, nil) // filled below
				default:
					witness = append(witness, must(hex.DecodeString(s)))
				}
			}
		}
		if len(test) < off+4 {
			t.Fatalf("case %d: short entry %v", i, test)
		}
		name := fmt.Sprintf("script_tests[%d] %v", i, test[off+len(test[off:])-1])
		scriptSig, err := sf.parse(test[off].(string))
		if err != nil {
			t.Fatalf("%s: scriptSig: %v", name, err)
		}
		pkStr := test[off+1].(string)
		var pkScript []byte
		if hasTapLeaf {
			// Core's placeholders: the leaf's tree under the NUMS key.
			tree := txscript.AssembleTaprootScriptTree(txscript.NewBaseTapLeaf(tapLeaf))
			root := tree.RootNode.TapHash()
			outKey := txscript.ComputeTaprootOutputKey(internal, root[:])
			cb := tree.LeafMerkleProofs[0].ToControlBlock(internal)
			cbBytes, err := cb.ToBytes()
			if err != nil {
				t.Fatal(err)
			}
			for j := range witness {
				if witness[j] == nil {
					witness[j] = cbBytes
				}
			}
			pkStr = strings.Replace(pkStr, "#TAPROOTOUTPUT#", "0x"+hex.EncodeToString(schnorr.SerializePubKey(outKey)), 1)
		}
		pkScript, err = sf.parse(pkStr)
		if err != nil {
			t.Fatalf("%s: scriptPubKey: %v", name, err)
		}
		flags, err := vectorFlags(test[off+2].(string))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		expected := test[off+3].(string)

		credit := wire.NewMsgTx(1)
		credit.AddTxIn(wire.NewTxIn(wire.NewOutPoint(&chainhash.Hash{}, math.MaxUint32), []byte{txscript.OP_0, txscript.OP_0}, nil))
		credit.AddTxOut(wire.NewTxOut(amount, pkScript))
		creditHash := credit.TxHash()
		spend := wire.NewMsgTx(1)
		spend.AddTxIn(wire.NewTxIn(wire.NewOutPoint(&creditHash, 0), scriptSig, witness))
		spend.AddTxOut(wire.NewTxOut(amount, nil))

		req, err := scriptsOnly(spend, []*wire.TxOut{credit.TxOut[0]}, flags, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		valid := expected == "OK"
		e.check(t, vectorCase{name: name + " (" + expected + ")", req: req, valid: valid})
		run.run++
		if valid {
			run.valid++
		} else {
			run.invalid++
		}
	}
}

// runTxTests: [[[prevhash, previndex, prevscript, amount?]...], tx, flags].
// tx_valid lists flags to exclude from all flags; tx_invalid lists the
// flags to apply, with BADTX marking context-free (CheckTransaction)
// failures.
func runTxTests(t *testing.T, e *env, sf *shortForm, path string, wantValid bool) {
	var tests [][]any
	readJSON(t, path, &tests)
	run := &vectorRun{name: filepath.Base(path)}
	defer run.report(t)
	var all txscript.ScriptFlags
	for _, f := range flagTable {
		all |= f.btcd
	}
	for i, test := range tests {
		inputs, ok := test[0].([]any)
		if !ok {
			continue // comment line
		}
		name := fmt.Sprintf("%s[%d]", run.name, i)
		tx := &wire.MsgTx{}
		if err := tx.Deserialize(bytes.NewReader(must(hex.DecodeString(test[1].(string))))); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		byOutpoint := map[wire.OutPoint]*wire.TxOut{}
		for _, in := range inputs {
			fields := in.([]any)
			hash, err := chainhash.NewHashFromStr(fields[0].(string))
			if err != nil {
				t.Fatal(err)
			}
			script, err := sf.parse(fields[2].(string))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			var value int64
			if len(fields) == 4 {
				value = int64(fields[3].(float64))
			}
			byOutpoint[wire.OutPoint{Hash: *hash, Index: uint32(int32(fields[1].(float64)))}] = wire.NewTxOut(value, script)
		}
		prevouts := make([]*wire.TxOut, len(tx.TxIn))
		for k, in := range tx.TxIn {
			prevouts[k] = byOutpoint[in.PreviousOutPoint]
			if prevouts[k] == nil {
				t.Fatalf("%s: no prevout for input %d", name, k)
			}
		}
		flagStr := test[2].(string)
		badTx := false
		var names []string
		for _, n := range strings.Split(flagStr, ",") {
			if n == "BADTX" {
				badTx = true
				continue
			}
			names = append(names, n)
		}
		flags, err := vectorFlags(strings.Join(names, ","))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if wantValid {
			excluded, err := FlagsFromProto(flags)
			if err != nil {
				t.Fatal(err)
			}
			if flags, err = FlagsToProto(all &^ excluded); err != nil {
				t.Fatal(err)
			}
			flags = explicitFlags(flags)
		}
		req, err := scriptsOnly(tx, prevouts, flags, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		c := vectorCase{name: fmt.Sprintf("%s %s", name, flagStr), req: req, valid: wantValid}
		switch {
		case badTx:
			// Context-free failures: MODE_FULL runs CheckTransaction first,
			// so the rejection must be a bad-txns-* sanity rule.
			req.Mode = txvalidatorv1.Mode_MODE_FULL
			resp, err := e.client.Validate(context.Background(), req)
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
				break
			}
			r := resp.GetResults()[0]
			if r.GetValid() || !strings.HasPrefix(r.GetRejection().GetRule(), "bad-txns-") && !strings.HasPrefix(r.GetRejection().GetRule(), "bad-cb-") {
				t.Errorf("%s: want a CheckTransaction failure, got valid=%v %s: %s", c.name, r.GetValid(), r.GetRejection().GetRule(), r.GetRejection().GetDetail())
			}
		case isCoinbase(tx):
			// The validator refuses coinbase jobs by design (the block path
			// checks the coinbase itself); check that refusal instead.
			run.skip("coinbase transaction: txvalidator refuses coinbase jobs by design (checked that it answers " + string(CoinbaseJob) + ")")
			c.valid, c.rule = false, string(CoinbaseJob)
			e.check(t, c)
			continue
		default:
			e.check(t, c)
		}
		run.run++
		if wantValid {
			run.valid++
		} else {
			run.invalid++
		}
	}
}

func isCoinbase(tx *wire.MsgTx) bool {
	return len(tx.TxIn) == 1 && tx.TxIn[0].PreviousOutPoint.Index == math.MaxUint32 &&
		tx.TxIn[0].PreviousOutPoint.Hash == chainhash.Hash{}
}

type taprootWitness struct {
	ScriptSig string   `json:"scriptSig"`
	Witness   []string `json:"witness"`
}

type taprootCase struct {
	Tx       string          `json:"tx"`
	Prevouts []string        `json:"prevouts"`
	Index    int             `json:"index"`
	Flags    string          `json:"flags"`
	Comment  string          `json:"comment"`
	Success  *taprootWitness `json:"success"`
	Failure  *taprootWitness `json:"failure"`
}

// runTaprootRef runs Core's feature_taproot.py dumps: each file is one
// input of a transaction with a succeeding and/or failing witness. Jobs
// are batched (by flags) to keep the run short; each checks only the
// input under test through input_start/input_end.
func runTaprootRef(t *testing.T, e *env, dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	run := &vectorRun{name: "taproot-ref"}
	defer run.report(t)
	type pending struct {
		name  string
		job   *txvalidatorv1.TxJob
		valid bool
	}
	batches := map[string][]pending{}
	for _, ent := range entries {
		var c taprootCase
		readJSON(t, filepath.Join(dir, ent.Name()), &c)
		prevouts := make([]*txvalidatorv1.Prevout, len(c.Prevouts))
		for i, p := range c.Prevouts {
			var out wire.TxOut
			if err := wire.ReadTxOut(bytes.NewReader(must(hex.DecodeString(p))), 0, 0, &out); err != nil {
				t.Fatalf("%s: prevout %d: %v", ent.Name(), i, err)
			}
			prevouts[i] = &txvalidatorv1.Prevout{Output: &commonv1.TxOut{Value: out.Value, PkScript: out.PkScript}}
		}
		for _, v := range []struct {
			w     *taprootWitness
			valid bool
		}{{c.Success, true}, {c.Failure, false}} {
			if v.w == nil {
				continue
			}
			tx := &wire.MsgTx{}
			if err := tx.Deserialize(bytes.NewReader(must(hex.DecodeString(c.Tx)))); err != nil {
				t.Fatalf("%s: %v", ent.Name(), err)
			}
			in := tx.TxIn[c.Index]
			in.SignatureScript = must(hex.DecodeString(v.w.ScriptSig))
			in.Witness = nil
			for _, w := range v.w.Witness {
				in.Witness = append(in.Witness, must(hex.DecodeString(w)))
			}
			var buf bytes.Buffer
			if err := tx.Serialize(&buf); err != nil {
				t.Fatal(err)
			}
			batches[c.Flags] = append(batches[c.Flags], pending{
				name:  fmt.Sprintf("%s (%s, valid=%v)", ent.Name(), c.Comment, v.valid),
				job:   &txvalidatorv1.TxJob{Tx: buf.Bytes(), Prevouts: prevouts, InputStart: uint32(c.Index), InputEnd: uint32(c.Index + 1)},
				valid: v.valid,
			})
		}
	}
	for flagStr, cases := range batches {
		flags, err := vectorFlags(flagStr)
		if err != nil {
			t.Fatal(err)
		}
		for lo := 0; lo < len(cases); lo += 200 {
			chunk := cases[lo:min(lo+200, len(cases))]
			req := &txvalidatorv1.ValidateRequest{Context: testContext(), Mode: txvalidatorv1.Mode_MODE_SCRIPTS_ONLY, Flags: flags}
			for _, c := range chunk {
				req.Jobs = append(req.Jobs, c.job)
			}
			resp := e.validate(t, req)
			for k, r := range resp.GetResults() {
				c := chunk[k]
				run.run++
				if c.valid {
					run.valid++
				} else {
					run.invalid++
				}
				if r.GetValid() != c.valid {
					t.Errorf("%s: got valid=%v (%s: %s)", c.name, r.GetValid(), r.GetRejection().GetRule(), r.GetRejection().GetDetail())
				} else if !c.valid && r.GetFailedInput() != int32(c.job.GetInputStart()) {
					t.Errorf("%s: failed_input %d", c.name, r.GetFailedInput())
				}
			}
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
