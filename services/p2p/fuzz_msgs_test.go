package p2p

// Fuzz targets for every wire message decoder the p2p service relies on
// (through btcd's peer package, which decodes each inbound payload with the
// message's BtcDecode). Each target takes a selector byte (protocol version
// and encoding) and an arbitrary payload; it must not panic and, when the
// payload decodes, re-encoding and decoding again must give the same
// message (encoding is a fixed point), framing it must read back the same,
// and our handlers' assumptions about the decoded message must hold.
//
// Seeds live in testdata/fuzz/<FuzzName>/ (plain `go test` runs them);
// run one target with, e.g.:
//
//	go test ./services/p2p -run '^$' -fuzz '^FuzzMsgTx$' -fuzztime 20s
//
// TestWriteFuzzSeeds regenerates the seed corpora (BTCMESH_WRITE_FUZZ_SEEDS=1).

import (
	"bytes"
	"net"
	"strconv"
	"testing"

	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
)

// fuzzVersions are the protocol versions inbound messages are decoded at:
// ours, and older ones btcd's peer negotiates down to (the first byte of
// each fuzz input picks one).
var fuzzVersions = [...]uint32{
	wire.ProtocolVersion, wire.FeeFilterVersion, wire.SendHeadersVersion, wire.RejectVersion,
	wire.BIP0037Version, wire.BIP0031Version, wire.NetAddressTimeVersion, wire.MultipleAddressVersion,
}

// fuzzSel turns a selector byte into a protocol version and an encoding.
func fuzzSel(sel byte) (uint32, wire.MessageEncoding) {
	enc := wire.BaseEncoding
	if sel&0x80 != 0 {
		enc = wire.WitnessEncoding
	}
	return fuzzVersions[int(sel&0x7f)%len(fuzzVersions)], enc
}

// fuzzRoundTrip decodes data as a fresh message from newMsg and, when it
// decodes, checks the round-trip properties. It returns the decoded
// message, or nil when data does not decode.
func fuzzRoundTrip(t *testing.T, newMsg func() wire.Message, sel byte, data []byte) wire.Message {
	t.Helper()
	pver, enc := fuzzSel(sel)
	msg := newMsg()
	// MsgVersion.BtcDecode insists on a *bytes.Buffer, as ReadMessage gives.
	if err := msg.BtcDecode(bytes.NewBuffer(data), pver, enc); err != nil {
		return nil
	}
	var enc1 bytes.Buffer
	if err := msg.BtcEncode(&enc1, pver, enc); err != nil {
		t.Fatalf("%s decoded at pver %d but does not re-encode: %v", msg.Command(), pver, err)
	}
	msg2 := newMsg()
	r2 := bytes.NewBuffer(enc1.Bytes())
	if err := msg2.BtcDecode(r2, pver, enc); err != nil {
		t.Fatalf("re-encoded %s does not decode: %v\n%x", msg.Command(), err, enc1.Bytes())
	}
	if r2.Len() != 0 {
		t.Fatalf("re-encoded %s leaves %d bytes undecoded", msg.Command(), r2.Len())
	}
	var enc2 bytes.Buffer
	if err := msg2.BtcEncode(&enc2, pver, enc); err != nil {
		t.Fatalf("second encoding of %s: %v", msg.Command(), err)
	}
	if !bytes.Equal(enc1.Bytes(), enc2.Bytes()) {
		t.Fatalf("%s encoding is not a fixed point:\n%x\n%x", msg.Command(), enc1.Bytes(), enc2.Bytes())
	}

	// Framed as on the wire, within the limits ReadMessage enforces, the
	// message reads back with the same payload.
	if uint32(enc1.Len()) > min(msg.MaxPayloadLength(pver), wire.MaxProtocolMessageLength) {
		return msg
	}
	magic := chaincfg.RegressionNetParams.Net
	var frame bytes.Buffer
	if _, err := wire.WriteMessageWithEncodingN(&frame, msg, pver, magic, enc); err != nil {
		t.Fatalf("frame %s: %v", msg.Command(), err)
	}
	_, got, payload, err := wire.ReadMessageWithEncodingN(bytes.NewReader(frame.Bytes()), pver, magic, enc)
	switch {
	case err == wire.ErrUnknownMessage && msg.Command() == wire.CmdWTxIdRelay:
		// btcd's reader skips wtxidrelay as unknown; sniffConn sees it.
	case err != nil:
		t.Fatalf("read back framed %s: %v", msg.Command(), err)
	case got.Command() != msg.Command() || !bytes.Equal(payload, enc1.Bytes()):
		t.Fatalf("framed %s read back as %s with another payload", msg.Command(), got.Command())
	}
	return msg
}

// fuzzMsg is the common body of the per-message targets: seeds from the
// corpus directory plus an empty payload, then check (may be nil) runs on
// what decodes.
func fuzzMsg[M wire.Message](f *testing.F, newMsg func() M, check func(*testing.T, M, uint32, wire.MessageEncoding)) {
	f.Add(byte(0), []byte{})
	f.Add(byte(0x80), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, sel byte, data []byte) {
		msg := fuzzRoundTrip(t, func() wire.Message { return newMsg() }, sel, data)
		if msg == nil || check == nil {
			return
		}
		pver, enc := fuzzSel(sel)
		check(t, msg.(M), pver, enc)
	})
}

