// Package ctl implements `btcmesh ctl`, the gRPC client for people. It
// speaks bitcoin-cli's language: the same verb names, positional arguments
// and JSON output shapes, so scripts written against Bitcoin Core work.
//
// Each verb maps to one or a few calls on the node's gRPC services
// (headers.v1, utxostore.v1, blockvalidator.v1, miner.v1, p2p.v1, node.v1).
// Blocks and transactions are decoded locally with wire/v2 into the JSON
// shapes of Bitcoin Core's getblock and decoderawtransaction.
//
// Output follows bitcoin-cli: string results are printed raw, numbers raw,
// objects and arrays as JSON indented by two spaces, null results print
// nothing. RPC-style failures print "error code: N\nerror message:\nTEXT"
// on stderr and exit with status 1 (bitcoin-cli exits with |N|; btcmesh
// keeps 1 so that callers can test for failure uniformly). Connection
// failures print "error: Could not connect to the server HOST:PORT".
//
// submitblock results follow Bitcoin Core: accepted prints nothing,
// duplicates print "duplicate" or "duplicate-invalid", a block stored on a
// side chain prints "inconclusive", a block whose parent is unknown prints
// "prev-blk-not-found" (what Core's submitblock answers for such a block),
// and a rejected block prints the rule it broke.
package ctl
