package headers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	eventsv1 "github.com/btcmesh/btcmesh/proto/btcmesh/events/v1"
	headersv1 "github.com/btcmesh/btcmesh/proto/btcmesh/headers/v1"

	"github.com/btcmesh/btcmesh/internal/rules"
)

const (
	defaultMaxLocate  = 2000
	defaultMaxMissing = 1024
	// commitChunk bounds how many new entries one badger transaction holds.
	commitChunk = 2000
	// ibdMaxAge: the node is in initial block download while its tip is
	// older than this.
	ibdMaxAge = 24 * time.Hour
)

// grpcServer implements headersv1.HeaderServiceServer.
type grpcServer struct {
	headersv1.UnimplementedHeaderServiceServer
	s *Service
}

// info renders an entry; call with mu held.
func (x *index) info(n *node) *headersv1.HeaderInfo {
	if n == nil {
		return nil
	}
	hi := &headersv1.HeaderInfo{
		Hash:           append([]byte(nil), n.hash[:]...),
		Height:         n.height,
		Header:         append([]byte(nil), n.raw...),
		ChainWork:      n.work.Bytes(),
		Status:         n.status,
		MedianTimePast: n.mtp,
		OnActiveChain:  x.onActive(n),
		InvalidReason:  n.reason,
	}
	if hi.OnActiveChain && int(n.height)+1 < len(x.active) {
		next := x.active[n.height+1]
		hi.NextHash = append([]byte(nil), next.hash[:]...)
	}
	return hi
}

func parseHash(b []byte, what string) (chainhash.Hash, error) {
	var h chainhash.Hash
	if len(b) != chainhash.HashSize {
		return h, rules.InvalidArgument("%s must be %d bytes, got %d", what, chainhash.HashSize, len(b))
	}
	copy(h[:], b)
	return h, nil
}

func notFound(h chainhash.Hash) error {
	return status.Errorf(codes.NotFound, "block %s not found", h)
}

// readIndex runs f with the block index under the read lock, or answers
// errNotReady while the index is not loaded.
func readIndex[T any](s *Service, f func(x *index) (T, error)) (T, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return withLoaded(s, f)
}

// writeIndex is readIndex under the write lock.
func writeIndex[T any](s *Service, f func(x *index) (T, error)) (T, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return withLoaded(s, f)
}

// withLoaded runs f on the loaded index; the caller holds s.mu.
func withLoaded[T any](s *Service, f func(x *index) (T, error)) (T, error) {
	if s.idx == nil {
		var zero T
		return zero, errNotReady()
	}
	return f(s.idx)
}