func FuzzMsgVersion(f *testing.F) {
	fuzzMsg(f, func() *wire.MsgVersion { return &wire.MsgVersion{} }, func(t *testing.T, m *wire.MsgVersion, _ uint32, _ wire.MessageEncoding) {
		if len(m.UserAgent) > wire.MaxUserAgentLen {
			t.Fatalf("user agent of %d bytes decoded", len(m.UserAgent))
		}
		// sniffConn rewrites our own version's user agent; a peer's
		// version framed the same way must survive the rewrite.
		var frame bytes.Buffer
		if _, err := wire.WriteMessageN(&frame, m, wire.ProtocolVersion, chaincfg.RegressionNetParams.Net); err != nil {
			return
		}
		out := rewriteUserAgent(frame.Bytes(), chaincfg.RegressionNetParams.Net, "/btcmesh:fuzz/")
		checkRewritten(t, frame.Bytes(), out, "/btcmesh:fuzz/")
	})
}

func FuzzMsgVerAck(f *testing.F) {
	fuzzMsg[*wire.MsgVerAck](f, wire.NewMsgVerAck, nil)
}

func FuzzMsgSendAddrV2(f *testing.F) {
	fuzzMsg[*wire.MsgSendAddrV2](f, wire.NewMsgSendAddrV2, nil)
}

func FuzzMsgWTxIdRelay(f *testing.F) {
	fuzzMsg[*wire.MsgWTxIdRelay](f, wire.NewMsgWTxIdRelay, nil)
}

func FuzzMsgSendHeaders(f *testing.F) {
	fuzzMsg[*wire.MsgSendHeaders](f, wire.NewMsgSendHeaders, nil)
}

func FuzzMsgPing(f *testing.F) {
	fuzzMsg(f, func() *wire.MsgPing { return &wire.MsgPing{} }, nil)
}

func FuzzMsgPong(f *testing.F) {
	fuzzMsg(f, func() *wire.MsgPong { return &wire.MsgPong{} }, nil)
}

func FuzzMsgFeeFilter(f *testing.F) {
	fuzzMsg(f, func() *wire.MsgFeeFilter { return &wire.MsgFeeFilter{} }, nil)
}

func FuzzMsgReject(f *testing.F) {
	fuzzMsg(f, func() *wire.MsgReject { return &wire.MsgReject{} }, nil)
}

func FuzzMsgHeaders(f *testing.F) {
	fuzzMsg(f, func() *wire.MsgHeaders { return &wire.MsgHeaders{} }, func(t *testing.T, m *wire.MsgHeaders, _ uint32, _ wire.MessageEncoding) {
		if len(m.Headers) > wire.MaxBlockHeadersPerMsg {
			t.Fatalf("%d headers decoded", len(m.Headers))
		}
		// onHeaders sends each header as 80 bytes to the headers service,
		// which refuses any other length.
		for _, h := range m.Headers {
			var buf bytes.Buffer
			if err := h.Serialize(&buf); err != nil || buf.Len() != wire.MaxBlockHeaderPayload {
				t.Fatalf("header serializes to %d bytes: %v", buf.Len(), err)
			}
		}
	})
}

// checkInvList is what onInv, onGetData and onNotFound assume.
func checkInvList(t *testing.T, list []*wire.InvVect) {
	t.Helper()
	if len(list) > wire.MaxInvPerMsg {
		t.Fatalf("%d inventory vectors decoded", len(list))
	}
	for i, iv := range list {
		if iv == nil {
			t.Fatalf("nil inventory vector %d", i)
		}
	}
}

func FuzzMsgInv(f *testing.F) {
	fuzzMsg(f, func() *wire.MsgInv { return &wire.MsgInv{} }, func(t *testing.T, m *wire.MsgInv, _ uint32, _ wire.MessageEncoding) {
		checkInvList(t, m.InvList)
	})
}

func FuzzMsgGetData(f *testing.F) {
	fuzzMsg(f, func() *wire.MsgGetData { return &wire.MsgGetData{} }, func(t *testing.T, m *wire.MsgGetData, _ uint32, _ wire.MessageEncoding) {
		checkInvList(t, m.InvList)
	})
}

func FuzzMsgNotFound(f *testing.F) {
	fuzzMsg(f, func() *wire.MsgNotFound { return &wire.MsgNotFound{} }, func(t *testing.T, m *wire.MsgNotFound, _ uint32, _ wire.MessageEncoding) {
		checkInvList(t, m.InvList)
	})
}

// checkLocator is what locate assumes of a getheaders/getblocks locator.
func checkLocator(t *testing.T, loc []*chainhash.Hash) {
	t.Helper()
	if len(loc) > wire.MaxBlockLocatorsPerMsg {
		t.Fatalf("locator of %d hashes decoded", len(loc))
	}
	for i, h := range loc {
		if h == nil {
			t.Fatalf("nil locator hash %d", i)
		}
	}
}

