package ctl

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/btcsuite/btcd/address/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
	"google.golang.org/grpc/codes"

	blockvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/blockvalidator/v1"
	commonv1 "github.com/btcmesh/btcmesh/proto/btcmesh/common/v1"
	headersv1 "github.com/btcmesh/btcmesh/proto/btcmesh/headers/v1"
	minerv1 "github.com/btcmesh/btcmesh/proto/btcmesh/miner/v1"
	nodev1 "github.com/btcmesh/btcmesh/proto/btcmesh/node/v1"
	p2pv1 "github.com/btcmesh/btcmesh/proto/btcmesh/p2p/v1"
	utxostorev1 "github.com/btcmesh/btcmesh/proto/btcmesh/utxostore/v1"

	"github.com/btcmesh/btcmesh/internal/rules"
)

// verb is one command.
type verb struct {
	args     string // synopsis of the positional arguments
	help     string // one line
	min, max int
	run      func(c *cli, args []string) (any, error)
}

// verbs is the command table.
func verbs() map[string]verb {
	return map[string]verb{
		"getblockchaininfo":  {"", "State of the block chain (chain, blocks, headers, bestblockhash, difficulty, ...).", 0, 0, (*cli).getBlockchainInfo},
		"getblockcount":      {"", "Height of the active chain's tip.", 0, 0, (*cli).getBlockCount},
		"getbestblockhash":   {"", "Hash of the active chain's tip.", 0, 0, (*cli).getBestBlockHash},
		"getblockhash":       {"HEIGHT", "Hash of the active chain's block at HEIGHT.", 1, 1, (*cli).getBlockHash},
		"getblock":           {"BLOCKHASH [VERBOSITY=1]", "A block: 0 = hex, 1 = object with txids, 2 = object with decoded transactions.", 1, 2, (*cli).getBlock},
		"getblockheader":     {"BLOCKHASH [VERBOSE=true]", "A block header: object, or hex when VERBOSE is false.", 1, 2, (*cli).getBlockHeader},
		"getchaintips":       {"", "Every tip of the block tree.", 0, 0, (*cli).getChainTips},
		"generatetoaddress":  {"NBLOCKS ADDRESS [MAXTRIES=1000000]", "Mine NBLOCKS blocks paying ADDRESS (regtest/signet); prints their hashes.", 2, 3, (*cli).generateToAddress},
		"submitblock":        {"HEXDATA [DUMMY]", "Submit a serialized block (use -stdin for large blocks).", 1, 2, (*cli).submitBlock},
		"sendrawtransaction": {"HEXSTRING [MAXFEERATE=0.10]", "Submit a serialized transaction to the mempool; prints its txid. MAXFEERATE in BTC/kvB, 0 for no limit.", 1, 2, (*cli).sendRawTransaction},
		"decoderawtransaction": {"HEXSTRING", "Decode a serialized transaction locally.", 1, 1,
			(*cli).decodeRawTransaction},
		"getrawmempool":      {"[VERBOSE=false]", "Transaction ids in the mempool, or an object with details when VERBOSE.", 0, 1, (*cli).getRawMempool},
		"getmempoolinfo":     {"", "Mempool size and fees.", 0, 0, (*cli).getMempoolInfo},
		"gettxout":           {"TXID N [INCLUDE_MEMPOOL=true]", "An unspent transaction output, or nothing when spent or unknown.", 2, 3, (*cli).getTxOut},
		"gettxoutsetinfo":    {"", "Statistics of the UTXO set (may take a while).", 0, 0, (*cli).getTxOutSetInfo},
		"getpeerinfo":        {"", "Connected peers.", 0, 0, (*cli).getPeerInfo},
		"getnetworkinfo":     {"", "Networking state.", 0, 0, (*cli).getNetworkInfo},
		"getconnectioncount": {"", "Number of connected peers.", 0, 0, (*cli).getConnectionCount},
		"addnode":            {"NODE add|remove|onetry", "Add, remove or try once a peer address (HOST:PORT).", 2, 2, (*cli).addNode},
		"disconnectnode":     {"[ADDRESS] [NODEID]", "Disconnect a peer by address, or by id with an empty ADDRESS.", 0, 2, (*cli).disconnectNode},
		"setban":             {"SUBNET add|remove [BANTIME=86400] [ABSOLUTE=false]", "Ban or unban an IP or subnet.", 2, 4, (*cli).setBan},
		"listbanned":         {"", "Banned IPs and subnets.", 0, 0, (*cli).listBanned},
		"clearbanned":        {"", "Remove every ban.", 0, 0, (*cli).clearBanned},
		"stop":               {"", "Stop the node.", 0, 0, (*cli).stop},
	}
}

