package blockimport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	blockvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/blockvalidator/v1"
	headersv1 "github.com/btcmesh/btcmesh/proto/btcmesh/headers/v1"
)

// Config configures one import.
type Config struct {
	// Files are the block files, read in this order.
	Files []string
	// Net is the network magic records must start with.
	Net wire.BitcoinNet
	// Genesis is the network's genesis hash (built into every node; not
	// submitted).
	Genesis chainhash.Hash
	// Headers and Validator are the node's APIs.
	Headers   headersv1.HeaderServiceClient
	Validator blockvalidatorv1.BlockValidatorServiceClient
	// Log receives progress and problems.
	Log *slog.Logger
	// Metrics, when set, receives the btcmesh_import_* collectors.
	Metrics prometheus.Registerer
	// MaxPendingBytes bounds the bytes of out-of-order blocks held in
	// memory while they wait for their parent; beyond it only their file
	// position is kept and they are re-read when the parent arrives.
	MaxPendingBytes int64
	// ProgressInterval is how often progress is logged.
	ProgressInterval time.Duration
	// CallTimeout bounds one gRPC call (a SubmitBlock validates a block).
	CallTimeout time.Duration
}

// Validate checks the configuration, naming the flag at fault.
func (c Config) Validate() error {
	switch {
	case len(c.Files) == 0:
		return errors.New("no FILE given: name one or more blk*.dat or bootstrap.dat files")
	case c.Headers == nil || c.Validator == nil || c.Log == nil:
		return errors.New("blockimport: Headers, Validator and Log are required")
	case c.MaxPendingBytes < 0:
		return errors.New("--import-max-pending-mb must be >= 0")
	case c.ProgressInterval <= 0:
		return errors.New("--import-progress-interval must be > 0")
	case c.CallTimeout <= 0:
		return errors.New("--import-call-timeout must be > 0")
	}
	return nil
}

// waiting is a block whose parent has not been connected yet.
type waiting struct {
	hash, parent chainhash.Hash
	path         string
	offset       int64
	length       int
	raw          []byte // nil when kept only by position
}

// importer is one run's state.
type importer struct {
	cfg     Config
	log     *slog.Logger
	rd      *Reader
	sum     *Summary
	metrics *metrics

	// indexed holds blocks known to the index with their data (or as
	// invalid), so their children can be submitted.
	indexed map[chainhash.Hash]struct{}
	// rejected maps blocks this run rejected (or found invalid) to the
	// rule, so their descendants are counted without being submitted.
	rejected map[chainhash.Hash]string
	// pending maps a parent hash to the blocks waiting for it.
	// handled holds every block read from the files so far, to tell
	// second copies apart.
	handled       map[chainhash.Hash]struct{}
	pending       map[chainhash.Hash][]*waiting
	pendingHashes map[chainhash.Hash]struct{}
	pendingBytes  int64
	// waitingBytes is the size of every waiting block (held in memory or
	// not): bytes read but not yet done, for the ETA.
	waitingBytes int64

	start, lastProgress time.Time
	lastDone            int64
	lastBytes           int64
}

// Run imports cfg.Files. It returns the summary (also when it returns an
// error or ctx ended early) and an error only for I/O or RPC failures.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	im := &importer{
		cfg: cfg, log: cfg.Log, rd: NewReader(cfg.Files, cfg.Net),
		sum:      &Summary{},
		indexed:  map[chainhash.Hash]struct{}{cfg.Genesis: {}},
		rejected: map[chainhash.Hash]string{}, handled: map[chainhash.Hash]struct{}{},
		pending: map[chainhash.Hash][]*waiting{}, pendingHashes: map[chainhash.Hash]struct{}{},
		start: time.Now(),
	}
	im.lastProgress = im.start
	defer im.rd.Close()
	for _, p := range cfg.Files {
		fs := FileSummary{Path: p}
		if size, err := fileSize(p); err == nil {
			fs.Size = size
		} else {
			return im.sum, err
		}
		im.sum.Files = append(im.sum.Files, fs)
		im.sum.BytesTotal += fs.Size
	}
	im.metrics = newMetrics(cfg.Metrics)
	im.metrics.filesBytes.Set(float64(im.sum.BytesTotal))
	if tip, err := im.chainTip(ctx); err == nil {
		im.sum.StartHeight, im.sum.TipHeight, im.sum.TipHash = tip.GetHeight(), tip.GetHeight(), hashOf(tip.GetHash())
	} else {
		return im.sum, err
	}
	im.log.Info("import starting", "files", len(cfg.Files), "bytes", im.sum.BytesTotal, "tip_height", im.sum.StartHeight)
	err := im.loop(ctx)
	im.finish(ctx)
	return im.sum, err
}