// SubmitHeaders validates headers in order and adds the new ones.
func (g *grpcServer) SubmitHeaders(_ context.Context, req *headersv1.SubmitHeadersRequest) (*headersv1.SubmitHeadersResponse, error) {
	hdrs := make([]wire.BlockHeader, len(req.Headers))
	for i, raw := range req.Headers {
		if len(raw) != headerLen {
			return nil, rules.InvalidArgument("headers[%d] must be %d bytes, got %d", i, headerLen, len(raw))
		}
		if err := hdrs[i].Deserialize(bytes.NewReader(raw)); err != nil {
			return nil, rules.InvalidArgument("headers[%d]: %v", i, err)
		}
	}

	s := g.s
	return writeIndex(s, func(x *index) (*headersv1.SubmitHeadersResponse, error) {
		resp := &headersv1.SubmitHeadersResponse{}
		staged := make(map[chainhash.Hash]*node)
		lookup := func(h chainhash.Hash) *node {
			if n, ok := x.nodes[h]; ok {
				return n
			}
			return staged[h]
		}
		var fresh, results []*node
		reject := func(err error) {
			kind, _ := rules.KindOf(err)
			var re *rules.RuleError
			if errors.As(err, &re) {
				resp.RejectDetail = re.Detail
			} else {
				resp.RejectDetail = err.Error()
			}
			resp.RejectRule = string(kind)
			s.metrics.rejected.WithLabelValues(resp.RejectRule).Inc()
		}
		seq := x.nextSeq
		for i := range hdrs {
			hdr := hdrs[i]
			hash := hdr.BlockHash()
			if n := lookup(hash); n != nil {
				if n.status == statusInvalid {
					reject(rules.New(rules.DuplicateInvalid, "block %s is known invalid (%s)", hash, n.reason))
					break
				}
				results = append(results, n)
				continue
			}
			parent := lookup(hdr.PrevBlock)
			if parent == nil {
				resp.Orphan = true
				resp.RejectDetail = "previous block " + hdr.PrevBlock.String() + " is unknown"
				break
			}
			if parent.status == statusInvalid {
				reject(rules.New(rules.BadPrevBlock, "previous block %s is invalid (%s)", parent.hash, parent.reason))
				break
			}
			if err := blockchain.CheckBlockHeaderSanity(&hdr, x.params.PowLimit, s.timeSource, blockchain.BFNone); err != nil {
				reject(rules.FromBtcd(err))
				break
			}
			if err := blockchain.CheckBlockHeaderContext(&hdr, parent, blockchain.BFNone, x, true); err != nil {
				reject(rules.FromBtcd(err))
				break
			}
			if !x.VerifyCheckpoint(parent.height+1, &hash) {
				reject(rules.New("checkpoint-mismatch", "block at height %d does not match the checkpoint", parent.height+1))
				break
			}
			n := newNode(hdr, append([]byte(nil), req.Headers[i]...), parent, statusHeaderValid, seq)
			seq++
			staged[hash] = n
			fresh = append(fresh, n)
			results = append(results, n)
		}

		// Persist in chunks, linking each chunk into memory once it is stored.
		// A single header (a block's own, or a new block's announcement) is
		// linked at once and written with the next write (see deferredWrites).
		bestMoved := false
		added := fresh
		if len(fresh) == 1 {
			if x.add(fresh[0]) {
				bestMoved = true
			}
			s.deferNodes(fresh[0])
			s.metrics.accepted.Inc()
			fresh = fresh[:0:0]
		}
		for start := 0; start < len(fresh); start += commitChunk {
			chunk := fresh[start:min(start+commitChunk, len(fresh))]
			if err := s.persist(chunk, nil); err != nil {
				s.log.Error("store headers failed", "err", err)
				if bestMoved {
					s.publishHeaderTip()
					s.updateGauges()
				}
				return nil, status.Errorf(codes.Internal, "store headers: %v", err)
			}
			for _, n := range chunk {
				if x.add(n) {
					bestMoved = true
				}
			}
			s.metrics.accepted.Add(float64(len(chunk)))
		}
		if len(added) > 0 {
			last := added[len(added)-1]
			s.log.Debug("headers accepted", "count", len(added), "height", last.height, "hash", last.hash.String())
		}
		if bestMoved {
			s.publishHeaderTip()
			s.updateGauges()
		}
		resp.Accepted = int32(len(results))
		for _, n := range results {
			resp.Results = append(resp.Results, x.info(n))
		}
		return resp, nil
	})
}

// GetHeader looks a block up by hash or by active-chain height.
func (g *grpcServer) GetHeader(_ context.Context, req *headersv1.GetHeaderRequest) (*headersv1.GetHeaderResponse, error) {
	return readIndex(g.s, func(x *index) (*headersv1.GetHeaderResponse, error) {
		if len(req.Hash) > 0 {
			h, err := parseHash(req.Hash, "hash")
			if err != nil {
				return nil, err
			}
			n, ok := x.nodes[h]
			if !ok {
				return nil, notFound(h)
			}
			return &headersv1.GetHeaderResponse{Info: x.info(n)}, nil
		}
		if req.Height < 0 {
			return nil, rules.InvalidArgument("height must be >= 0, got %d", req.Height)
		}
		if int(req.Height) >= len(x.active) {
			return nil, status.Errorf(codes.NotFound, "no block at height %d (tip is %d)", req.Height, x.tip().height)
		}
		return &headersv1.GetHeaderResponse{Info: x.info(x.active[req.Height])}, nil
	})
}

