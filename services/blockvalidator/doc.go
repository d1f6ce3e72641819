// Package blockvalidator is the btcmesh block validator: it accepts blocks,
// checks every consensus rule and drives the active chain.
//
// It serves btcmesh.blockvalidator.v1.BlockValidatorService (SubmitBlock,
// GetBlock, GetStatus). It consumes block.received events from the
// JetStream work queue (durable consumer bus.BlockConsumer, explicit acks)
// and reads the announced blocks from the shared block store, a JetStream
// object-store bucket (internal/blockstore) that it also writes submitted
// blocks to. Events are taken in batches (whatever has queued, up to
// intakeBatch): each block is checked and stored on its own, then the
// chain is activated once for the batch, so during a sync one connect
// plan spans many blocks and the pipeline below has work to overlap. An
// event is acked only once its block was processed.
//
// Validation follows Bitcoin Core's order: context-free sanity
// (CheckBlock), the header through the headers service, contextual checks
// that need no UTXOs (BIP34 height, finality, witness commitment, weight),
// then, when the block joins the most-work chain, one batched UTXO lookup,
// script and transaction checks fanned out to the txvalidator pool over
// NATS (or to the txvalidator of the same process, runner.Deps.Scripts,
// in `btcmesh node`; when the script cache covers every transaction of
// the block, the non-script checks run here: see localChecks), and one
// atomic ConnectBlock on the utxostore. For a block whose parent is the
// utxostore's tip, the lookup is PrepareConnect: the store resolves the
// block's spends (and checks BIP30) as its connect would, and the
// ConnectBlock that follows names the block instead of sending it again
// and only records it. The headers service
// plans connects, disconnects and reorgs (GetConnectPlan) and publishes the
// chain-tip event when told the new tip (SetActiveTip); this service
// publishes nothing itself.
//
// Connecting is pipelined: while one block is written to the utxostore
// and the index, the next blocks of the connect plan (and a block that
// extends the tip, while it is being checked and stored; from the moment
// it is decoded when the script cache covers all its transactions) are
// validated speculatively on top of it, their view of the UTXO set
// completed by the blocks ahead of them. A block speculated on from the
// moment it is decoded is also stored as soon as it passes sanity and its
// witnesses match the coinbase's commitment (its bytes are then the block
// its hash names: see internal/mutation), while its header and
// contextual checks run. A speculation that fails in any way is discarded
// and the block validated again on the sequential path, which alone marks
// blocks invalid. A block rejected for a mutation (merkle root, duplicated
// transactions, witnesses its header does not commit to) never marks its
// hash invalid, and a copy of it found in the block store is deleted, so
// the real block can still come (Core's BLOCK_MUTATED).
//
// A large block's transactions are decoded and hashed on every core
// (decodeBlock), with wire's own decoder as the authority. A connected block is marked valid and made the active tip in
// one headers call (SetActiveTip with mark_valid), after the utxostore
// commit, whose tip stays the truth.
//
// All processing is serialized by one mutex: exactly one replica should
// run (leader), while the script work it fans out scales with the pool.
package blockvalidator
