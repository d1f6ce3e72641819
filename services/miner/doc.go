// Package miner is btcmesh's mempool and block producer.
//
// It serves btcmesh.miner.v1.MinerService: SubmitTransaction, GetMempool,
// CheckOutpoints, GetBlockTemplate and Generate.
//
// Mempool. Transactions live in memory under one mutex, with an index of
// the outpoints they spend and the outputs they create. Acceptance decodes
// the transaction, refuses coinbases, duplicates and double spends of
// mempool transactions (txn-mempool-conflict: there is no replace-by-fee
// yet), resolves prevouts from mempool parents first and the rest with one
// utxostore.GetUtxos call (bad-txns-inputs-missingorspent when absent;
// txn-already-known when the transaction's own outputs are unspent on
// chain), looks up the median time past of each coin's previous block with
// one headers.GetHeadersByHeight call (for BIP68), and has the txvalidator
// pool (or the process's own txvalidator, runner.Deps.Scripts) check
// everything (MODE_FULL, policy on) in the context of the next
// block. The fee rate, computed on Core's sigop-adjusted virtual size,
// must reach --miner-min-relay-fee and, for RPC submissions, stay under the
// request's max_fee_rate (0.10 BTC/kvB by default). The pool is kept under
// --miner-max-mempool-mb of serialized transactions by evicting the
// lowest-scoring transactions (descendant-aware, as Core) with their
// descendants. There is no orphan pool, no ancestor/descendant count limit
// and no expiry yet.
//
// Templates. GetBlockTemplate and Generate build on the active tip from
// headers.GetChainInfo: BIP34 height and an 8-byte extranonce in the
// coinbase, subsidy plus fees to the payout script, a BIP141 witness
// commitment whenever segwit is active, and transactions chosen by
// ancestor-package fee rate (parents always before children) within
// 4,000,000 weight and 80,000 sigop cost less what the coinbase needs.
// Mining is only implemented where difficulty does not retarget (regtest);
// elsewhere the calls answer Unimplemented. Generate hashes with
// --miner-workers goroutines that share the nonce space, changing the
// extranonce when it runs out, and stops after max_tries nonces per block.
// Solved blocks go to blockvalidator.SubmitBlock; their transactions leave
// the mempool at once.
//
// Consumes: btcmesh.<net>.tx.received (queue group "miner"; relayed
// transactions, handled in arrival order) and btcmesh.<net>.chain.tip
// (connected blocks' transactions and their conflicts leave the mempool;
// disconnected blocks' transactions are offered again). Blocks are read
// from the JetStream object-store bucket btcmesh-<net>-blocks.
//
// Publishes: btcmesh.<net>.tx.accepted for every accepted transaction.
//
// Calls: headers (chain info, median times), utxostore (prevouts),
// blockvalidator (block submission) over gRPC, and the txvalidator pool
// over NATS.
package miner
