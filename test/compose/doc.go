// Package compose tests the docker-compose dev cluster (compose.yaml)
// from the outside: the test (build tag "compose") drives the published
// 127.0.0.1 ports with `btcmesh ctl`, signs real transactions, and kills a
// txvalidator container while blocks are being validated to show no work
// is lost. scripts/compose-test.sh builds the images, starts the cluster,
// runs it and tears everything down:
//
//	scripts/compose-test.sh
package compose