// verbList renders the verbs for help.
func verbList() string {
	vs := verbs()
	var b strings.Builder
	for _, name := range sortedKeys(vs) {
		fmt.Fprintf(&b, "  %s %s\n", name, vs[name].args)
	}
	return b.String()
}

// runHelp prints the verb list, or one verb's usage.
func runHelp(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintf(stdout, "btcmesh ctl [flags] VERB [ARGS...]\n\n%s", verbList())
		return 0
	}
	v, ok := verbs()[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "error: help: unknown command %q\n", args[0])
		return 1
	}
	fmt.Fprintf(stdout, "%s %s\n\n%s\n", args[0], v.args, v.help)
	return 0
}

// --- chain ---

// chainName maps btcmesh's network names to Core's chain names.
func chainName(network string) string {
	switch network {
	case "mainnet":
		return "main"
	case "testnet3":
		return "test"
	}
	return network
}

// chainInfo calls headers.GetChainInfo.
func (c *cli) chainInfo() (*headersv1.GetChainInfoResponse, error) {
	ci, err := c.headers.GetChainInfo(c.ctx, &headersv1.GetChainInfoRequest{}, c.callOpts()...)
	if err != nil {
		return nil, c.grpcErr(svcHeaders, err, nil)
	}
	if ci.GetTip() == nil {
		return nil, rpcErr(codeMiscError, "the node has no active chain yet")
	}
	return ci, nil
}

// parseHeader decodes an index entry's raw header.
func parseHeader(info *headersv1.HeaderInfo) (*wire.BlockHeader, error) {
	var h wire.BlockHeader
	if err := h.Deserialize(bytes.NewReader(info.GetHeader())); err != nil {
		return nil, rpcErr(codeMiscError, "node returned a bad header for %s: %v", hashString(info.GetHash()), err)
	}
	return &h, nil
}

func (c *cli) getBlockchainInfo(_ []string) (any, error) {
	ci, err := c.chainInfo()
	if err != nil {
		return nil, err
	}
	tip := ci.GetTip()
	h, err := parseHeader(tip)
	if err != nil {
		return nil, err
	}
	network := ci.GetNetwork()
	if network == "" {
		network = c.opts.network
	}
	headers := tip.GetHeight()
	if ci.GetBestHeader() != nil {
		headers = ci.GetBestHeader().GetHeight()
	}
	var o object
	o.add("chain", chainName(network))
	o.add("blocks", tip.GetHeight())
	o.add("headers", headers)
	o.add("bestblockhash", hashString(tip.GetHash()))
	o.add("difficulty", difficulty(h.Bits))
	o.add("time", h.Timestamp.Unix())
	o.add("mediantime", tip.GetMedianTimePast())
	o.add("verificationprogress", ci.GetVerificationProgress())
	o.add("initialblockdownload", ci.GetInitialBlockDownload())
	o.add("chainwork", chainWorkHex(tip.GetChainWork()))
	o.add("size_on_disk", 0)
	o.add("pruned", false)
	o.add("warnings", "")
	return o, nil
}

func (c *cli) getBlockCount(_ []string) (any, error) {
	ci, err := c.chainInfo()
	if err != nil {
		return nil, err
	}
	return ci.GetTip().GetHeight(), nil
}

func (c *cli) getBestBlockHash(_ []string) (any, error) {
	ci, err := c.chainInfo()
	if err != nil {
		return nil, err
	}
	return hashString(ci.GetTip().GetHash()), nil
}

func (c *cli) getBlockHash(args []string) (any, error) {
	height, err := parseInt32("HEIGHT", args[0])
	if err != nil {
		return nil, err
	}
	outOfRange := &rpcError{code: codeInvalidParameter, msg: "Block height out of range"}
	if height < 0 {
		return nil, outOfRange
	}
	resp, err := c.headers.GetHeader(c.ctx, &headersv1.GetHeaderRequest{Height: height}, c.callOpts()...)
	if err != nil {
		return nil, c.grpcErr(svcHeaders, err, codeMap{codes.NotFound: outOfRange, codes.InvalidArgument: outOfRange, codes.OutOfRange: outOfRange})
	}
	if resp.GetInfo().GetHeight() != height {
		return nil, outOfRange
	}
	return hashString(resp.GetInfo().GetHash()), nil
}

// blockNotFound is Core's answer for an unknown block hash.
var blockNotFound = &rpcError{code: codeInvalidAddress, msg: "Block not found"}

