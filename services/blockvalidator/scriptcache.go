package blockvalidator

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/btcmesh/btcmesh/proto/btcmesh/common/v1"
	eventsv1 "github.com/btcmesh/btcmesh/proto/btcmesh/events/v1"
	txvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/txvalidator/v1"

	"github.com/btcmesh/btcmesh/internal/chain"
	"github.com/btcmesh/btcmesh/internal/rules"
	"github.com/btcmesh/btcmesh/internal/txcheck"
)

const (
	// scriptCacheEntries bounds the script-execution cache (about 100
	// bytes an entry); the oldest entries go first.
	scriptCacheEntries = 300_000
	// minerTipLag is how many blocks the miner's view of the tip may lag
	// this service's when it validates a transaction: an entry is recorded
	// as validated at that lower height, whose flags are a subset of the
	// ones the miner used (flags only grow with height).
	minerTipLag = 6
)

// scriptEntry records how a transaction's scripts were validated.
type scriptEntry struct {
	// flags the scripts passed under (policy flags, which include the
	// consensus flags of their height).
	flags txscript.ScriptFlags
	// height the flags belong to.
	height int32
}

// scriptCache is the block path's script-execution cache, as Bitcoin
// Core's: the wtxids of transactions the mempool accepted (the miner
// publishes tx.accepted after a MODE_FULL validation with policy flags),
// so that a block holding them needs every check but the scripts. A wtxid
// commits to the transaction with its witness, and the outpoints it
// spends commit to the spent scripts and amounts, so the scripts'
// verdict under given flags cannot change; an entry serves a block only
// when the block's consensus flags are a subset of the entry's flags.
type scriptCache struct {
	net chain.Network
	max int

	mu      sync.Mutex
	entries map[chainhash.Hash]scriptEntry
	ring    []chainhash.Hash // insertion order, for eviction
	next    int

	hits, misses prometheus.Counter
	entriesG     prometheus.Gauge
	validateSec  prometheus.Histogram
}

func newScriptCache(net chain.Network, reg prometheus.Registerer) (*scriptCache, error) {
	c := &scriptCache{
		net:     net,
		max:     scriptCacheEntries,
		entries: make(map[chainhash.Hash]scriptEntry),
		hits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "btcmesh_blockvalidator_script_cache_hits_total",
			Help: "Block transactions whose scripts the mempool had validated (scripts not run again).",
		}),
		misses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "btcmesh_blockvalidator_script_cache_misses_total",
			Help: "Block transactions whose scripts were run by the txvalidator pool.",
		}),
		entriesG: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "btcmesh_blockvalidator_script_cache_entries",
			Help: "Transactions in the script-execution cache.",
		}),
		validateSec: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "btcmesh_blockvalidator_tx_validation_seconds",
			Help:    "Time for the txvalidator pool to check one block's transactions.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14),
		}),
	}
	if reg != nil {
		for _, col := range []prometheus.Collector{c.hits, c.misses, c.entriesG, c.validateSec} {
			if err := reg.Register(col); err != nil {
				return nil, fmt.Errorf("register blockvalidator script cache metrics: %w", err)
			}
		}
	}
	return c, nil
}

// add records wtxid as validated under the policy flags of height.
func (c *scriptCache) add(wtxid chainhash.Hash, height int32) {
	e := scriptEntry{flags: c.net.PolicyScriptFlags(height), height: height}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.entries[wtxid]; ok {
		if old.flags&^e.flags == 0 {
			c.entries[wtxid] = e
		}
		return
	}
	if len(c.ring) < c.max {
		c.ring = append(c.ring, wtxid)
	} else {
		delete(c.entries, c.ring[c.next])
		c.ring[c.next] = wtxid
		c.next = (c.next + 1) % c.max
	}
	c.entries[wtxid] = e
	c.entriesG.Set(float64(len(c.entries)))
}

// covers reports whether wtxid's scripts passed under flags that include
// the consensus flags of a block at height.
func (c *scriptCache) covers(wtxid chainhash.Hash, height int32) bool {
	c.mu.Lock()
	e, ok := c.entries[wtxid]
	c.mu.Unlock()
	return ok && c.net.ScriptFlags(height)&^e.flags == 0
}

// forget drops connected transactions: they will not be validated again
// (a reorg sends them back through the mempool, which announces them).
func (c *scriptCache) forget(txs []*btcutil.Tx) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, tx := range txs {
		delete(c.entries, *tx.WitnessHash())
	}
	c.entriesG.Set(float64(len(c.entries)))
}

