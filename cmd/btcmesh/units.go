package main

import (
	"flag"

	"github.com/btcmesh/btcmesh/internal/runner"
	"github.com/btcmesh/btcmesh/services/blockvalidator"
	"github.com/btcmesh/btcmesh/services/headers"
	"github.com/btcmesh/btcmesh/services/miner"
	"github.com/btcmesh/btcmesh/services/p2p"
	"github.com/btcmesh/btcmesh/services/txvalidator"
	"github.com/btcmesh/btcmesh/services/utxostore"
)

// allUnits returns fresh adapters for every service, in start order.
func allUnits() []unit {
	return []unit{
		&utxostoreUnit{cfg: utxostore.DefaultConfig()},
		&headersUnit{},
		&txvalidatorUnit{cfg: txvalidator.DefaultConfig()},
		&blockvalidatorUnit{},
		&minerUnit{cfg: miner.DefaultConfig()},
		&p2pUnit{},
	}
}

type utxostoreUnit struct{ cfg utxostore.Config }

func (u *utxostoreUnit) name() string              { return "utxostore" }
func (u *utxostoreUnit) register(fs *flag.FlagSet) { u.cfg.RegisterFlags(fs) }
func (u *utxostoreUnit) needs() []string           { return nil }
func (u *utxostoreUnit) configure(w wiring) error {
	u.cfg.DataDir = w.dir
	return u.cfg.Validate()
}
func (u *utxostoreUnit) build(d runner.Deps) (runner.Module, error) { return utxostore.New(u.cfg, d) }

type headersUnit struct{ cfg headers.Config }

func (u *headersUnit) name() string              { return "headers" }
func (u *headersUnit) register(fs *flag.FlagSet) { u.cfg.RegisterFlags(fs) }
func (u *headersUnit) needs() []string           { return nil }
func (u *headersUnit) configure(w wiring) error {
	u.cfg.DataDir = w.dir
	return u.cfg.Validate()
}
func (u *headersUnit) build(d runner.Deps) (runner.Module, error) { return headers.New(u.cfg, d) }

type txvalidatorUnit struct{ cfg txvalidator.Config }

func (u *txvalidatorUnit) name() string              { return "txvalidator" }
func (u *txvalidatorUnit) register(fs *flag.FlagSet) { u.cfg.RegisterFlags(fs) }
func (u *txvalidatorUnit) needs() []string           { return nil }
func (u *txvalidatorUnit) configure(_ wiring) error {
	return u.cfg.Validate()
}
func (u *txvalidatorUnit) build(d runner.Deps) (runner.Module, error) {
	return txvalidator.New(u.cfg, d)
}

type blockvalidatorUnit struct{ cfg blockvalidator.Config }

func (u *blockvalidatorUnit) name() string              { return "blockvalidator" }
func (u *blockvalidatorUnit) register(fs *flag.FlagSet) { u.cfg.RegisterFlags(fs) }
func (u *blockvalidatorUnit) needs() []string           { return []string{"headers", "utxostore"} }
func (u *blockvalidatorUnit) configure(w wiring) error {
	u.cfg.HeadersAddr, u.cfg.UtxoStoreAddr = w.addr["headers"], w.addr["utxostore"]
	u.cfg.Replicas = w.replicas
	return u.cfg.Validate()
}
func (u *blockvalidatorUnit) build(d runner.Deps) (runner.Module, error) {
	return blockvalidator.New(u.cfg, d)
}

type minerUnit struct{ cfg miner.Config }

func (u *minerUnit) name() string              { return "miner" }
func (u *minerUnit) register(fs *flag.FlagSet) { u.cfg.RegisterFlags(fs) }
func (u *minerUnit) needs() []string           { return []string{"headers", "utxostore", "blockvalidator"} }
func (u *minerUnit) configure(w wiring) error {
	u.cfg.HeadersAddr, u.cfg.UtxoStoreAddr, u.cfg.BlockValidatorAddr = w.addr["headers"], w.addr["utxostore"], w.addr["blockvalidator"]
	return u.cfg.Validate()
}
func (u *minerUnit) build(d runner.Deps) (runner.Module, error) { return miner.New(u.cfg, d) }

type p2pUnit struct{ cfg p2p.Config }

func (u *p2pUnit) name() string              { return "p2p" }
func (u *p2pUnit) register(fs *flag.FlagSet) { u.cfg.RegisterFlags(fs) }
func (u *p2pUnit) needs() []string           { return []string{"headers", "blockvalidator"} }
func (u *p2pUnit) configure(w wiring) error {
	u.cfg.HeadersAddr, u.cfg.BlockValidatorAddr, u.cfg.DataDir = w.addr["headers"], w.addr["blockvalidator"], w.dir
	return u.cfg.Validate()
}
func (u *p2pUnit) build(d runner.Deps) (runner.Module, error) { return p2p.New(u.cfg, d) }