// lookupBlock resolves a hash to its index entry and the active tip height.
func (c *cli) lookupBlock(hash chainhash.Hash) (*headersv1.HeaderInfo, int32, error) {
	resp, err := c.headers.GetHeader(c.ctx, &headersv1.GetHeaderRequest{Hash: hash[:]}, c.callOpts()...)
	if err != nil {
		return nil, 0, c.grpcErr(svcHeaders, err, codeMap{codes.NotFound: blockNotFound})
	}
	if resp.GetInfo() == nil {
		return nil, 0, blockNotFound
	}
	ci, err := c.chainInfo()
	if err != nil {
		return nil, 0, err
	}
	return resp.GetInfo(), ci.GetTip().GetHeight(), nil
}

// meta builds the index-derived fields of Core's header output.
func meta(info *headersv1.HeaderInfo, tipHeight int32) blockMeta {
	conf := int64(-1)
	if info.GetOnActiveChain() {
		conf = int64(tipHeight) - int64(info.GetHeight()) + 1
	}
	return blockMeta{
		height:        info.GetHeight(),
		confirmations: conf,
		medianTime:    info.GetMedianTimePast(),
		chainWork:     info.GetChainWork(),
		nextHash:      info.GetNextHash(),
	}
}

// fetchBlock reads a stored block's bytes.
func (c *cli) fetchBlock(hash chainhash.Hash) ([]byte, error) {
	notAvail := &rpcError{code: codeMiscError, msg: "Block not available (not fully downloaded)"}
	resp, err := c.blockValidator.GetBlock(c.ctx, &blockvalidatorv1.GetBlockRequest{Hash: hash[:]}, c.callOpts()...)
	if err != nil {
		return nil, c.grpcErr(svcBlockValidator, err, codeMap{codes.NotFound: notAvail})
	}
	if len(resp.GetBlock()) == 0 {
		return nil, notAvail
	}
	return resp.GetBlock(), nil
}

func (c *cli) getBlock(args []string) (any, error) {
	hash, err := parseHash("blockhash", args[0])
	if err != nil {
		return nil, err
	}
	verbosity := 1
	if len(args) > 1 {
		switch strings.TrimSpace(args[1]) {
		case "true":
			verbosity = 1
		case "false":
			verbosity = 0
		default:
			v, err := parseInt("VERBOSITY", args[1], 0, 3)
			if err != nil {
				return nil, err
			}
			verbosity = int(v)
		}
	}
	info, tipHeight, err := c.lookupBlock(hash)
	if err != nil {
		return nil, err
	}
	raw, err := c.fetchBlock(hash)
	if err != nil {
		return nil, err
	}
	if verbosity == 0 {
		return hex.EncodeToString(raw), nil
	}
	blk, err := decodeBlock(raw)
	if err != nil {
		return nil, rpcErr(codeMiscError, "Block read failed: %v", err)
	}
	return blockJSON(blk, meta(info, tipHeight), verbosity, c.opts.netParam.Params), nil
}

func (c *cli) getBlockHeader(args []string) (any, error) {
	hash, err := parseHash("blockhash", args[0])
	if err != nil {
		return nil, err
	}
	verbose := true
	if len(args) > 1 {
		if verbose, err = parseBool("VERBOSE", args[1]); err != nil {
			return nil, err
		}
	}
	info, tipHeight, err := c.lookupBlock(hash)
	if err != nil {
		return nil, err
	}
	if !verbose {
		return hex.EncodeToString(info.GetHeader()), nil
	}
	h, err := parseHeader(info)
	if err != nil {
		return nil, err
	}
	m := meta(info, tipHeight)
	// The index does not count transactions; read the block when it is
	// stored (Core shows nTx 0 for header-only blocks too).
	switch info.GetStatus() {
	case headersv1.BlockStatus_BLOCK_STATUS_HAVE_DATA, headersv1.BlockStatus_BLOCK_STATUS_VALID:
		if raw, err := c.fetchBlock(hash); err == nil {
			if blk, err := decodeBlock(raw); err == nil {
				m.nTx = len(blk.Transactions)
			}
		}
	}
	return headerJSON(h, m), nil
}

func (c *cli) getChainTips(_ []string) (any, error) {
	resp, err := c.headers.GetChainTips(c.ctx, &headersv1.GetChainTipsRequest{}, c.callOpts()...)
	if err != nil {
		return nil, c.grpcErr(svcHeaders, err, nil)
	}
	out := make([]any, 0, len(resp.GetTips()))
	for _, t := range resp.GetTips() {
		var o object
		o.add("height", t.GetHeight())
		o.add("hash", hashString(t.GetHash()))
		o.add("branchlen", t.GetBranchLen())
		o.add("status", t.GetStatus())
		out = append(out, o)
	}
	return out, nil
}

// --- mining and submission ---

