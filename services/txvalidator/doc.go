// Package txvalidator is the stateless transaction validator service.
//
// It serves btcmesh.txvalidator.v1.TxValidatorService over gRPC and, on
// NATS, answers txvalidator.v1.ValidateRequest batches sent to the
// bus.ValidatorQueue queue group on the network's script.validate subject
// (the client side is internal/scriptpool). Both paths run the same code:
// decoding, context-free sanity, finality, BIP68 sequence locks, amounts,
// fees and coinbase maturity, sigop cost, weight, optional standard policy
// and, in parallel over a fixed number of workers, every input script
// (single-key ECDSA signatures first with libsecp256k1, which settles a
// standard P2WPKH input without the script engine; see preverify.go).
//
// It keeps no durable state: one signature cache per process and, per
// transaction, one set of precomputed sighash midstates shared by all its
// inputs. It publishes nothing.
package txvalidator