// GetHeadersByHeight returns active-chain blocks at the requested heights.
func (g *grpcServer) GetHeadersByHeight(_ context.Context, req *headersv1.GetHeadersByHeightRequest) (*headersv1.GetHeadersByHeightResponse, error) {
	return readIndex(g.s, func(x *index) (*headersv1.GetHeadersByHeightResponse, error) {
		resp := &headersv1.GetHeadersByHeightResponse{}
		for _, h := range req.Heights {
			if h < 0 {
				return nil, rules.InvalidArgument("height must be >= 0, got %d", h)
			}
			if int(h) >= len(x.active) {
				return nil, status.Errorf(codes.NotFound, "no block at height %d (tip is %d)", h, x.tip().height)
			}
			resp.Infos = append(resp.Infos, x.info(x.active[h]))
		}
		return resp, nil
	})
}

// LocateHeaders answers a getheaders on the active chain.
func (g *grpcServer) LocateHeaders(_ context.Context, req *headersv1.LocateHeadersRequest) (*headersv1.LocateHeadersResponse, error) {
	locator := make([]chainhash.Hash, len(req.Locator))
	for i, b := range req.Locator {
		h, err := parseHash(b, "locator hash")
		if err != nil {
			return nil, err
		}
		locator[i] = h
	}
	var stop *chainhash.Hash
	if len(req.Stop) > 0 {
		h, err := parseHash(req.Stop, "stop")
		if err != nil {
			return nil, err
		}
		stop = &h
	}
	maxHeaders := int(req.MaxHeaders)
	if maxHeaders <= 0 {
		maxHeaders = defaultMaxLocate
	}

	return readIndex(g.s, func(x *index) (*headersv1.LocateHeadersResponse, error) {
		resp := &headersv1.LocateHeadersResponse{}
		// As Core: no locator asks for exactly the stop block.
		if len(locator) == 0 {
			if stop == nil {
				return resp, nil
			}
			n, ok := x.nodes[*stop]
			if !ok {
				return resp, nil
			}
			resp.Headers = [][]byte{append([]byte(nil), n.raw...)}
			resp.StartHeight = n.height
			return resp, nil
		}
		start := x.active[0]
		for _, h := range locator {
			if n, ok := x.nodes[h]; ok && x.onActive(n) {
				start = n
				break
			}
		}
		resp.StartHeight = start.height + 1
		for h := start.height + 1; int(h) < len(x.active) && len(resp.Headers) < maxHeaders; h++ {
			n := x.active[h]
			resp.Headers = append(resp.Headers, append([]byte(nil), n.raw...))
			if stop != nil && n.hash == *stop {
				break
			}
		}
		return resp, nil
	})
}

// GetBlockLocator builds a locator from the active tip or the best header.
func (g *grpcServer) GetBlockLocator(_ context.Context, req *headersv1.GetBlockLocatorRequest) (*headersv1.GetBlockLocatorResponse, error) {
	return readIndex(g.s, func(x *index) (*headersv1.GetBlockLocatorResponse, error) {
		from := x.tip()
		if req.FromBestHeader {
			from = x.best
		}
		resp := &headersv1.GetBlockLocatorResponse{}
		for _, n := range x.locator(from) {
			resp.Locator = append(resp.Locator, append([]byte(nil), n.hash[:]...))
		}
		return resp, nil
	})
}

