// Package headers is the btcmesh block index service.
//
// It serves btcmesh.headers.v1.HeaderService: every known header with its
// height, cumulative work, median time past and validation status
// (header-valid, have-data, valid, invalid), the best header chain (most
// work among headers not known invalid), the active chain (the blocks the
// UTXO set reflects, moved by SetActiveTip), locators, chain tips, the plan
// to reach the most-work chain whose blocks are stored, and the blocks still
// to download.
//
// Headers are checked with btcd's exported header rules (proof of work,
// difficulty retargeting, median-time-past, version) and errors carry Bitcoin
// Core's reject names (internal/rules).
//
// State lives in a badger database in the service's data directory: one
// entry per header and the active tip, written in one transaction so that a
// crash leaves a consistent store. The whole index is loaded into memory on
// start; an empty store begins with the network's genesis block as the valid
// active tip.
//
// It consumes nothing from NATS. It publishes events.v1.HeaderTip on
// btcmesh.<network>.header.tip when the best header changes and
// events.v1.ChainTip on btcmesh.<network>.chain.tip when the active tip moves.
package headers