func (c *cli) generateToAddress(args []string) (any, error) {
	n, err := parseInt("NBLOCKS", args[0], 0, 1<<20)
	if err != nil {
		return nil, err
	}
	a, err := address.DecodeAddress(args[1], c.opts.netParam.Params)
	if err != nil || !a.IsForNet(c.opts.netParam.Params) {
		return nil, rpcErr(codeInvalidAddress, "Error: Invalid address")
	}
	var maxTries int64 = 1000000
	if len(args) > 2 {
		if maxTries, err = parseInt("MAXTRIES", args[2], 1, 1<<62); err != nil {
			return nil, err
		}
	}
	resp, err := c.miner.Generate(c.ctx, &minerv1.GenerateRequest{Blocks: int32(n), Address: args[1], MaxTries: uint64(maxTries)}, c.callOpts()...)
	if err != nil {
		return nil, c.grpcErr(svcMiner, err, nil)
	}
	out := make([]string, 0, len(resp.GetHashes()))
	for _, h := range resp.GetHashes() {
		out = append(out, hashString(h))
	}
	return out, nil
}

// submitResultText is what bitcoin-cli submitblock prints for each result
// (nil prints nothing).
func submitResultText(resp *blockvalidatorv1.SubmitBlockResponse) any {
	switch resp.GetResult() {
	case blockvalidatorv1.SubmitResult_SUBMIT_RESULT_ACCEPTED:
		return nil
	case blockvalidatorv1.SubmitResult_SUBMIT_RESULT_DUPLICATE:
		return "duplicate"
	case blockvalidatorv1.SubmitResult_SUBMIT_RESULT_DUPLICATE_INVALID:
		return "duplicate-invalid"
	case blockvalidatorv1.SubmitResult_SUBMIT_RESULT_SIDE_CHAIN:
		return "inconclusive"
	case blockvalidatorv1.SubmitResult_SUBMIT_RESULT_ORPHAN:
		// Core rejects a block with an unknown parent in AcceptBlockHeader
		// and submitblock answers the state's reason.
		if r := resp.GetRejectReason(); r != "" {
			return r
		}
		return string(rules.PrevBlockNotFound)
	default:
		if r := resp.GetRejectReason(); r != "" {
			return r
		}
		return "rejected"
	}
}

func (c *cli) submitBlock(args []string) (any, error) {
	const failMsg = "Block decode failed"
	raw, err := parseHex(args[0], failMsg)
	if err != nil {
		return nil, err
	}
	blk, err := decodeBlock(raw)
	if err != nil {
		return nil, rpcErr(codeDeserialization, failMsg)
	}
	if len(blk.Transactions) == 0 || !isCoinbase(blk.Transactions[0]) {
		return nil, rpcErr(codeDeserialization, "Block does not start with a coinbase")
	}
	resp, err := c.blockValidator.SubmitBlock(c.ctx, &blockvalidatorv1.SubmitBlockRequest{Block: raw}, c.callOpts()...)
	if err != nil {
		// A rule reported as a gRPC error is still an answer, as Core's
		// submitblock returns the reason as its result.
		if re, ok := rules.FromStatus(err); ok && re.Kind != rules.Malformed {
			return string(re.Kind), nil
		}
		return nil, c.grpcErr(svcBlockValidator, err, codeMap{codes.InvalidArgument: {code: codeDeserialization, msg: failMsg}})
	}
	return submitResultText(resp), nil
}

// txDecodeFailed is Core's message for undecodable transactions.
const txDecodeFailed = "TX decode failed. Make sure the tx has at least one input."

func (c *cli) sendRawTransaction(args []string) (any, error) {
	raw, err := parseHex(args[0], txDecodeFailed)
	if err != nil {
		return nil, err
	}
	tx, err := decodeTx(raw)
	if err != nil || len(tx.TxIn) == 0 {
		return nil, rpcErr(codeDeserialization, txDecodeFailed)
	}
	var maxFee int64 // 0: the node's default (0.10 BTC/kvB)
	if len(args) > 1 {
		v, err := parseBTC(strings.TrimSpace(args[1]))
		if err != nil {
			return nil, rpcErr(codeTypeError, "Invalid amount")
		}
		if v < 0 {
			return nil, rpcErr(codeTypeError, "Amount out of range")
		}
		maxFee = v
		if v == 0 {
			maxFee = -1 // Core: 0 disables the check
		}
	}
	resp, err := c.miner.SubmitTransaction(c.ctx, &minerv1.SubmitTransactionRequest{Tx: raw, MaxFeeRate: maxFee}, c.callOpts()...)
	if err != nil {
		if re, ok := rules.FromStatus(err); ok {
			switch re.Kind {
			case rules.AlreadyInMempool:
				// Core re-announces and answers the txid.
				return tx.TxHash().String(), nil
			case rules.MissingInputs:
				return nil, rpcErr(codeVerifyError, "%s", re.Kind)
			case rules.AlreadyKnown:
				return nil, rpcErr(codeAlreadyInChain, "Transaction outputs already in utxo set")
			case rules.MaxFeeExceeded:
				return nil, rpcErr(codeVerifyError, "Fee exceeds maximum configured by user (e.g. -maxtxfee, maxfeerate)")
			case rules.Malformed:
				return nil, rpcErr(codeDeserialization, txDecodeFailed)
			}
			return nil, rpcErr(codeVerifyRejected, "%s", ruleText(re))
		}
		return nil, c.grpcErr(svcMiner, err, codeMap{codes.InvalidArgument: {code: codeDeserialization, msg: ""}})
	}
	if len(resp.GetTxid()) == chainhash.HashSize {
		return hashString(resp.GetTxid()), nil
	}
	return tx.TxHash().String(), nil
}

