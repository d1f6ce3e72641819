// Package bus holds everything services share about NATS: subject names,
// JetStream streams and the block-store bucket, protobuf publishing, the
// embedded server used in single-process mode, and connection helpers.
package bus

import "strings"

// Queue groups that load-balance work across replicas.
const (
	// ValidatorQueue is the queue group of txvalidator workers.
	ValidatorQueue = "txvalidator"
	// MempoolQueue is the queue group of miner replicas taking relayed txs.
	MempoolQueue = "miner"
	// BlockConsumer is the durable JetStream consumer of received blocks.
	BlockConsumer = "blockvalidator"
)

// Subjects names every subject of one network, shaped
// btcmesh.<network>.<entity>.<event>.
type Subjects struct {
	network string
}

// NewSubjects returns the subjects of network (regtest, mainnet, ...).
func NewSubjects(network string) Subjects { return Subjects{network: network} }

func (s Subjects) subject(entity, event string) string {
	return "btcmesh." + s.network + "." + entity + "." + event
}

// ChainTip carries events.v1.ChainTip when the active tip moves.
func (s Subjects) ChainTip() string { return s.subject("chain", "tip") }

// HeaderTip carries events.v1.HeaderTip when the best header moves.
func (s Subjects) HeaderTip() string { return s.subject("header", "tip") }

// BlockReceived carries events.v1.BlockReceived through JetStream.
func (s Subjects) BlockReceived() string { return s.subject("block", "received") }

// TxReceived carries events.v1.TxReceived from peers to the mempool.
func (s Subjects) TxReceived() string { return s.subject("tx", "received") }

// TxAccepted carries events.v1.TxAccepted from the mempool to relay.
func (s Subjects) TxAccepted() string { return s.subject("tx", "accepted") }

// ScriptValidate is the request/reply subject of the txvalidator pool
// (txvalidator.v1.ValidateRequest in, ValidateResponse out).
func (s Subjects) ScriptValidate() string { return s.subject("script", "validate") }

// BlockStream is the JetStream stream holding block work.
func (s Subjects) BlockStream() string { return "BTCMESH_" + strings.ToUpper(s.network) + "_BLOCKS" }

// BlockBucket is the JetStream object-store bucket holding raw blocks.
func (s Subjects) BlockBucket() string { return "btcmesh-" + s.network + "-blocks" }
