// Package p2p is btcmesh's Bitcoin peer-to-peer service. It speaks the
// Bitcoin wire protocol (btcd's peer package, protocol 70016) with real
// peers: it accepts inbound connections, keeps outbound ones to --connect,
// --addnode and (on public networks) DNS-seeded addresses, and keeps the
// peer table and the ban list.
//
// It serves btcmesh.p2p.v1.P2PService (peer info, network info, addnode,
// disconnectnode, setban, listbanned, clearbanned).
//
// It consumes the headers service (SubmitHeaders, GetBlockLocator,
// LocateHeaders, GetMissingBlocks, GetChainInfo, GetHeader) to run
// headers-first sync and to serve headers to peers, the block store
// (internal/blockstore) to store downloaded blocks and serve them, and the
// NATS subjects chain.tip (announce new blocks to peers) and tx.accepted
// (relay transactions, answer getdata from a small cache).
//
// It publishes block.received (JetStream, after the block's bytes are in
// the block store; the blockvalidator consumes it) and tx.received (core
// NATS; the miner's mempool consumes it).
//
// The ban list is a JSON file (banlist.json) in the service's data
// directory, loaded on start.
package p2p