// loop reads every record and processes it.
func (im *importer) loop(ctx context.Context) error {
	for {
		if ctx.Err() != nil {
			im.sum.Interrupted = true
			return nil
		}
		rec, err := im.rd.Next()
		if errors.Is(err, io.EOF) {
			// Interrupted while settling the last blocks: some still wait.
			im.sum.Interrupted = ctx.Err() != nil && len(im.pendingHashes) > 0
			return nil
		}
		if err != nil {
			return err
		}
		if err := im.handle(ctx, rec); err != nil {
			return err
		}
		im.progress(false)
	}
}

// handle processes one record.
func (im *importer) handle(ctx context.Context, rec Record) error {
	h := rec.Hash
	if h == im.cfg.Genesis {
		im.sum.BlocksRead++
		im.sum.Genesis++
		return im.settle(ctx, h)
	}
	if _, dup := im.handled[h]; dup {
		im.sum.BlocksRead++
		im.sum.Duplicates++
		im.count("duplicate")
		return nil
	}
	info, found, err := im.getHeader(ctx, h)
	if err != nil {
		return err
	}
	if found && info.GetStatus() != headersv1.BlockStatus_BLOCK_STATUS_HEADER_VALID {
		im.sum.BlocksRead++
		im.handled[h] = struct{}{}
		if info.GetStatus() == headersv1.BlockStatus_BLOCK_STATUS_INVALID {
			im.reject(h, rec.Path, rec.Offset, info.GetInvalidReason(), "already marked invalid in the block index")
		} else {
			im.sum.AlreadyPresent++
			im.count("already_present")
			im.indexed[h] = struct{}{}
		}
		return im.settle(ctx, h)
	}
	blk, raw, err := rec.Decode()
	if err != nil {
		im.sum.Undecodable++
		im.count("undecodable")
		im.log.Warn("undecodable record skipped", "file", rec.Path, "offset", rec.Offset, "err", err)
		return im.rd.Resync(rec, err)
	}
	im.sum.BlocksRead++
	im.handled[h] = struct{}{}
	if blk.BlockHash() != h {
		return fmt.Errorf("blockimport: hash mismatch at %s offset %d", rec.Path, rec.Offset)
	}
	parent := blk.Header.PrevBlock
	ready, reason, err := im.parentState(ctx, parent)
	if err != nil {
		return err
	}
	switch {
	case reason != "":
		im.rejectDescendant(h, parent, rec.Path, rec.Offset, reason)
	case ready:
		if err := im.submit(ctx, h, raw, rec.Path, rec.Offset); err != nil {
			return err
		}
	default:
		im.hold(&waiting{hash: h, parent: parent, path: rec.Path, offset: rec.Offset, length: len(raw), raw: raw})
		return nil
	}
	return im.settle(ctx, h)
}