// GetChainInfo summarises the chain state.
func (g *grpcServer) GetChainInfo(_ context.Context, _ *headersv1.GetChainInfoRequest) (*headersv1.GetChainInfoResponse, error) {
	s := g.s
	return readIndex(s, func(x *index) (*headersv1.GetChainInfoResponse, error) {
		tip := x.tip()
		target := blockchain.CompactToBig(tip.header.Bits)
		difficulty := 0.0
		if target.Sign() > 0 {
			// Relative to the target of the network's minimum-difficulty bits,
			// so that a minimum-difficulty block reports exactly 1.
			limit := blockchain.CompactToBig(x.params.PowLimitBits)
			difficulty, _ = new(big.Float).Quo(new(big.Float).SetInt(limit), new(big.Float).SetInt(target)).Float64()
		}
		progress := float64(tip.height) / float64(max(x.best.height, 1))
		if progress > 1 {
			progress = 1
		}
		return &headersv1.GetChainInfoResponse{
			Network:              s.network.Name,
			Tip:                  x.info(tip),
			BestHeader:           x.info(x.best),
			Difficulty:           difficulty,
			InitialBlockDownload: time.Since(tip.header.Timestamp) > ibdMaxAge,
			VerificationProgress: progress,
		}, nil
	})
}

// GetChainTips lists every tip of the block tree, active first.
func (g *grpcServer) GetChainTips(_ context.Context, _ *headersv1.GetChainTipsRequest) (*headersv1.GetChainTipsResponse, error) {
	return readIndex(g.s, func(x *index) (*headersv1.GetChainTipsResponse, error) {
		tips := make([]*node, 0, len(x.leaves)+1)
		for n := range x.leaves {
			tips = append(tips, n)
		}
		if _, ok := x.leaves[x.tip()]; !ok {
			tips = append(tips, x.tip())
		}
		slices.SortFunc(tips, func(a, b *node) int { return tipLess(x, a, b) })
		resp := &headersv1.GetChainTipsResponse{}
		for _, t := range tips {
			ct := &headersv1.ChainTip{Height: t.height, Hash: append([]byte(nil), t.hash[:]...)}
			if t == x.tip() {
				ct.Status = "active"
				resp.Tips = append(resp.Tips, ct)
				continue
			}
			b := x.branchTo(t)
			ct.BranchLen = t.height - b.fork.height
			switch {
			case t.status == statusInvalid:
				ct.Status = "invalid"
			case !branchHasData(b, t):
				ct.Status = "headers-only"
			case t.status == statusValid:
				ct.Status = "valid-fork"
			default:
				ct.Status = "valid-headers"
			}
			resp.Tips = append(resp.Tips, ct)
		}
		return resp, nil
	})
}

// branchHasData reports whether every block from the fork to t is stored.
func branchHasData(b branch, t *node) bool {
	for h := b.fork.height + 1; h <= t.height; h++ {
		if !connectable(b.at(h)) {
			return false
		}
	}
	return true
}

