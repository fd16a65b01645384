package main

import (
	"log/slog"

	"github.com/onecast/onecast/bench"
	"github.com/onecast/onecast/bracha"
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/dolevstrong"
	"github.com/onecast/onecast/pbft"
)

// protocolSpecs lists every protocol the library has, for the commands that
// run any protocol. This is the one list: a new protocol is one line here.
func protocolSpecs() []broadcast.Spec {
	return []broadcast.Spec{bracha.Spec, pbft.Spec, dolevstrong.Spec}
}

// clusterFactories lists the cluster kinds `onecast bench` can start. exe
// is the onecast binary (for local clusters); controls are the control
// addresses of a remote cluster's nodes (nil: no remote cluster).
func clusterFactories(logger *slog.Logger, exe string, controls []string) map[string]bench.ClusterFactory {
	f := map[string]bench.ClusterFactory{
		"inproc": bench.Inproc(logger),
		"netns":  bench.Netns(logger),
		"local":  bench.Local(exe, logger),
	}
	if controls != nil {
		f["remote"] = bench.Remote(controls, logger)
	}
	return f
}