// parentState reports whether a block with parent p can be submitted now
// (ready), or descends from a rejected block (reason set), or must wait.
func (im *importer) parentState(ctx context.Context, p chainhash.Hash) (ready bool, reason string, err error) {
	if _, ok := im.indexed[p]; ok {
		return true, "", nil
	}
	if r, ok := im.rejected[p]; ok {
		return false, r, nil
	}
	if _, ok := im.pendingHashes[p]; ok {
		return false, "", nil
	}
	info, found, err := im.getHeader(ctx, p)
	if err != nil || !found {
		return false, "", err
	}
	switch info.GetStatus() {
	case headersv1.BlockStatus_BLOCK_STATUS_VALID, headersv1.BlockStatus_BLOCK_STATUS_HAVE_DATA:
		im.indexed[p] = struct{}{}
		return true, "", nil
	case headersv1.BlockStatus_BLOCK_STATUS_INVALID:
		r := info.GetInvalidReason()
		if r == "" {
			r = "invalid"
		}
		im.rejected[p] = r
		return false, r, nil
	}
	return false, "", nil
}

// hold keeps w until its parent is connected.
func (im *importer) hold(w *waiting) {
	if im.pendingBytes+int64(len(w.raw)) > im.cfg.MaxPendingBytes {
		w.raw = nil
		im.sum.SpilledToDisk++
	} else {
		im.pendingBytes += int64(len(w.raw))
	}
	im.waitingBytes += int64(w.length)
	im.pending[w.parent] = append(im.pending[w.parent], w)
	im.pendingHashes[w.hash] = struct{}{}
	im.sum.OutOfOrder++
	im.metrics.pending.Set(float64(len(im.pendingHashes)))
	im.log.Debug("block waits for parent", "hash", w.hash.String(), "parent", w.parent.String(), "file", w.path, "offset", w.offset)
}

// settle submits, in order, every held descendant of root.
func (im *importer) settle(ctx context.Context, root chainhash.Hash) error {
	queue := []chainhash.Hash{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		kids := im.pending[p]
		delete(im.pending, p)
		for i, w := range kids {
			if ctx.Err() != nil {
				im.pending[p] = append(im.pending[p], kids[i:]...)
				return nil
			}
			delete(im.pendingHashes, w.hash)
			im.pendingBytes -= int64(len(w.raw))
			im.waitingBytes -= int64(w.length)
			if reason, bad := im.rejected[p]; bad {
				im.rejectDescendant(w.hash, p, w.path, w.offset, reason)
			} else {
				raw := w.raw
				if raw == nil {
					var err error
					if raw, err = ReadAt(w.path, w.offset, w.length); err != nil {
						return err
					}
				}
				if err := im.submit(ctx, w.hash, raw, w.path, w.offset); err != nil {
					return err
				}
			}
			queue = append(queue, w.hash)
			im.progress(false)
		}
		im.metrics.pending.Set(float64(len(im.pendingHashes)))
	}
	return nil
}

// submit sends one block through the pipeline and records the outcome.
func (im *importer) submit(ctx context.Context, h chainhash.Hash, raw []byte, path string, offset int64) error {
	var resp *blockvalidatorv1.SubmitBlockResponse
	err := im.call(ctx, "blockvalidator.SubmitBlock", func(cctx context.Context) error {
		var err error
		resp, err = im.cfg.Validator.SubmitBlock(cctx, &blockvalidatorv1.SubmitBlockRequest{Block: raw})
		return err
	})
	if status.Code(err) == codes.InvalidArgument {
		im.reject(h, path, offset, "block-decode-failed", status.Convert(err).Message())
		return nil
	}
	if err != nil {
		return err
	}
	if resp.GetTipHash() != nil {
		im.sum.TipHeight, im.sum.TipHash = resp.GetTipHeight(), hashOf(resp.GetTipHash())
		im.metrics.tipHeight.Set(float64(resp.GetTipHeight()))
	}
	switch resp.GetResult() {
	case blockvalidatorv1.SubmitResult_SUBMIT_RESULT_ACCEPTED:
		im.sum.Imported++
		im.count("imported")
		im.indexed[h] = struct{}{}
	case blockvalidatorv1.SubmitResult_SUBMIT_RESULT_SIDE_CHAIN:
		im.sum.Imported++
		im.sum.SideChain++
		im.count("side_chain")
		im.indexed[h] = struct{}{}
	case blockvalidatorv1.SubmitResult_SUBMIT_RESULT_DUPLICATE:
		im.sum.AlreadyPresent++
		im.count("already_present")
		im.indexed[h] = struct{}{}
	case blockvalidatorv1.SubmitResult_SUBMIT_RESULT_REJECTED, blockvalidatorv1.SubmitResult_SUBMIT_RESULT_DUPLICATE_INVALID:
		im.reject(h, path, offset, resp.GetRejectReason(), resp.GetRejectDetail())
	case blockvalidatorv1.SubmitResult_SUBMIT_RESULT_ORPHAN:
		// Cannot happen (the parent was known); the validator holds it.
		im.sum.Orphans = append(im.sum.Orphans, Orphan{Hash: h, Path: path, Offset: offset, Detail: "the block validator held it as an orphan"})
		im.count("orphan")
	default:
		return fmt.Errorf("blockvalidator.SubmitBlock %s: unexpected result %v", h, resp.GetResult())
	}
	return nil
}