// SetBlockStatus records stored data, full validity or invalidity.
func (g *grpcServer) SetBlockStatus(_ context.Context, req *headersv1.SetBlockStatusRequest) (*headersv1.SetBlockStatusResponse, error) {
	h, err := parseHash(req.Hash, "hash")
	if err != nil {
		return nil, err
	}
	switch req.Status {
	case statusHaveData, statusValid, statusInvalid:
	default:
		return nil, rules.InvalidArgument("status must be HAVE_DATA, VALID or INVALID, got %s", req.Status)
	}
	more := make([]chainhash.Hash, len(req.MoreHashes))
	if len(more) > 0 && req.Status != statusHaveData {
		return nil, rules.InvalidArgument("more_hashes is only for HAVE_DATA, got %s", req.Status)
	}
	for i, raw := range req.MoreHashes {
		if more[i], err = parseHash(raw, fmt.Sprintf("more_hashes[%d]", i)); err != nil {
			return nil, err
		}
	}

	s := g.s
	return writeIndex(s, func(x *index) (*headersv1.SetBlockStatusResponse, error) {
		n, ok := x.nodes[h]
		if !ok {
			return nil, notFound(h)
		}
		type change struct {
			n      *node
			status headersv1.BlockStatus
			reason string
		}
		var changes []change
		switch req.Status {
		case statusHaveData:
			if n.status == statusHeaderValid {
				changes = append(changes, change{n, statusHaveData, ""})
			}
			for _, mh := range more {
				m, ok := x.nodes[mh]
				if !ok {
					return nil, notFound(mh)
				}
				if m.status == statusHeaderValid {
					changes = append(changes, change{m, statusHaveData, ""})
				}
			}
		case statusValid:
			if n.status == statusInvalid {
				return nil, status.Errorf(codes.FailedPrecondition, "block %s is marked invalid (%s)", h, n.reason)
			}
			if n.status != statusValid {
				changes = append(changes, change{n, statusValid, ""})
			}
		case statusInvalid:
			reason := req.Reason
			if reason == "" {
				reason = "invalid"
			}
			if n.status != statusInvalid || n.reason != reason {
				changes = append(changes, change{n, statusInvalid, reason})
			}
			for _, d := range descendants(n) {
				if d.status != statusInvalid {
					changes = append(changes, change{d, statusInvalid, string(rules.BadPrevBlock)})
				}
			}
			if x.onActive(n) {
				s.log.Warn("block on the active chain marked invalid", "height", n.height, "hash", h.String())
			}
		}
		if len(changes) == 0 {
			return &headersv1.SetBlockStatusResponse{Info: x.info(n)}, nil
		}

		// Write copies first so that memory changes only once disk has them.
		copies := make([]*node, len(changes))
		for i, c := range changes {
			cp := *c.n
			cp.status, cp.reason = c.status, c.reason
			copies[i] = &cp
		}
		if err := s.persist(copies, nil); err != nil {
			s.log.Error("store block status failed", "hash", h.String(), "err", err)
			return nil, status.Errorf(codes.Internal, "store block status: %v", err)
		}
		for _, c := range changes {
			c.n.status, c.n.reason = c.status, c.reason
			x.noteData(c.n)
		}
		if req.Status == statusHaveData {
			s.log.Info("block status set", "height", n.height, "hash", h.String(),
				"status", req.Status.String(), "blocks", len(changes))
		} else {
			s.log.Info("block status set", "height", n.height, "hash", h.String(),
				"status", req.Status.String(), "reason", n.reason, "descendants_invalidated", len(changes)-1)
		}
		if req.Status == statusInvalid && x.recomputeBest() {
			s.publishHeaderTip()
			s.updateGauges()
		}
		return &headersv1.SetBlockStatusResponse{Info: x.info(n)}, nil
	})
}

// connectPlan finds the most-work block whose branch from the active chain
// is entirely stored and not invalid, if it beats the tip: more work, or
// equal work with data stored earlier (betterCandidate).
func (x *index) connectPlan() (cand *node, b branch) {
	tip := x.tip()
	for leaf := range x.leaves {
		if leaf.work.Cmp(tip.work) < 0 {
			continue
		}
		lb := x.branchTo(leaf)
		var last *node
		for h := lb.fork.height + 1; h <= leaf.height; h++ {
			n := lb.at(h)
			if !connectable(n) {
				break
			}
			last = n
		}
		if last == nil || last == tip || !betterCandidate(last, tip) {
			continue
		}
		if cand == nil || betterCandidate(last, cand) {
			cand, b = last, lb
		}
	}
	return cand, b
}

// GetConnectPlan says how to move the active chain to the best candidate.
func (g *grpcServer) GetConnectPlan(_ context.Context, req *headersv1.GetConnectPlanRequest) (*headersv1.GetConnectPlanResponse, error) {
	if req.MaxConnect < 0 {
		return nil, rules.InvalidArgument("max_connect must be >= 0, got %d", req.MaxConnect)
	}
	return readIndex(g.s, func(x *index) (*headersv1.GetConnectPlanResponse, error) {
		cand, b := x.connectPlan()
		if cand == nil {
			return &headersv1.GetConnectPlanResponse{Target: x.info(x.tip())}, nil
		}
		resp := &headersv1.GetConnectPlanResponse{Target: x.info(cand)}
		for h := x.tip().height; h > b.fork.height; h-- {
			resp.ToDisconnect = append(resp.ToDisconnect, x.info(x.active[h]))
		}
		for h := b.fork.height + 1; h <= cand.height; h++ {
			if req.MaxConnect > 0 && len(resp.ToConnect) >= int(req.MaxConnect) {
				break
			}
			resp.ToConnect = append(resp.ToConnect, x.info(b.at(h)))
		}
		return resp, nil
	})
}