// subscribeAccepted feeds the cache from tx.accepted; the returned
// function unsubscribes. Every replica subscribes (no queue group).
func (s *Service) subscribeAccepted(nc *nats.Conn) (func(), error) {
	sub, err := nc.Subscribe(s.subjects.TxAccepted(), func(msg *nats.Msg) {
		ev := &eventsv1.TxAccepted{}
		if err := proto.Unmarshal(msg.Data, ev); err != nil || len(ev.GetWtxid()) != chainhash.HashSize {
			s.log.Warn("bad tx.accepted event ignored", "err", err)
			return
		}
		var wtxid chainhash.Hash
		copy(wtxid[:], ev.GetWtxid())
		_, tip := s.tip()
		s.scripts.add(wtxid, max(tip+1-minerTipLag, 0))
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", s.subjects.TxAccepted(), err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

// txOutcome is what checking one transaction of a block found: its fee
// and sigop cost, or the rule it broke (a *rules.RuleError).
type txOutcome struct {
	fee, sigops int64
	err         error
}

// validateTxs checks every non-coinbase transaction of c's block, whose
// inputs spend pv[i] (pv[0], the coinbase's, is unused), in the block
// context cc. When the script cache covers every transaction only the
// non-script checks remain, and they run here (see localChecks);
// otherwise the batch goes to the txvalidator pool, which skips the
// scripts of the transactions the cache covers.
func (s *Service) validateTxs(ctx context.Context, c *cand, pv [][]txcheck.Prevout, cc txcheck.Context) ([]txOutcome, error) {
	start := time.Now()
	txs := c.block.Transactions()
	covered := make([]bool, len(txs))
	hits := 0
	for k := 1; k < len(txs); k++ {
		if s.scripts.covers(*txs[k].WitnessHash(), cc.Height) {
			covered[k] = true
			hits++
		}
	}
	s.scripts.hits.Add(float64(hits))
	s.scripts.misses.Add(float64(len(txs) - 1 - hits))
	var out []txOutcome
	if hits == len(txs)-1 {
		out = s.localChecks(txs, pv, cc)
	} else {
		var err error
		if out, err = s.poolChecks(ctx, c, pv, cc, covered); err != nil {
			return nil, err
		}
	}
	s.scripts.validateSec.Observe(time.Since(start).Seconds())
	for _, o := range out {
		if o.err != nil {
			return out, nil
		}
	}
	s.scripts.forget(txs[1:])
	return out, nil
}

// poolChecks sends one MODE_FULL job per non-coinbase transaction of c's
// block to the txvalidator pool, asking only for the non-script checks of
// the covered ones.
func (s *Service) poolChecks(ctx context.Context, c *cand, pv [][]txcheck.Prevout, cc txcheck.Context, covered []bool) ([]txOutcome, error) {
	locs, err := c.block.TxLoc()
	if err != nil {
		return nil, fmt.Errorf("locate transactions: %w", err)
	}
	jobs := make([]*txvalidatorv1.TxJob, 0, len(locs)-1)
	for i := 1; i < len(locs); i++ {
		prevouts := make([]*txvalidatorv1.Prevout, len(pv[i]))
		for j, p := range pv[i] {
			prevouts[j] = &txvalidatorv1.Prevout{
				Output:         &commonv1.TxOut{Value: p.Output.Value, PkScript: p.Output.PkScript},
				Height:         p.Height,
				Coinbase:       p.Coinbase,
				MedianTimePast: p.MedianTimePast,
			}
		}
		loc := locs[i]
		jobs = append(jobs, &txvalidatorv1.TxJob{Tx: c.raw[loc.TxStart : loc.TxStart+loc.TxLen], Prevouts: prevouts,
			SkipScripts: covered[i]})
	}
	resp, err := s.pool.Validate(ctx, &txvalidatorv1.ValidateRequest{
		Jobs:    jobs,
		Context: &txvalidatorv1.ChainContext{Height: cc.Height, MedianTimePast: cc.MedianTimePast, BlockTime: cc.BlockTime},
		Mode:    txvalidatorv1.Mode_MODE_FULL,
	})
	if err != nil {
		return nil, err
	}
	if len(resp.GetResults()) != len(jobs) {
		return nil, fmt.Errorf("txvalidator answered %d results for %d jobs", len(resp.GetResults()), len(jobs))
	}
	out := make([]txOutcome, len(jobs))
	for k, r := range resp.GetResults() {
		out[k] = txOutcome{fee: r.GetFee(), sigops: r.GetSigopCost()}
		if !r.GetValid() {
			rule := r.GetRejection().GetRule()
			if rule == "" {
				rule = string(rules.ScriptFailed)
			}
			out[k].err = &rules.RuleError{Kind: rules.Kind(rule), Detail: r.GetRejection().GetDetail()}
		}
	}
	return out, nil
}