func (c *cli) decodeRawTransaction(args []string) (any, error) {
	raw, err := parseHex(args[0], "TX decode failed")
	if err != nil {
		return nil, err
	}
	tx, err := decodeTx(raw)
	if err != nil {
		return nil, rpcErr(codeDeserialization, "TX decode failed")
	}
	return txJSON(tx, c.opts.netParam.Params, false), nil
}

// --- mempool ---

func (c *cli) getRawMempool(args []string) (any, error) {
	verbose := false
	if len(args) > 0 {
		var err error
		if verbose, err = parseBool("VERBOSE", args[0]); err != nil {
			return nil, err
		}
	}
	resp, err := c.miner.GetMempool(c.ctx, &minerv1.GetMempoolRequest{IncludeTx: verbose}, c.callOpts()...)
	if err != nil {
		return nil, c.grpcErr(svcMiner, err, nil)
	}
	entries := resp.GetEntries()
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].GetTime() != entries[j].GetTime() {
			return entries[i].GetTime() < entries[j].GetTime()
		}
		return hashString(entries[i].GetTxid()) < hashString(entries[j].GetTxid())
	})
	if !verbose {
		out := make([]string, 0, len(entries))
		for _, e := range entries {
			out = append(out, hashString(e.GetTxid()))
		}
		return out, nil
	}
	return mempoolVerbose(entries), nil
}

// mempoolVerbose builds getrawmempool true's object, computing ancestor and
// descendant packages from the entries' in-mempool parents.
func mempoolVerbose(entries []*minerv1.MempoolEntry) object {
	byID := make(map[string]*minerv1.MempoolEntry, len(entries))
	parents := make(map[string][]string, len(entries))
	children := make(map[string][]string, len(entries))
	for _, e := range entries {
		byID[hashString(e.GetTxid())] = e
	}
	for _, e := range entries {
		id := hashString(e.GetTxid())
		for _, d := range e.GetDepends() {
			p := hashString(d)
			if _, ok := byID[p]; !ok {
				continue
			}
			parents[id] = append(parents[id], p)
			children[p] = append(children[p], id)
		}
	}
	closure := func(start string, edges map[string][]string) []string {
		seen := map[string]bool{start: true}
		stack := []string{start}
		var out []string
		for len(stack) > 0 {
			n := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			out = append(out, n)
			for _, m := range edges[n] {
				if !seen[m] {
					seen[m] = true
					stack = append(stack, m)
				}
			}
		}
		return out // includes start
	}
	signals := func(e *minerv1.MempoolEntry) bool {
		tx, err := decodeTx(e.GetTx())
		if err != nil {
			return false
		}
		for _, in := range tx.TxIn {
			if in.Sequence < wire.MaxTxInSequenceNum-1 {
				return true
			}
		}
		return false
	}
	var out object
	for _, e := range entries {
		id := hashString(e.GetTxid())
		anc := closure(id, parents)
		desc := closure(id, children)
		var ancSize, ancFee, descSize, descFee int64
		replaceable := false
		for _, a := range anc {
			ancSize += byID[a].GetVsize()
			ancFee += byID[a].GetFee()
			if !replaceable && signals(byID[a]) {
				replaceable = true
			}
		}
		for _, d := range desc {
			descSize += byID[d].GetVsize()
			descFee += byID[d].GetFee()
		}
		var fees object
		fees.add("base", btc(e.GetFee()))
		fees.add("modified", btc(e.GetFee()))
		fees.add("ancestor", btc(ancFee))
		fees.add("descendant", btc(descFee))
		depends := append([]string{}, parents[id]...)
		sort.Strings(depends)
		spentBy := append([]string{}, children[id]...)
		sort.Strings(spentBy)
		var o object
		o.add("vsize", e.GetVsize())
		o.add("weight", e.GetWeight())
		o.add("time", e.GetTime())
		o.add("height", e.GetHeight())
		o.add("descendantcount", len(desc))
		o.add("descendantsize", descSize)
		o.add("ancestorcount", len(anc))
		o.add("ancestorsize", ancSize)
		o.add("wtxid", hashString(e.GetWtxid()))
		o.add("fees", fees)
		o.add("depends", depends)
		o.add("spentby", spentBy)
		o.add("bip125-replaceable", replaceable)
		o.add("unbroadcast", false)
		out.add(id, o)
	}
	return out
}