// SetActiveTip moves the active chain to a stored block and announces it.
func (g *grpcServer) SetActiveTip(_ context.Context, req *headersv1.SetActiveTipRequest) (*headersv1.SetActiveTipResponse, error) {
	h, err := parseHash(req.Hash, "hash")
	if err != nil {
		return nil, err
	}
	s := g.s
	return writeIndex(s, func(x *index) (*headersv1.SetActiveTipResponse, error) {
		n, ok := x.nodes[h]
		if !ok {
			return nil, notFound(h)
		}
		if n.parent != nil && !connectable(n) {
			return nil, status.Errorf(codes.FailedPrecondition, "block %s has status %s, want HAVE_DATA or VALID", h, n.status)
		}
		// mark_valid: record full validity with the tip, for it and every
		// block it makes active (the caller connected them all). Both are
		// deferred writes (see deferredWrites): after a crash,
		// blockvalidator's reconcile re-derives them from the UTXO store's
		// tip (a VALID mark lost on an earlier block of the active chain
		// leaves it HAVE_DATA, which every reader treats alike).
		markValid := func(m *node) {
			if req.MarkValid && m.status != statusValid {
				m.status, m.reason = statusValid, ""
				x.noteData(m)
				s.deferNodes(m)
			}
		}
		old := x.tip()
		if n == old {
			markValid(n)
			return &headersv1.SetActiveTipResponse{Tip: x.info(n)}, nil
		}
		b := x.branchTo(n)
		ev := &eventsv1.ChainTip{Hash: append([]byte(nil), h[:]...), Height: n.height}
		for hh := old.height; hh > b.fork.height; hh-- {
			ev.Disconnected = append(ev.Disconnected, append([]byte(nil), x.active[hh].hash[:]...))
		}
		for hh := b.fork.height + 1; hh <= n.height; hh++ {
			ev.Connected = append(ev.Connected, append([]byte(nil), b.at(hh).hash[:]...))
			markValid(b.at(hh))
		}
		x.active = setChain(x.active, n)
		s.deferTip()
		s.updateGauges()
		s.metrics.noteTipChange(len(ev.Disconnected), len(ev.Connected))
		s.log.Info("active tip set", "height", n.height, "hash", h.String(),
			"disconnected", len(ev.Disconnected), "connected", len(ev.Connected))
		s.publish(s.subjects.ChainTip(), ev)
		return &headersv1.SetActiveTipResponse{Tip: x.info(n)}, nil
	})
}

// GetMissingBlocks lists header-only blocks on the best header chain after
// its fork from the active chain.
func (g *grpcServer) GetMissingBlocks(_ context.Context, req *headersv1.GetMissingBlocksRequest) (*headersv1.GetMissingBlocksResponse, error) {
	limit := int(req.MaxBlocks)
	if limit <= 0 {
		limit = defaultMaxMissing
	}
	return readIndex(g.s, func(x *index) (*headersv1.GetMissingBlocksResponse, error) {
		resp := &headersv1.GetMissingBlocksResponse{}
		b := x.branchTo(x.best)
		for h := b.fork.height + 1; h <= x.best.height && len(resp.Blocks) < limit; h++ {
			if n := b.at(h); n.status == statusHeaderValid {
				resp.Blocks = append(resp.Blocks, x.info(n))
			}
		}
		return resp, nil
	})
}
