// Package test holds end-to-end and interop tests that span services: they
// build the btcmesh binary (or use $BTCMESH_BIN), start it as a real node
// or as one process per service joined by a real NATS server and gRPC, and
// drive it only from outside, through `btcmesh ctl`.
package test
