// Package utxostore is btcmesh's UTXO set service.
//
// It serves btcmesh.utxostore.v1.UtxoStoreService over gRPC: batched
// outpoint lookups, atomic ConnectBlock/DisconnectBlock with undo data,
// PrepareConnect, the tip the set reflects, and gettxoutsetinfo-style
// statistics. It neither
// consumes nor publishes NATS messages: blockvalidator drives it over gRPC
// and announces new tips itself. It trusts its caller to have validated the
// block (proof of work, scripts, amounts, BIP30); it only enforces what the
// set itself can see: the block extends the tip and every input spends a
// coin of the set (or an earlier output of the same block) exactly once.
// A block whose inputs it cannot find is refused whole (MissingInputs).
// Spent coins are never taken from the caller: they come from the coin
// cache or from badger (see store.connect).
//
// Lookups and connects come in message forms and in compact forms for a
// block's worth of data (what blockvalidator sends): packed outpoints
// answered with packed coin records (internal/packed), and a block's
// changes instead of the serialized block (internal/blockchanges).
//
// PrepareConnect is a connect's first pass without its second: it
// resolves every coin a block spends on the tip (and, when asked, checks
// BIP30 against the set), answers those coins and keeps the work. The
// blockvalidator uses it as its lookup for a block whose parent is the
// tip, and then connects the block by naming it (prepared_hash), so the
// set is searched once per block instead of twice, and the connect on the
// block's critical path only records. The store keeps one preparation,
// valid while the tip is the block's parent; anything else makes the named
// connect NotFound, and the caller sends the changes instead.
//
// # Storage
//
// The set lives in a badger database in Config.DataDir. Keys:
//
//	'c' || txid (32 bytes, internal order) || vout (uint32 big-endian) -> coin
//	'u' || block hash (32 bytes)                                     -> undo
//	't'                                                              -> tip
//	'm'                                                              -> meta
//
// A coin value is internal/coin's encoding: uvarint(height<<1 | coinbase)
// || uvarint(amount) || uvarint(len(pkScript)) || pkScript. Undo data is
// uvarint(n) followed by the n spent coins (same encoding) in the block's
// input order, coinbase excluded. The tip record is hash(32) || height(int32 BE) ||
// txouts(uint64 BE) || total amount(uint64 BE), so the counters used for
// metrics always agree with the set they describe. The meta record holds a
// schema version and the network's genesis hash, so a data directory of
// another network is refused.
//
// An empty store starts at the network's genesis block (height 0) with an
// empty set: like Bitcoin Core, the genesis coinbase is never spendable.
// Provably unspendable outputs (OP_RETURN scripts, scripts over 10,000
// bytes) are not stored, as in Core.
//
// # Coin cache
//
// A bounded in-memory cache (--utxostore-coin-cache-mb) holds coins known
// to be unspent at the tip: outputs of recently connected blocks and
// coins GetUtxos read from disk. It is exact, not a hint: every commit
// removes the coins it spends and adds the ones it creates, under the
// same lock that publishes the new tip, and a coin read from a snapshot is
// added only while the cache still reflects that snapshot's tip. Since
// blockvalidator looks every input up right before ConnectBlock (when
// it did not prepare the block), a connect normally reads nothing from
// badger: the cache answers its spends, and only a new coinbase's
// outputs are checked for an overwrite (with BIP30/BIP34, which the
// caller enforces, nothing else can overwrite a coin). GetUtxos answers from the cache too, when the badger
// snapshot it reads the rest from is at the cache's tip.
//
// ConnectBlock answers as soon as every spend is resolved (the block can
// no longer fail); recording the block in the pending changes, the cache
// and the filter finishes after the answer, under the locks that every
// reader and writer of the set takes, so no one sees the set without it.
// With --utxostore-flush-interval 0 the answer waits for the block's write.
//
// A Bloom filter of the outpoints badger may hold (filter.go,
// --utxostore-filter-mb) answers lookups of outpoints that never held a
// coin, such as every BIP30 check, without a badger read. It is built in
// the background from badger's keys at open (lookups read badger until
// then) and takes every coin as it is created or restored; it is rebuilt
// once spent coins have filled it.
//
// Undo records are kept for every connected block (as Core keeps rev*.dat
// without pruning) and removed only when their block is disconnected.
//
// # Statistics
//
// GetStats scans the whole set in one snapshot: transactions (distinct
// txids), txouts, bogosize (Core's 50 + len(pkScript) per output),
// total_amount, and hash_serialized (SHA256d over the entries in key order,
// serialized as documented on writeCoinSer). disk_size is the space the
// store's files occupy, measured from the files (see diskSize).
//
// # Atomicity and durability
//
// Each ConnectBlock and DisconnectBlock is ONE badger transaction (spends,
// new outputs, undo record and tip together), so after a crash the store
// holds either the old or the new state, never a mix. ConnectBlock's
// transaction only writes (all reads happen before it, mostly from the
// coin cache), and an output created and spent in the same block is not
// written at all. badger's WriteBatch is not used: it splits a large batch
// into several commits, which would break this atomicity. Badger caps a
// transaction at 15% of the memtable size and at that divided by ~100
// bytes in entries; the default 128 MiB memtable
// (--utxostore-memtable-mb) allows ~19 MiB and ~200k entries per
// transaction, enough for any 4 MB block (at most ~111k outputs or ~24k
// inputs). Connected and disconnected blocks change an in-memory layer
// first (pending.go), as Bitcoin Core's coins cache does; a flush writes
// it with the tip record in one fsynced transaction every
// --utxostore-flush-interval (10 s), sooner when it fills a sixth of the
// memtable, and at shutdown. The timed and size-triggered flushes run in
// the background: the layer is frozen and written while blocks go on
// changing a new layer above it, so a connect never waits for badger
// (unless two layers are full). Outputs created and spent between two
// flushes never reach badger. A crash at any moment leaves badger at the last
// flush, a consistent set; blockvalidator then connects the blocks since
// again from the block store (the store's tip is the truth).
package utxostore
