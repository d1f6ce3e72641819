package p2p

import (
	"bytes"
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/peer"
	"github.com/btcsuite/btcd/wire/v2"
)

// knownInventorySize bounds how many block and tx hashes are remembered
// per peer as known to it.
const knownInventorySize = 5000

// peerState is what the service keeps about one connection.
type peerState struct {
	p       *peer.Peer
	inbound bool
	// manual is true for --connect, --addnode and addnode connections,
	// which are never banned (as Bitcoin Core does).
	manual bool
	// auto is true for outbound connections made by peer discovery.
	auto bool

	ready      atomic.Bool  // handshake complete, in the peer table
	relayTxs   atomic.Bool  // the peer's version asked for tx relay
	wtxidRelay atomic.Bool  // the peer sent wtxidrelay
	feeFilter  atomic.Int64 // the peer's feefilter, sat/kvB

	mu            sync.Mutex
	score         int32
	syncedHeaders int32
	syncedBlocks  int32
	unconnecting  int
	known         *hashSet

	// inflight blocks requested from this peer; guarded by Service.syncMu.
	inflight map[chainhash.Hash]struct{}
}

func newPeerState(inbound bool) *peerState {
	return &peerState{
		inbound:       inbound,
		syncedHeaders: -1,
		syncedBlocks:  -1,
		known:         newHashSet(knownInventorySize),
		inflight:      make(map[chainhash.Hash]struct{}),
	}
}

// knows reports whether the peer is known to have hash.
func (ps *peerState) knows(h chainhash.Hash) bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.known.has(h)
}

// markKnown records that the peer has hash; it returns false when it
// was already known.
func (ps *peerState) markKnown(h chainhash.Hash) bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.known.has(h) {
		return false
	}
	ps.known.add(h)
	return true
}

// noteHeight raises the peer's known header (and optionally block) height.
func (ps *peerState) noteHeight(headers, blocks int32) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.syncedHeaders = max(ps.syncedHeaders, headers)
	ps.syncedBlocks = max(ps.syncedBlocks, blocks)
}

// bestHeight is the highest block the peer is believed to have.
func (ps *peerState) bestHeight() int32 {
	ps.mu.Lock()
	h := ps.syncedHeaders
	ps.mu.Unlock()
	return max(h, ps.p.LastBlock(), ps.p.StartingHeight())
}

func (ps *peerState) id() int32 { return ps.p.ID() }

func (ps *peerState) direction() string {
	if ps.inbound {
		return "inbound"
	}
	return "outbound"
}

// hashSet is a bounded set of hashes forgetting the oldest first.
// It is not safe for concurrent use.
type hashSet struct {
	m    map[chainhash.Hash]struct{}
	ring []chainhash.Hash
	next int
}

func newHashSet(n int) *hashSet {
	return &hashSet{m: make(map[chainhash.Hash]struct{}, n), ring: make([]chainhash.Hash, 0, n)}
}

func (s *hashSet) has(h chainhash.Hash) bool {
	_, ok := s.m[h]
	return ok
}

func (s *hashSet) add(h chainhash.Hash) {
	if _, ok := s.m[h]; ok {
		return
	}
	if len(s.ring) < cap(s.ring) {
		s.ring = append(s.ring, h)
	} else {
		delete(s.m, s.ring[s.next])
		s.ring[s.next] = h
		s.next = (s.next + 1) % len(s.ring)
	}
	s.m[h] = struct{}{}
}

// sniffConn watches the v1 message framing of what is read from a peer,
// to see commands btcd's wire package does not decode (wtxidrelay, which
// it skips as unknown). It never alters the bytes.
type sniffConn struct {
	net.Conn
	magic     wire.BitcoinNet
	onCommand func(cmd string)

	hdr  [24]byte
	hdrN int
	skip uint64
	dead bool

	// userAgent replaces the user agent of the version message we write
	// (btcd's wire package always prefixes its own "/btcwire:x/").
	userAgent string
	wbuf      []byte
	wDone     bool
}

// Write passes bytes through, except that it holds back the first
// message until complete and, when it is our version message, rewrites
// its user agent.
func (c *sniffConn) Write(b []byte) (int, error) {
	if c.wDone || c.userAgent == "" {
		return c.Conn.Write(b)
	}
	c.wbuf = append(c.wbuf, b...)
	if len(c.wbuf) < 24 {
		return len(b), nil
	}
	if cmdOf(c.wbuf[4:16]) != wire.CmdVersion {
		c.wDone = true
		_, err := c.Conn.Write(c.wbuf)
		c.wbuf = nil
		return len(b), err
	}
	if uint64(len(c.wbuf)) < 24+uint64(binary.LittleEndian.Uint32(c.wbuf[16:20])) {
		return len(b), nil
	}
	c.wDone = true
	out := rewriteUserAgent(c.wbuf, c.magic, c.userAgent)
	c.wbuf = nil
	_, err := c.Conn.Write(out)
	return len(b), err
}

// rewriteUserAgent re-encodes a framed version message with another user
// agent; on any decoding problem it returns the frame unchanged.
func rewriteUserAgent(frame []byte, magic wire.BitcoinNet, ua string) []byte {
	var msg wire.MsgVersion
	if err := msg.BtcDecode(bytes.NewBuffer(frame[24:]), wire.ProtocolVersion, wire.BaseEncoding); err != nil {
		return frame
	}
	msg.UserAgent = ua
	var buf bytes.Buffer
	if _, err := wire.WriteMessageN(&buf, &msg, wire.ProtocolVersion, magic); err != nil {
		return frame
	}
	return buf.Bytes()
}

// cmdOf decodes a NUL-padded command field.
func cmdOf(b []byte) string {
	end := 0
	for end < len(b) && b[end] != 0 {
		end++
	}
	return string(b[:end])
}

// maxSniffPayload is beyond any valid message: stop sniffing there.
const maxSniffPayload = 32 << 20

func (c *sniffConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && !c.dead {
		c.feed(b[:n])
	}
	return n, err
}

func (c *sniffConn) feed(b []byte) {
	for len(b) > 0 && !c.dead {
		if c.skip > 0 {
			k := min(c.skip, uint64(len(b)))
			c.skip -= k
			b = b[k:]
			continue
		}
		k := copy(c.hdr[c.hdrN:], b)
		c.hdrN += k
		b = b[k:]
		if c.hdrN < len(c.hdr) {
			return
		}
		c.hdrN = 0
		if wire.BitcoinNet(binary.LittleEndian.Uint32(c.hdr[0:4])) != c.magic {
			c.dead = true
			return
		}
		length := binary.LittleEndian.Uint32(c.hdr[16:20])
		if length > maxSniffPayload {
			c.dead = true
			return
		}
		if c.onCommand != nil {
			c.onCommand(cmdOf(c.hdr[4:16]))
		}
		c.skip = uint64(length)
	}
}

// blockReq is one block asked of a peer.
type blockReq struct {
	peer   *peerState
	height int32
	at     time.Time
}
