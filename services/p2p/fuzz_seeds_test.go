package p2p

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
)

// seedArg is one value of a fuzz corpus entry, already written as the Go
// literal the corpus file format wants.
type seedArg string

func seedBytes(b []byte) seedArg  { return seedArg("[]byte(" + strconv.Quote(string(b)) + ")") }
func seedByte(b byte) seedArg     { return seedArg(fmt.Sprintf("byte('\\x%02x')", b)) }
func seedString(s string) seedArg { return seedArg("string(" + strconv.Quote(s) + ")") }
func seedUint8(v uint8) seedArg   { return seedArg(fmt.Sprintf("uint8(%d)", v)) }

// writeSeed writes testdata/fuzz/<target>/<name>.
func writeSeed(t *testing.T, target, name string, args ...seedArg) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	for _, a := range args {
		b.WriteString(string(a) + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Selector bytes (see fuzzSel): protocol version index, witness bit.
const (
	selOurs         = 0x80 // 70016, witness encoding (what a segwit peer gets)
	selOursBase     = 0x00 // 70016, base encoding
	selOldestAddr   = 0x06 // 31402
	selOldest       = 0x07 // 209
	selBeforeReject = 0x04 // 70001
)

func payloadOf(t *testing.T, m wire.Message, pver uint32, enc wire.MessageEncoding) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := m.BtcEncode(&buf, pver, enc); err != nil {
		t.Fatalf("encode %s: %v", m.Command(), err)
	}
	return buf.Bytes()
}

func frameOf(t *testing.T, m wire.Message, magic wire.BitcoinNet) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := wire.WriteMessageWithEncodingN(&buf, m, wire.ProtocolVersion, magic, wire.WitnessEncoding); err != nil {
		t.Fatalf("frame %s: %v", m.Command(), err)
	}
	return buf.Bytes()
}

// rawFrame frames payload under cmd with a correct checksum.
func rawFrame(magic wire.BitcoinNet, cmd string, payload []byte) []byte {
	h := make([]byte, wire.MessageHeaderSize)
	h[0], h[1], h[2], h[3] = byte(magic), byte(magic>>8), byte(magic>>16), byte(magic>>24)
	copy(h[4:16], cmd)
	n := len(payload)
	h[16], h[17], h[18], h[19] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
	copy(h[20:24], chainhash.DoubleHashB(payload)[:4])
	return append(h, payload...)
}