func (c *cli) getMempoolInfo(_ []string) (any, error) {
	resp, err := c.miner.GetMempool(c.ctx, &minerv1.GetMempoolRequest{}, c.callOpts()...)
	if err != nil {
		return nil, c.grpcErr(svcMiner, err, nil)
	}
	var vbytes, weight, fees int64
	for _, e := range resp.GetEntries() {
		vbytes += e.GetVsize()
		weight += e.GetWeight()
		fees += e.GetFee()
	}
	var o object
	o.add("loaded", true)
	o.add("size", len(resp.GetEntries()))
	o.add("bytes", vbytes)
	o.add("usage", weight) // an estimate: the miner does not report memory use
	o.add("total_fee", btc(fees))
	o.add("maxmempool", 300000000)
	o.add("mempoolminfee", btc(1000))
	o.add("minrelaytxfee", btc(1000))
	o.add("incrementalrelayfee", btc(1000))
	o.add("unbroadcastcount", 0)
	o.add("fullrbf", true)
	return o, nil
}

// --- UTXO set ---

func (c *cli) getTxOut(args []string) (any, error) {
	txid, err := parseHash("txid", args[0])
	if err != nil {
		return nil, err
	}
	n, err := parseInt("N", args[1], 0, 1<<32-1)
	if err != nil {
		return nil, err
	}
	includeMempool := true
	if len(args) > 2 {
		if includeMempool, err = parseBool("INCLUDE_MEMPOOL", args[2]); err != nil {
			return nil, err
		}
	}
	op := &commonv1.OutPoint{Txid: txid[:], Index: uint32(n)}
	resp, err := c.utxo.GetUtxos(c.ctx, &utxostorev1.GetUtxosRequest{Outpoints: []*commonv1.OutPoint{op}}, c.callOpts()...)
	if err != nil {
		return nil, c.grpcErr(svcUtxoStore, err, nil)
	}
	var u *utxostorev1.Utxo
	if len(resp.GetUtxos()) > 0 {
		u = resp.GetUtxos()[0]
	}
	var out *commonv1.TxOut
	var confirmations int64
	coinbase := false
	if u.GetFound() {
		out = u.GetOutput()
		confirmations = int64(resp.GetTipHeight()) - int64(u.GetHeight()) + 1
		coinbase = u.GetCoinbase()
	}
	if includeMempool {
		st, err := c.miner.CheckOutpoints(c.ctx, &minerv1.CheckOutpointsRequest{Outpoints: []*commonv1.OutPoint{op}}, c.callOpts()...)
		if err != nil {
			return nil, c.grpcErr(svcMiner, err, nil)
		}
		if len(st.GetStates()) > 0 {
			s := st.GetStates()[0]
			if s.GetSpent() {
				return nil, nil
			}
			if out == nil && s.GetCreated() {
				out, confirmations, coinbase = s.GetOutput(), 0, false
			}
		}
	}
	if out == nil {
		return nil, nil
	}
	var o object
	o.add("bestblock", hashString(resp.GetTipHash()))
	o.add("confirmations", confirmations)
	o.add("value", btc(out.GetValue()))
	o.add("scriptPubKey", scriptPubKeyJSON(out.GetPkScript(), c.opts.netParam.Params))
	o.add("coinbase", coinbase)
	return o, nil
}

func (c *cli) getTxOutSetInfo(_ []string) (any, error) {
	s, err := c.utxo.GetStats(c.ctx, &utxostorev1.GetStatsRequest{}, c.callOpts()...)
	if err != nil {
		return nil, c.grpcErr(svcUtxoStore, err, nil)
	}
	var o object
	o.add("height", s.GetHeight())
	o.add("bestblock", hashString(s.GetBestBlock()))
	o.add("txouts", s.GetTxouts())
	o.add("bogosize", s.GetBogosize())
	o.add("hash_serialized_3", hashString(s.GetHashSerialized()))
	o.add("total_amount", btc(s.GetTotalAmount()))
	o.add("transactions", s.GetTransactions())
	o.add("disk_size", s.GetDiskSize())
	return o, nil
}

