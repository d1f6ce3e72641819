// Package blockvalidator is the btcmesh block validator: it accepts blocks,
// checks every consensus rule and drives the active chain.
//
// It serves btcmesh.blockvalidator.v1.BlockValidatorService (SubmitBlock,
// GetBlock, GetStatus). It consumes block.received events from the
// JetStream work queue (durable consumer bus.BlockConsumer, explicit acks)
// and reads the announced blocks from the shared block store, a JetStream
// object-store bucket (internal/blockstore) that it also writes submitted
// blocks to.
//
// Validation follows Bitcoin Core's order: context-free sanity
// (CheckBlock), the header through the headers service, contextual checks
// that need no UTXOs (BIP34 height, finality, witness commitment, weight),
// then, when the block joins the most-work chain, one batched UTXO lookup,
// script and transaction checks fanned out to the txvalidator pool over
// NATS, and one atomic ConnectBlock on the utxostore. The headers service
// plans connects, disconnects and reorgs (GetConnectPlan) and publishes the
// chain-tip event when told the new tip (SetActiveTip); this service
// publishes nothing itself.
//
// All processing is serialized by one mutex: exactly one replica should
// run (leader), while the script work it fans out scales with the pool.
package blockvalidator