func FuzzMsgGetHeaders(f *testing.F) {
	fuzzMsg(f, func() *wire.MsgGetHeaders { return &wire.MsgGetHeaders{} }, func(t *testing.T, m *wire.MsgGetHeaders, _ uint32, _ wire.MessageEncoding) {
		checkLocator(t, m.BlockLocatorHashes)
	})
}

func FuzzMsgGetBlocks(f *testing.F) {
	fuzzMsg(f, func() *wire.MsgGetBlocks { return &wire.MsgGetBlocks{} }, func(t *testing.T, m *wire.MsgGetBlocks, _ uint32, _ wire.MessageEncoding) {
		checkLocator(t, m.BlockLocatorHashes)
	})
}

func FuzzMsgTx(f *testing.F) {
	fuzzMsg(f, func() *wire.MsgTx { return &wire.MsgTx{} }, func(t *testing.T, m *wire.MsgTx, pver uint32, enc wire.MessageEncoding) {
		// A transaction without inputs does not survive Serialize and
		// Deserialize (its zero input count reads as the segwit marker):
		// onTx must refuse it (found by this target).
		if len(m.TxIn) == 0 {
			if !hasEmptyVin(m) {
				t.Fatal("hasEmptyVin missed a transaction without inputs")
			}
			return
		}
		// onTx publishes m.Serialize(); the mempool decodes it with
		// Deserialize and must see the same transaction.
		var buf bytes.Buffer
		if err := m.Serialize(&buf); err != nil {
			t.Fatalf("serialize decoded tx: %v", err)
		}
		var back wire.MsgTx
		if err := back.Deserialize(bytes.NewReader(buf.Bytes())); err != nil {
			t.Fatalf("published tx does not deserialize: %v\n%x", err, buf.Bytes())
		}
		if back.TxHash() != m.TxHash() || back.WitnessHash() != m.WitnessHash() {
			t.Fatal("published tx has other hashes")
		}
	})
}

func FuzzMsgBlock(f *testing.F) {
	fuzzMsg(f, func() *wire.MsgBlock { return &wire.MsgBlock{} }, func(t *testing.T, m *wire.MsgBlock, pver uint32, enc wire.MessageEncoding) {
		// onBlock refuses blocks with a transaction without inputs
		// (found by this target: they do not survive Serialize and
		// Deserialize).
		for _, tx := range m.Transactions {
			if len(tx.TxIn) == 0 {
				if !hasEmptyVin(m.Transactions...) {
					t.Fatal("hasEmptyVin missed a transaction without inputs")
				}
				return
			}
		}
		// Otherwise it stores the payload as received from a witness peer,
		// or m.Serialize(); the blockvalidator reads it back with
		// Deserialize and must see the same block.
		var raw bytes.Buffer
		if enc == wire.WitnessEncoding {
			_ = m.BtcEncode(&raw, pver, enc)
		} else if err := m.Serialize(&raw); err != nil {
			t.Fatalf("serialize decoded block: %v", err)
		}
		var back wire.MsgBlock
		if err := back.Deserialize(bytes.NewReader(raw.Bytes())); err != nil {
			t.Fatalf("stored block does not deserialize: %v", err)
		}
		if back.BlockHash() != m.BlockHash() || len(back.Transactions) != len(m.Transactions) {
			t.Fatal("stored block differs")
		}
		for i, tx := range m.Transactions {
			if back.Transactions[i].WitnessHash() != tx.WitnessHash() {
				t.Fatalf("stored block's tx %d differs", i)
			}
		}
	})
}

// checkAddr is what onAddr does with each address.
func checkAddr(t *testing.T, na *wire.NetAddress) {
	t.Helper()
	if na == nil {
		t.Fatal("nil address")
	}
	if na.IP != nil {
		a := net.JoinHostPort(na.IP.String(), strconv.Itoa(int(na.Port)))
		if _, _, err := net.SplitHostPort(a); err != nil {
			t.Fatalf("address book entry %q: %v", a, err)
		}
	}
}

func FuzzMsgAddr(f *testing.F) {
	fuzzMsg(f, func() *wire.MsgAddr { return &wire.MsgAddr{} }, func(t *testing.T, m *wire.MsgAddr, _ uint32, _ wire.MessageEncoding) {
		if len(m.AddrList) > wire.MaxAddrPerMsg {
			t.Fatalf("%d addresses decoded", len(m.AddrList))
		}
		for _, na := range m.AddrList {
			checkAddr(t, na)
		}
	})
}

func FuzzMsgAddrV2(f *testing.F) {
	fuzzMsg(f, func() *wire.MsgAddrV2 { return &wire.MsgAddrV2{} }, func(t *testing.T, m *wire.MsgAddrV2, _ uint32, _ wire.MessageEncoding) {
		if len(m.AddrList) > wire.MaxV2AddrPerMsg {
			t.Fatalf("%d addresses decoded", len(m.AddrList))
		}
		for _, na := range m.AddrList {
			if na == nil {
				t.Fatal("nil address")
			}
			_ = na.Addr.String()
		}
	})
}