// --- peers ---

// serviceNames decodes service bits as Core's servicesnames.
func serviceNames(hexBits string) []string {
	var bits uint64
	_, _ = fmt.Sscanf(hexBits, "%x", &bits)
	names := []struct {
		bit  uint64
		name string
	}{{1 << 0, "NETWORK"}, {1 << 1, "GETUTXO"}, {1 << 2, "BLOOM"}, {1 << 3, "WITNESS"},
		{1 << 6, "COMPACT_FILTERS"}, {1 << 10, "NETWORK_LIMITED"}, {1 << 11, "P2P_V2"}}
	out := []string{}
	for _, n := range names {
		if bits&n.bit != 0 {
			out = append(out, n.name)
		}
	}
	return out
}

// addrNetwork is Core's "network" of a peer address.
func addrNetwork(addr string) string {
	host := addr
	if i := strings.LastIndex(addr, ":"); i >= 0 && !strings.HasSuffix(addr, "]") {
		host = addr[:i]
	}
	switch {
	case strings.HasSuffix(host, ".onion"):
		return "onion"
	case strings.HasSuffix(host, ".i2p"):
		return "i2p"
	case strings.Contains(host, ":"):
		return "ipv6"
	}
	return "ipv4"
}

func (c *cli) getPeerInfo(_ []string) (any, error) {
	resp, err := c.p2p.GetPeerInfo(c.ctx, &p2pv1.GetPeerInfoRequest{}, c.callOpts()...)
	if err != nil {
		return nil, c.grpcErr(svcP2P, err, nil)
	}
	out := make([]any, 0, len(resp.GetPeers()))
	for _, p := range resp.GetPeers() {
		var o object
		o.add("id", p.GetId())
		o.add("addr", p.GetAddr())
		if p.GetAddrLocal() != "" {
			o.add("addrlocal", p.GetAddrLocal())
		}
		o.add("network", addrNetwork(p.GetAddr()))
		o.add("services", p.GetServices())
		o.add("servicesnames", serviceNames(p.GetServices()))
		o.add("relaytxes", p.GetRelayTxes())
		o.add("lastsend", p.GetLastSend())
		o.add("lastrecv", p.GetLastRecv())
		o.add("bytessent", p.GetBytesSent())
		o.add("bytesrecv", p.GetBytesRecv())
		o.add("conntime", p.GetConnTime())
		if p.GetPingTime() > 0 {
			o.add("pingtime", p.GetPingTime())
		}
		o.add("version", p.GetVersion())
		o.add("subver", p.GetSubver())
		o.add("inbound", p.GetInbound())
		o.add("startingheight", p.GetStartingHeight())
		o.add("synced_headers", p.GetSyncedHeaders())
		o.add("synced_blocks", p.GetSyncedBlocks())
		ct := "outbound-full-relay"
		if p.GetInbound() {
			ct = "inbound"
		}
		o.add("connection_type", ct)
		o.add("transport_protocol_type", p.GetTransportProtocolType())
		out = append(out, o)
	}
	return out, nil
}

func (c *cli) getNetworkInfo(_ []string) (any, error) {
	n, err := c.p2p.GetNetworkInfo(c.ctx, &p2pv1.GetNetworkInfoRequest{}, c.callOpts()...)
	if err != nil {
		return nil, c.grpcErr(svcP2P, err, nil)
	}
	local := make([]any, 0, len(n.GetLocalAddresses()))
	for _, a := range n.GetLocalAddresses() {
		host, port := a, int64(0)
		if i := strings.LastIndex(a, ":"); i > 0 {
			host = strings.Trim(a[:i], "[]")
			_, _ = fmt.Sscanf(a[i+1:], "%d", &port)
		}
		var o object
		o.add("address", host)
		o.add("port", port)
		o.add("score", 1)
		local = append(local, o)
	}
	var o object
	o.add("version", n.GetVersion())
	o.add("subversion", n.GetSubversion())
	o.add("protocolversion", n.GetProtocolVersion())
	o.add("localservices", n.GetLocalServices())
	o.add("localservicesnames", serviceNames(n.GetLocalServices()))
	o.add("localrelay", true)
	o.add("timeoffset", 0)
	o.add("networkactive", n.GetNetworkActive())
	o.add("connections", n.GetConnections())
	o.add("connections_in", n.GetConnectionsIn())
	o.add("connections_out", n.GetConnectionsOut())
	o.add("relayfee", rawNumber(fmt.Sprintf("%.8f", n.GetRelayFee())))
	o.add("incrementalfee", btc(1000))
	o.add("localaddresses", local)
	o.add("warnings", "")
	return o, nil
}

