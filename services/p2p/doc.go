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
// the block store; the blockvalidator consumes it; only bytes that are
// the block their hash names are stored: a peer sending a mutated block,
// one whose transactions or witnesses its header does not commit to, is
// banned and the block asked of another peer) and tx.received (core
// NATS; the miner's mempool consumes it).
//
// Protocol: version/verack advertising NODE_NETWORK, NODE_WITNESS,
// NODE_NETWORK_LIMITED and (with --p2p-v2transport, the default)
// NODE_P2P_V2; BIP324 v2 encrypted transport inbound (v1 or v2, as the
// peer starts) and outbound (v2 first, reconnecting with v1 to peers that
// do not speak it, remembered per address for a day); sendheaders
// (BIP130); wtxidrelay (BIP339) on v1 connections, where we insert it into
// the handshake, announcing by wtxid when both sides sent it; sendaddrv2
// (BIP155) and addr/addrv2 learning; feefilter (BIP133) both ways;
// ping/pong every 2 minutes with btcd's stall and idle timeouts (no pong
// within 30 s, nothing received for 5 minutes: disconnect).
//
// Block download: headers first, then blocks of the best header chain
// from every witness peer in parallel (16 in flight per peer) within a
// window of 1024 blocks past the active tip; a block is in flight from one
// peer at a time; one not delivered in 60 s, or the block holding a full
// window back for 5 s, is asked of another peer. Transactions are asked
// of one announcer at a time, the next announcer after notfound, a
// disconnect or 60 s. Progress (header and block heights, blocks/s, ETA)
// is logged every 10 s while behind and exported as btcmesh_p2p_sync_*.
//
// The ban list is a JSON file (banlist.json) in the service's data
// directory, loaded on start. On public networks without --connect the
// address book (btcd's addrmgr, peers.json in the data directory) is
// seeded from DNS when nearly empty and feeds up to 8 outbound peers, one
// per network group.
package p2p