// reject records a rejected block.
func (im *importer) reject(h chainhash.Hash, path string, offset int64, reason, detail string) {
	if reason == "" {
		reason = "rejected"
	}
	im.rejected[h] = reason
	im.sum.addRejected(RejectedBlock{Hash: h, Path: path, Offset: offset, Reason: reason, Detail: detail})
	im.count("rejected")
	im.log.Warn("block rejected", "hash", h.String(), "file", path, "offset", offset, "reason", reason, "detail", detail)
}

// rejectDescendant records a block not submitted because an ancestor was
// rejected (Bitcoin Core calls this bad-prevblk).
func (im *importer) rejectDescendant(h, parent chainhash.Hash, path string, offset int64, reason string) {
	im.reject(h, path, offset, "bad-prevblk", fmt.Sprintf("descends from rejected block %s (%s); not submitted", parent, reason))
}

// getHeader looks h up in the block index.
func (im *importer) getHeader(ctx context.Context, h chainhash.Hash) (*headersv1.HeaderInfo, bool, error) {
	var resp *headersv1.GetHeaderResponse
	err := im.call(ctx, "headers.GetHeader", func(cctx context.Context) error {
		var err error
		resp, err = im.cfg.Headers.GetHeader(cctx, &headersv1.GetHeaderRequest{Hash: h[:]})
		return err
	})
	if status.Code(err) == codes.NotFound {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return resp.GetInfo(), true, nil
}

// chainTip returns the active tip.
func (im *importer) chainTip(ctx context.Context) (*headersv1.HeaderInfo, error) {
	var resp *headersv1.GetChainInfoResponse
	err := im.call(ctx, "headers.GetChainInfo", func(cctx context.Context) error {
		var err error
		resp, err = im.cfg.Headers.GetChainInfo(cctx, &headersv1.GetChainInfoRequest{})
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp.GetTip(), nil
}

// call runs f with a deadline, retrying while the service is Unavailable
// (starting up). Calls are not cut short by ctx: a block being validated
// when the user interrupts is finished and counted.
func (im *importer) call(ctx context.Context, what string, f func(context.Context) error) error {
	base := context.WithoutCancel(ctx)
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(base, im.cfg.CallTimeout)
		err := f(cctx)
		cancel()
		code := status.Code(err)
		if err == nil || code == codes.NotFound || code == codes.InvalidArgument {
			return err
		}
		if code != codes.Unavailable || attempt >= 8 || ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		im.log.Warn("call failed, retrying", "call", what, "attempt", attempt, "err", err)
		time.Sleep(backoff)
		backoff *= 2
	}
}

func (im *importer) count(result string) { im.metrics.blocks.WithLabelValues(result).Inc() }

// progress logs and exports progress every ProgressInterval, or now when
// final is set.
func (im *importer) progress(final bool) {
	now := time.Now()
	since := now.Sub(im.lastProgress)
	if !final && since < im.cfg.ProgressInterval {
		return
	}
	read := im.rd.BytesRead()
	done := im.sum.Imported + im.sum.AlreadyPresent
	rate := float64(done-im.lastDone) / max(since.Seconds(), 1e-9)
	// Bytes of blocks still waiting for their parent are not done yet.
	doneBytes := read - im.waitingBytes
	elapsed := now.Sub(im.start).Seconds()
	eta := -1.0
	if doneBytes > 0 && elapsed > 0 {
		eta = float64(im.sum.BytesTotal-doneBytes) / (float64(doneBytes) / elapsed)
	}
	im.metrics.bytesRead.Add(float64(read - im.lastBytes))
	im.metrics.rate.Set(rate)
	im.metrics.eta.Set(eta)
	im.metrics.skipped.Set(float64(skippedBytes(im.rd.Problems())))
	im.lastProgress, im.lastDone, im.lastBytes = now, done, read
	if final {
		return
	}
	pct := 0.0
	if im.sum.BytesTotal > 0 {
		pct = 100 * float64(doneBytes) / float64(im.sum.BytesTotal)
	}
	im.log.Info("import progress", "height", im.sum.TipHeight, "blocks_per_sec", round1(rate),
		"imported", im.sum.Imported, "already_present", im.sum.AlreadyPresent, "waiting", len(im.pendingHashes),
		"bytes_read", read, "bytes_total", im.sum.BytesTotal, "percent", round1(pct),
		"eta", time.Duration(eta*float64(time.Second)).Round(time.Second).String(), "eta_seconds", round1(eta))
}

// finish fills the summary's closing fields.
func (im *importer) finish(ctx context.Context) {
	im.progress(true)
	s := im.sum
	s.Elapsed = time.Since(im.start)
	s.BytesRead = im.rd.BytesRead()
	s.Problems = append(s.Problems, im.rd.Problems()...)
	s.PaddingBytes = im.rd.PaddingBytes()
	s.SkippedBytes = skippedBytes(s.Problems)
	for i := range s.Files {
		if i < im.rd.idx || im.rd.idx >= len(s.Files) {
			s.Files[i].Done = true
		}
	}
	for _, ws := range im.pending {
		for _, w := range ws {
			detail := "parent " + w.parent.String() + " never appeared in the files"
			if s.Interrupted {
				detail = "still waiting for parent " + w.parent.String() + " when interrupted"
			}
			s.Orphans = append(s.Orphans, Orphan{Hash: w.hash, Parent: w.parent, Path: w.path, Offset: w.offset, Detail: detail})
		}
	}
	sort.Slice(s.Orphans, func(i, j int) bool {
		if s.Orphans[i].Path != s.Orphans[j].Path {
			return s.Orphans[i].Path < s.Orphans[j].Path
		}
		return s.Orphans[i].Offset < s.Orphans[j].Offset
	})
	if tip, err := im.chainTip(context.WithoutCancel(ctx)); err == nil {
		s.TipHeight, s.TipHash = tip.GetHeight(), hashOf(tip.GetHash())
	}
	im.log.Info("import finished", "interrupted", s.Interrupted, "blocks_read", s.BlocksRead, "imported", s.Imported,
		"already_present", s.AlreadyPresent, "rejected", len(s.Rejected), "orphans", len(s.Orphans),
		"undecodable", s.Undecodable, "bytes_skipped", s.SkippedBytes, "tip_height", s.TipHeight,
		"tip_hash", s.TipHash.String(), "elapsed", s.Elapsed.Round(time.Millisecond).String(),
		"blocks_per_sec", round1(float64(s.Imported)/max(s.Elapsed.Seconds(), 1e-9)))
}

func skippedBytes(ps []Problem) int64 {
	var n int64
	for _, p := range ps {
		n += p.Length
	}
	return n
}

func hashOf(b []byte) chainhash.Hash {
	var h chainhash.Hash
	copy(h[:], b)
	return h
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }

func fileSize(path string) (int64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("file %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return 0, fmt.Errorf("file %s: not a regular file", path)
	}
	return st.Size(), nil
}