func (c *cli) getConnectionCount(_ []string) (any, error) {
	n, err := c.p2p.GetNetworkInfo(c.ctx, &p2pv1.GetNetworkInfoRequest{}, c.callOpts()...)
	if err != nil {
		return nil, c.grpcErr(svcP2P, err, nil)
	}
	return n.GetConnections(), nil
}

func (c *cli) addNode(args []string) (any, error) {
	cmd := args[1]
	if cmd != "add" && cmd != "remove" && cmd != "onetry" {
		return nil, argErr("addnode: command must be add, remove or onetry, not %q", cmd)
	}
	_, err := c.p2p.AddNode(c.ctx, &p2pv1.AddNodeRequest{Addr: args[0], Command: cmd}, c.callOpts()...)
	if err != nil {
		return nil, c.grpcErr(svcP2P, err, codeMap{
			codes.AlreadyExists: {code: codeNodeAlreadyAdded, msg: "Error: Node already added"},
			codes.NotFound:      {code: codeNodeNotAdded, msg: "Error: Node could not be removed. It has not been added previously."},
		})
	}
	return nil, nil
}

func (c *cli) disconnectNode(args []string) (any, error) {
	var req p2pv1.DisconnectNodeRequest
	switch {
	case len(args) == 1 && args[0] != "":
		req.Addr = args[0]
	case len(args) == 2 && args[0] == "":
		id, err := parseInt32("NODEID", args[1])
		if err != nil {
			return nil, err
		}
		req.Id = id
	default:
		return nil, rpcErr(codeInvalidParams, "Only one of address and nodeid should be provided.")
	}
	_, err := c.p2p.DisconnectNode(c.ctx, &req, c.callOpts()...)
	if err != nil {
		return nil, c.grpcErr(svcP2P, err, codeMap{
			codes.NotFound: {code: codeNodeNotConnected, msg: "Node not found in connected nodes"},
		})
	}
	return nil, nil
}

func (c *cli) setBan(args []string) (any, error) {
	cmd := args[1]
	if cmd != "add" && cmd != "remove" {
		return nil, argErr("setban: command must be add or remove, not %q", cmd)
	}
	req := &p2pv1.SetBanRequest{Subnet: args[0], Command: cmd}
	if len(args) > 2 {
		t, err := parseInt("BANTIME", args[2], 0, 1<<62)
		if err != nil {
			return nil, err
		}
		req.BanTime = t
	}
	if len(args) > 3 {
		abs, err := parseBool("ABSOLUTE", args[3])
		if err != nil {
			return nil, err
		}
		req.Absolute = abs
	}
	_, err := c.p2p.SetBan(c.ctx, req, c.callOpts()...)
	if err != nil {
		return nil, c.grpcErr(svcP2P, err, codeMap{
			codes.AlreadyExists:   {code: codeNodeAlreadyAdded, msg: "Error: IP/Subnet already banned"},
			codes.NotFound:        {code: codeInvalidIPOrSubnet, msg: "Error: Unban failed"},
			codes.InvalidArgument: {code: codeInvalidIPOrSubnet, msg: "Error: Invalid IP/Subnet"},
		})
	}
	return nil, nil
}

func (c *cli) listBanned(_ []string) (any, error) {
	resp, err := c.p2p.ListBanned(c.ctx, &p2pv1.ListBannedRequest{}, c.callOpts()...)
	if err != nil {
		return nil, c.grpcErr(svcP2P, err, nil)
	}
	now := time.Now().Unix()
	out := make([]any, 0, len(resp.GetBans()))
	for _, b := range resp.GetBans() {
		var o object
		o.add("address", b.GetAddress())
		o.add("ban_created", b.GetBanCreated())
		o.add("banned_until", b.GetBannedUntil())
		o.add("ban_duration", b.GetBannedUntil()-b.GetBanCreated())
		o.add("time_remaining", max(b.GetBannedUntil()-now, 0))
		out = append(out, o)
	}
	return out, nil
}

func (c *cli) clearBanned(_ []string) (any, error) {
	if _, err := c.p2p.ClearBanned(c.ctx, &p2pv1.ClearBannedRequest{}, c.callOpts()...); err != nil {
		return nil, c.grpcErr(svcP2P, err, nil)
	}
	return nil, nil
}

func (c *cli) stop(_ []string) (any, error) {
	resp, err := c.node.Stop(c.ctx, &nodev1.StopRequest{}, c.callOpts()...)
	if err != nil {
		return nil, c.grpcErr(svcNode, err, nil)
	}
	if resp.GetMessage() == "" {
		return "btcmesh stopping", nil
	}
	return resp.GetMessage(), nil
}