// realBlock reads the mainnet segwit block shipped in btcd's wire module.
func realBlock(t *testing.T) *wire.MsgBlock {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/btcsuite/btcd/wire/v2").Output()
	if err != nil {
		t.Fatalf("locate wire module: %v", err)
	}
	path := filepath.Join(strings.TrimSpace(string(out)), "testdata",
		"block-0000000000000000001602407ac49862a7bca9d00f7f402db20b7be2f5de59d2.blk")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var b wire.MsgBlock
	if err := b.Deserialize(bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	return &b
}

func ourVersion(relay bool, ua string) *wire.MsgVersion {
	me := wire.NewNetAddressIPPort(net.ParseIP("127.0.0.1"), 18444, ourServices)
	you := wire.NewNetAddressIPPort(net.ParseIP("127.0.0.1"), 51234, wire.SFNodeNetwork)
	v := wire.NewMsgVersion(me, you, 0x0123456789abcdef, 101)
	v.Services = ourServices
	v.Timestamp = time.Unix(1700000000, 0)
	v.UserAgent = ua
	v.DisableRelayTx = !relay
	return v
}

// TestWriteFuzzSeeds regenerates the committed seed corpora under
// testdata/fuzz. Run it with BTCMESH_WRITE_FUZZ_SEEDS=1 after changing it.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("BTCMESH_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set BTCMESH_WRITE_FUZZ_SEEDS=1 to regenerate testdata/fuzz")
	}
	regtest := chaincfg.RegressionNetParams.Net
	genesis := chaincfg.RegressionNetParams.GenesisBlock
	mainGenesis := chaincfg.MainNetParams.GenesisBlock
	realBlk := realBlock(t)
	var segwitTx, legacyTx *wire.MsgTx
	for _, tx := range realBlk.Transactions[1:] {
		if tx.HasWitness() && segwitTx == nil && tx.SerializeSize() < 1000 {
			segwitTx = tx
		}
		if !tx.HasWitness() && legacyTx == nil && tx.SerializeSize() < 1000 {
			legacyTx = tx
		}
	}
	if segwitTx == nil || legacyTx == nil {
		t.Fatal("no small segwit and legacy txs in the real block")
	}
	small := &wire.MsgBlock{Header: realBlk.Header}
	small.AddTransaction(realBlk.Transactions[0])
	small.AddTransaction(segwitTx)
	small.AddTransaction(legacyTx)

	hugeCount := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}
	over := func(n uint64) []byte {
		var b bytes.Buffer
		_ = wire.WriteVarInt(&b, 0, n)
		return b.Bytes()
	}
	seed := func(target, name string, sel byte, payload []byte) {
		writeSeed(t, target, name, seedByte(sel), seedBytes(payload))
	}
	trunc := func(b []byte) []byte { return b[:len(b)/2] }

	// version
	core := ourVersion(true, "/Satoshi:27.0.0/")
	seed("FuzzMsgVersion", "core-70016-relay", selOurs, payloadOf(t, core, wire.ProtocolVersion, wire.BaseEncoding))
	noRelay := ourVersion(false, "/btcd:0.25.0/")
	seed("FuzzMsgVersion", "btcd-norelay", selOursBase, payloadOf(t, noRelay, wire.ProtocolVersion, wire.BaseEncoding))
	old := payloadOf(t, core, wire.ProtocolVersion, wire.BaseEncoding)
	seed("FuzzMsgVersion", "no-relay-byte", selOurs, old[:len(old)-1])
	seed("FuzzMsgVersion", "oldest-fields-only", selOldest, old[:4+8+8+26])
	maxUA := ourVersion(true, "/"+strings.Repeat("a", wire.MaxUserAgentLen-2)+"/")
	seed("FuzzMsgVersion", "max-user-agent", selOurs, payloadOf(t, maxUA, wire.ProtocolVersion, wire.BaseEncoding))
	longUA := payloadOf(t, ourVersion(true, "/x/"), wire.ProtocolVersion, wire.BaseEncoding)
	i := bytes.Index(longUA, []byte("/x/"))
	long := append(append(append([]byte(nil), longUA[:i-1]...), over(wire.MaxUserAgentLen+1)...), bytes.Repeat([]byte{'u'}, wire.MaxUserAgentLen+1)...)
	seed("FuzzMsgVersion", "user-agent-too-long", selOurs, append(long, longUA[i+3:]...))
	seed("FuzzMsgVersion", "truncated", selOurs, trunc(old))

	// Empty-payload messages.
	for _, c := range []struct {
		target string
		m      wire.Message
	}{
		{"FuzzMsgVerAck", wire.NewMsgVerAck()},
		{"FuzzMsgSendHeaders", wire.NewMsgSendHeaders()},
		{"FuzzMsgSendAddrV2", wire.NewMsgSendAddrV2()},
		{"FuzzMsgWTxIdRelay", wire.NewMsgWTxIdRelay()},
	} {
		seed(c.target, "empty", selOurs, nil)
		seed(c.target, "stray-byte", selOurs, []byte{0})
		seed(c.target, "old-version", selBeforeReject, nil)
	}

	// ping, pong, feefilter
	seed("FuzzMsgPing", "nonce", selOurs, payloadOf(t, wire.NewMsgPing(0xfeedfacecafebeef), wire.ProtocolVersion, wire.BaseEncoding))
	seed("FuzzMsgPing", "pre-bip31-no-nonce", 0x05, nil)
	seed("FuzzMsgPing", "short-nonce", selOurs, []byte{1, 2, 3})
	seed("FuzzMsgPong", "nonce", selOurs, payloadOf(t, wire.NewMsgPong(0xfeedfacecafebeef), wire.ProtocolVersion, wire.BaseEncoding))
	seed("FuzzMsgPong", "short-nonce", selOurs, []byte{1, 2, 3})
	seed("FuzzMsgFeeFilter", "1000-sat-kvb", selOurs, payloadOf(t, wire.NewMsgFeeFilter(1000), wire.ProtocolVersion, wire.BaseEncoding))
	seed("FuzzMsgFeeFilter", "negative", selOurs, payloadOf(t, wire.NewMsgFeeFilter(-1), wire.ProtocolVersion, wire.BaseEncoding))
	seed("FuzzMsgFeeFilter", "max", selOurs, payloadOf(t, wire.NewMsgFeeFilter(1<<63-1), wire.ProtocolVersion, wire.BaseEncoding))
	seed("FuzzMsgFeeFilter", "before-bip133", 0x03, payloadOf(t, wire.NewMsgFeeFilter(1000), wire.ProtocolVersion, wire.BaseEncoding))

	// reject
	gh := genesis.BlockHash()
	rb := wire.NewMsgReject(wire.CmdBlock, wire.RejectInvalid, "high-hash")
	rb.Hash = gh
	seed("FuzzMsgReject", "block", selOurs, payloadOf(t, rb, wire.ProtocolVersion, wire.BaseEncoding))
	rt := wire.NewMsgReject(wire.CmdTx, wire.RejectInsufficientFee, "min relay fee not met")
	rt.Hash = genesis.Transactions[0].TxHash()
	seed("FuzzMsgReject", "tx", selOurs, payloadOf(t, rt, wire.ProtocolVersion, wire.BaseEncoding))
	rv := wire.NewMsgReject(wire.CmdVersion, wire.RejectDuplicate, "duplicate version message")
	seed("FuzzMsgReject", "version-no-hash", selOurs, payloadOf(t, rv, wire.ProtocolVersion, wire.BaseEncoding))
	seed("FuzzMsgReject", "bad-utf8", selOurs, append(append([]byte{2, 't', 'x', 0x10, 3}, 0xff, 0xfe, 0xfd), make([]byte, 32)...))
	seed("FuzzMsgReject", "block-missing-hash", selOurs, trunc(payloadOf(t, rb, wire.ProtocolVersion, wire.BaseEncoding)))

	// headers
	hs := wire.NewMsgHeaders()
	h1 := genesis.Header
	h1.PrevBlock, h1.Nonce = gh, 2
	h2 := h1
	h2.PrevBlock, h2.Nonce = h1.BlockHash(), 3
	_ = hs.AddBlockHeader(&h1)
	_ = hs.AddBlockHeader(&h2)
	hp := payloadOf(t, hs, wire.ProtocolVersion, wire.BaseEncoding)
	seed("FuzzMsgHeaders", "two-regtest", selOurs, hp)
	seed("FuzzMsgHeaders", "mainnet-real", selOurs, payloadOf(t, &wire.MsgHeaders{Headers: []*wire.BlockHeader{&realBlk.Header}}, wire.ProtocolVersion, wire.BaseEncoding))
	seed("FuzzMsgHeaders", "empty", selOurs, []byte{0})
	withTx := append([]byte(nil), hp[:1+80]...)
	withTx[0] = 1
	seed("FuzzMsgHeaders", "nonzero-tx-count", selOurs, append(withTx, 1))
	seed("FuzzMsgHeaders", "count-over-max", selOurs, over(wire.MaxBlockHeadersPerMsg+1))
	seed("FuzzMsgHeaders", "huge-count", selOurs, hugeCount)
	seed("FuzzMsgHeaders", "truncated", selOurs, trunc(hp))

	// inv, getdata, notfound
	th := genesis.Transactions[0].TxHash()
	mixed := []*wire.InvVect{
		wire.NewInvVect(wire.InvTypeBlock, &gh), wire.NewInvVect(wire.InvTypeWitnessBlock, &gh),
		wire.NewInvVect(wire.InvTypeTx, &th), wire.NewInvVect(wire.InvTypeWitnessTx, &th),
		wire.NewInvVect(invTypeWTx, &th), wire.NewInvVect(wire.InvType(0xdeadbeef), &th),
		wire.NewInvVect(wire.InvTypeFilteredBlock, &gh),
	}
	for _, target := range []string{"FuzzMsgInv", "FuzzMsgGetData", "FuzzMsgNotFound"} {
		var m wire.Message
		switch target {
		case "FuzzMsgInv":
			inv := wire.NewMsgInv()
			for _, iv := range mixed {
				_ = inv.AddInvVect(iv)
			}
			m = inv
		case "FuzzMsgGetData":
			gd := wire.NewMsgGetData()
			for _, iv := range mixed {
				_ = gd.AddInvVect(iv)
			}
			m = gd
		default:
			nf := wire.NewMsgNotFound()
			for _, iv := range mixed {
				_ = nf.AddInvVect(iv)
			}
			m = nf
		}
		p := payloadOf(t, m, wire.ProtocolVersion, wire.BaseEncoding)
		seed(target, "mixed-types", selOurs, p)
		seed(target, "empty", selOurs, []byte{0})
		seed(target, "count-over-max", selOurs, over(wire.MaxInvPerMsg+1))
		seed(target, "huge-count", selOurs, hugeCount)
		seed(target, "truncated", selOurs, trunc(p))
		seed(target, "noncanonical-count", selOurs, append([]byte{0xfd, 1, 0}, p[1:37]...))
	}

	// getheaders, getblocks
	ghm := wire.NewMsgGetHeaders()
	ghm.ProtocolVersion = wire.ProtocolVersion
	_ = ghm.AddBlockLocatorHash(&h2.PrevBlock)
	_ = ghm.AddBlockLocatorHash(&gh)
	gbm := wire.NewMsgGetBlocks(&chainhash.Hash{})
	gbm.ProtocolVersion = wire.ProtocolVersion
	_ = gbm.AddBlockLocatorHash(&gh)
	for target, m := range map[string]wire.Message{"FuzzMsgGetHeaders": ghm, "FuzzMsgGetBlocks": gbm} {
		p := payloadOf(t, m, wire.ProtocolVersion, wire.BaseEncoding)
		seed(target, "locator", selOurs, p)
		stop := append([]byte(nil), p...)
		stop[len(stop)-1] = 0x42
		seed(target, "with-stop", selOurs, stop)
		seed(target, "empty-locator", selOurs, append([]byte{0x80, 0x11, 1, 0, 0}, make([]byte, 32)...))
		seed(target, "locator-over-max", selOurs, append([]byte{0x80, 0x11, 1, 0}, over(wire.MaxBlockLocatorsPerMsg+1)...))
		seed(target, "huge-locator", selOurs, append([]byte{0x80, 0x11, 1, 0}, hugeCount...))
		seed(target, "truncated", selOurs, trunc(p))
	}

	// tx
	txp := func(tx *wire.MsgTx, enc wire.MessageEncoding) []byte {
		return payloadOf(t, tx, wire.ProtocolVersion, enc)
	}
	seed("FuzzMsgTx", "regtest-coinbase", selOurs, txp(genesis.Transactions[0], wire.WitnessEncoding))
	seed("FuzzMsgTx", "mainnet-segwit", selOurs, txp(segwitTx, wire.WitnessEncoding))
	seed("FuzzMsgTx", "mainnet-segwit-base", selOursBase, txp(segwitTx, wire.BaseEncoding))
	seed("FuzzMsgTx", "mainnet-legacy", selOurs, txp(legacyTx, wire.WitnessEncoding))
	seed("FuzzMsgTx", "mainnet-real-coinbase", selOurs, txp(realBlk.Transactions[0], wire.WitnessEncoding))
	seed("FuzzMsgTx", "marker-no-witness", selOurs, []byte{2, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	seed("FuzzMsgTx", "marker-flag-2", selOurs, []byte{2, 0, 0, 0, 0, 2, 1})
	seed("FuzzMsgTx", "huge-input-count", selOurs, append([]byte{1, 0, 0, 0}, hugeCount...))
	seed("FuzzMsgTx", "huge-script", selOurs, append(append([]byte{1, 0, 0, 0, 1}, make([]byte, 36)...), 0xfe, 0xff, 0xff, 0xff, 0x7f))
	seed("FuzzMsgTx", "truncated", selOurs, trunc(txp(segwitTx, wire.WitnessEncoding)))

	// block
	bp := func(b *wire.MsgBlock, enc wire.MessageEncoding) []byte {
		return payloadOf(t, b, wire.ProtocolVersion, enc)
	}
	seed("FuzzMsgBlock", "regtest-genesis", selOurs, bp(genesis, wire.WitnessEncoding))
	seed("FuzzMsgBlock", "mainnet-genesis", selOursBase, bp(mainGenesis, wire.BaseEncoding))
	seed("FuzzMsgBlock", "mainnet-segwit-3tx", selOurs, bp(small, wire.WitnessEncoding))
	seed("FuzzMsgBlock", "mainnet-segwit-3tx-base", selOursBase, bp(small, wire.BaseEncoding))
	seed("FuzzMsgBlock", "no-transactions", selOurs, append(bp(genesis, wire.WitnessEncoding)[:80], 0))
	seed("FuzzMsgBlock", "huge-tx-count", selOurs, append(bp(genesis, wire.WitnessEncoding)[:80], hugeCount...))
	seed("FuzzMsgBlock", "truncated", selOurs, trunc(bp(small, wire.WitnessEncoding)))

	// addr
	addr := wire.NewMsgAddr()
	na4 := wire.NewNetAddressIPPort(net.ParseIP("203.0.113.7"), 8333, wire.SFNodeNetwork|wire.SFNodeWitness)
	na4.Timestamp = time.Unix(1700000000, 0)
	na6 := wire.NewNetAddressIPPort(net.ParseIP("2001:db8::1"), 18444, wire.SFNodeNetwork)
	na6.Timestamp = time.Unix(1700000000, 0)
	_ = addr.AddAddresses(na4, na6)
	ap := payloadOf(t, addr, wire.ProtocolVersion, wire.BaseEncoding)
	seed("FuzzMsgAddr", "ipv4-ipv6", selOurs, ap)
	seed("FuzzMsgAddr", "pre-timestamp", selOldest, payloadOf(t, addr, wire.MultipleAddressVersion, wire.BaseEncoding))
	seed("FuzzMsgAddr", "timestamp-version", selOldestAddr, ap)
	seed("FuzzMsgAddr", "count-over-max", selOurs, over(wire.MaxAddrPerMsg+1))
	seed("FuzzMsgAddr", "truncated", selOurs, trunc(ap))

	// addrv2: BIP155 network ids 1 ipv4, 2 ipv6, 3 torv2, 4 torv3, 5 i2p, 6 cjdns, and an unknown one.
	v2entry := func(netID byte, addr []byte) []byte {
		e := []byte{0x00, 0xf1, 0x53, 0x65} // time, uint32 little endian
		e = append(e, 0x09, netID)          // services (compact size), network id
		e = append(e, byte(len(addr)))      // address length
		e = append(e, addr...)
		return append(e, 0x20, 0x8d) // port 8333, big endian
	}
	var v2 []byte
	v2 = append(v2, 6)
	v2 = append(v2, v2entry(1, []byte{203, 0, 113, 7})...)
	v2 = append(v2, v2entry(2, net.ParseIP("2001:db8::1"))...)
	v2 = append(v2, v2entry(4, bytes.Repeat([]byte{0xab}, 32))...)
	v2 = append(v2, v2entry(5, bytes.Repeat([]byte{0xcd}, 32))...)
	v2 = append(v2, v2entry(6, append([]byte{0xfc}, bytes.Repeat([]byte{1}, 15)...))...)
	v2 = append(v2, v2entry(42, []byte{1, 2, 3})...)
	seed("FuzzMsgAddrV2", "all-networks", selOurs, v2)
	seed("FuzzMsgAddrV2", "torv2", selOurs, append([]byte{1}, v2entry(3, bytes.Repeat([]byte{7}, 10))...))
	seed("FuzzMsgAddrV2", "ipv4-wrong-length", selOurs, append([]byte{1}, v2entry(1, []byte{1, 2, 3, 4, 5})...))
	seed("FuzzMsgAddrV2", "address-too-long", selOurs, append([]byte{1, 0, 0, 0, 0, 1, 42, 0xfd, 0x01, 0x02}, make([]byte, 513)...))
	seed("FuzzMsgAddrV2", "count-over-max", selOurs, over(wire.MaxV2AddrPerMsg+1))
	seed("FuzzMsgAddrV2", "truncated", selOurs, trunc(v2))

	// Framing: streams of frames as a Core peer sends them, and broken ones.
	mainnet := chaincfg.MainNetParams.Net
	handshake := bytes.Join([][]byte{
		frameOf(t, core, regtest), rawFrame(regtest, wire.CmdWTxIdRelay, nil), rawFrame(regtest, wire.CmdSendAddrV2, nil),
		frameOf(t, wire.NewMsgVerAck(), regtest),
	}, nil)
	after := bytes.Join([][]byte{
		frameOf(t, wire.NewMsgSendHeaders(), regtest), frameOf(t, wire.NewMsgPing(7), regtest),
		frameOf(t, wire.NewMsgFeeFilter(1000), regtest), frameOf(t, hs, regtest),
		frameOf(t, &wire.MsgInv{InvList: mixed[:5]}, regtest), frameOf(t, genesis, regtest),
		rawFrame(regtest, "cmpctblock", []byte{1, 2, 3}),
	}, nil)
	badSum := rawFrame(regtest, wire.CmdPing, make([]byte, 8))
	badSum[20] ^= 0xff
	oversized := rawFrame(regtest, wire.CmdBlock, nil)
	oversized[16], oversized[17], oversized[18], oversized[19] = 0xff, 0xff, 0xff, 0xff
	overType := rawFrame(regtest, wire.CmdVerAck, []byte{0})
	streams := map[string][]byte{
		"core-handshake":       handshake,
		"after-handshake":      after,
		"bad-checksum":         append(append([]byte(nil), handshake...), badSum...),
		"wrong-magic":          frameOf(t, wire.NewMsgPing(7), mainnet),
		"oversized-length":     oversized,
		"over-type-max":        overType,
		"unknown-command":      append(rawFrame(regtest, "notacommand", []byte{1, 2}), rawFrame(regtest, wire.CmdVerAck, nil)...),
		"non-utf8-command":     rawFrame(regtest, "\xff\xfe", nil),
		"truncated-header":     frameOf(t, wire.NewMsgVerAck(), regtest)[:13],
		"truncated-payload":    frameOf(t, core, regtest)[:40],
		"trailing-payload":     rawFrame(regtest, wire.CmdPing, make([]byte, 9)),
		"garbage":              bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 16),
		"header-only-max-len":  rawFrame(regtest, wire.CmdTx, nil)[:20],
		"command-no-nul-12":    rawFrame(regtest, "abcdefghijkl", nil),
		"command-nul-then-txt": rawFrame(regtest, "ping\x00x", make([]byte, 8)),
	}
	for name, s := range streams {
		seed("FuzzReadMessage", name, selOurs, s)
		writeSeed(t, "FuzzSniffConnRead", name, seedBytes([]byte{23, 1, 5, 0, 96}), seedBytes(s))
	}

	ourFrame := frameOf(t, ourVersion(true, "/btcwire:0.5.0/btcmesh:0.1.0/"), regtest)
	verack := frameOf(t, wire.NewMsgVerAck(), regtest)
	writeSeed(t, "FuzzSniffConnWrite", "version-then-verack", seedBytes(nil), seedBytes(ourFrame), seedBytes(verack))
	writeSeed(t, "FuzzSniffConnWrite", "version-in-chunks", seedBytes([]byte{23, 0, 50, 96}), seedBytes(ourFrame), seedBytes(verack))
	writeSeed(t, "FuzzSniffConnWrite", "one-write-with-next", seedBytes([]byte{200}), seedBytes(ourFrame), seedBytes(verack))
	writeSeed(t, "FuzzSniffConnWrite", "not-version-first", seedBytes([]byte{10}), seedBytes(verack), seedBytes(ourFrame))
	writeSeed(t, "FuzzSniffConnWrite", "undecodable-version", seedBytes(nil), seedBytes(rawFrame(regtest, wire.CmdVersion, []byte{1, 2, 3})), seedBytes(verack))
	writeSeed(t, "FuzzSniffConnWrite", "short", seedBytes(nil), seedBytes(ourFrame[:10]), seedBytes(nil))

	writeSeed(t, "FuzzRewriteUserAgent", "our-version", seedBytes(ourFrame), seedString("/btcmesh:0.1.0/"))
	writeSeed(t, "FuzzRewriteUserAgent", "max-ua", seedBytes(ourFrame), seedString(strings.Repeat("x", wire.MaxUserAgentLen)))
	writeSeed(t, "FuzzRewriteUserAgent", "too-long-ua", seedBytes(ourFrame), seedString(strings.Repeat("x", wire.MaxUserAgentLen+1)))
	writeSeed(t, "FuzzRewriteUserAgent", "not-version", seedBytes(verack), seedString("/x/"))
	writeSeed(t, "FuzzRewriteUserAgent", "truncated", seedBytes(ourFrame[:60]), seedString("/x/"))

	writeSeed(t, "FuzzHashSet", "evict-and-readd", seedUint8(2), seedBytes([]byte{1, 2, 3, 1, 1, 4, 2, 5}))
	writeSeed(t, "FuzzHashSet", "capacity-one", seedUint8(0), seedBytes([]byte{9, 9, 8, 9}))
	writeSeed(t, "FuzzCmdOf", "wtxidrelay", seedBytes([]byte("wtxidrelay\x00\x00")))
	writeSeed(t, "FuzzCmdOf", "no-nul", seedBytes([]byte("abcdefghijkl")))
	writeSeed(t, "FuzzCmdOf", "nul-inside", seedBytes([]byte("ping\x00pong\x00\x00\x00")))
}
