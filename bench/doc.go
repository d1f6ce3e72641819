// Package bench measures btcmesh's block validation against the raw
// secp256k1 verification rate of the machine and against btcd's
// blockchain.ProcessBlock, in the same run (the machine is shared, so only
// ratios measured side by side mean anything).
//
// `make bench` runs TestConsensusTable with BTCMESH_BENCH=1 and prints the
// table; without the variable the table is skipped and only a small smoke
// test checks that both chains accept the generated blocks.
package bench
