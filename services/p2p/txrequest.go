package p2p

import (
	"sync"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
)

// txRequestTimeout is how long a peer has to deliver a transaction we
// asked for before another peer that announced it is asked (Core: 60 s).
const txRequestTimeout = 60 * time.Second

// maxTxAnnouncers bounds the other announcers remembered per transaction.
const maxTxAnnouncers = 8

// txRequests tracks transactions asked of peers, a simplified form of
// Core's TxRequestTracker: a transaction is in flight from one peer at a
// time; when that peer says notfound, disconnects or does not deliver in
// time, the next peer that announced it is asked; once received (or
// abandoned) it is not asked for again for a while.
type txRequests struct {
	mu       sync.Mutex
	inflight map[chainhash.Hash]*txReq
	done     *hashSet
}

// txReq is one transaction being fetched.
type txReq struct {
	peer  *peerState
	typ   wire.InvType
	at    time.Time
	other []*peerState // later announcers, asked in turn
}

func newTxRequests() *txRequests {
	return &txRequests{inflight: make(map[chainhash.Hash]*txReq), done: newHashSet(50000)}
}

// announce records that ps announced h; it returns true when the caller
// should ask ps for it now (no other peer is being asked).
func (r *txRequests) announce(ps *peerState, h chainhash.Hash, typ wire.InvType) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done.has(h) {
		return false
	}
	if req, ok := r.inflight[h]; ok {
		if req.peer != ps && len(req.other) < maxTxAnnouncers && !containsPeer(req.other, ps) {
			req.other = append(req.other, ps)
		}
		return false
	}
	if len(r.inflight) >= 50000 {
		return false // a flood: drop rather than grow without bound
	}
	r.inflight[h] = &txReq{peer: ps, typ: typ, at: time.Now()}
	return true
}

func containsPeer(list []*peerState, ps *peerState) bool {
	for _, p := range list {
		if p == ps {
			return true
		}
	}
	return false
}

// received marks h delivered (by txid or wtxid).
func (r *txRequests) received(hashes ...chainhash.Hash) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, h := range hashes {
		delete(r.inflight, h)
		r.done.add(h)
	}
}

// failed frees h when ps, the peer asked, will not deliver it (notfound).
// It returns the next peer to ask, if any.
func (r *txRequests) failed(ps *peerState, h chainhash.Hash) (*peerState, wire.InvType) {
	r.mu.Lock()
	defer r.mu.Unlock()
	req, ok := r.inflight[h]
	if !ok || req.peer != ps {
		return nil, 0
	}
	return r.next(h, req)
}

// next moves req to its next announcer (called with mu held).
func (r *txRequests) next(h chainhash.Hash, req *txReq) (*peerState, wire.InvType) {
	for len(req.other) > 0 {
		p := req.other[0]
		req.other = req.other[1:]
		if p.p.Connected() {
			req.peer, req.at = p, time.Now()
			return p, req.typ
		}
	}
	delete(r.inflight, h)
	r.done.add(h) // nobody else has it: give up for now
	return nil, 0
}

// expire reassigns requests that timed out or whose peer is gone; it
// returns the getdata to send to each peer.
func (r *txRequests) expire(now time.Time) map[*peerState][]*wire.InvVect {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out map[*peerState][]*wire.InvVect
	for h, req := range r.inflight {
		if now.Sub(req.at) < txRequestTimeout && req.peer.p.Connected() {
			continue
		}
		if p, typ := r.next(h, req); p != nil {
			if out == nil {
				out = make(map[*peerState][]*wire.InvVect)
			}
			hh := h
			out[p] = append(out[p], wire.NewInvVect(typ, &hh))
		}
	}
	return out
}

// askTx sends getdata for the given inventory to ps.
func askTx(ps *peerState, ivs []*wire.InvVect) {
	for len(ivs) > 0 {
		k := min(len(ivs), wire.MaxInvPerMsg)
		gd := wire.NewMsgGetDataSizeHint(uint(k))
		for _, iv := range ivs[:k] {
			_ = gd.AddInvVect(iv)
		}
		ps.p.QueueMessage(gd, nil)
		ivs = ivs[k:]
	}
}
