package node

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/netio/config"
)

func xdpTestCluster(t *testing.T, port int) *config.Cluster {
	c, err := config.Generate(config.GenerateOptions{N: 4, Dir: t.TempDir(), BasePort: port})
	require.NoError(t, err)
	return c
}

// TestXDPWithoutPrivilegesIsOneClearError checks that a node asked to run
// over AF_XDP by a process without the capabilities (simulated by the
// check hook) refuses to start, naming the cause and the interface.
func TestXDPWithoutPrivilegesIsOneClearError(t *testing.T) {
	c := xdpTestCluster(t, 27700)
	_, err := Start(Config{Cluster: c, ID: 1, Logger: slog.New(slog.DiscardHandler),
		Transport:  &config.Transport{Kind: "xdp", Iface: "lo"},
		privileged: func() error { return ErrXDPNotPermitted }})
	require.ErrorIs(t, err, ErrXDPNotPermitted)
	assert.ErrorContains(t, err, "node 1: AF_XDP on lo queue 0")
}

// TestCheckPrivilegesMatchesTheProcess runs the capability check itself:
// root passes, and the check's verdict is the one Start acts on.
func TestCheckPrivilegesMatchesTheProcess(t *testing.T) {
	err := checkPrivileges()
	if err == nil {
		return // root or capabilities granted
	}
	assert.ErrorIs(t, err, ErrXDPNotPermitted)
}

// TestXDPOnAMissingInterfaceIsOneClearError checks the error for an
// interface that does not exist.
func TestXDPOnAMissingInterfaceIsOneClearError(t *testing.T) {
	c := xdpTestCluster(t, 27710)
	_, err := Start(Config{Cluster: c, ID: 2, Logger: slog.New(slog.DiscardHandler),
		Transport:  &config.Transport{Kind: "xdp", Iface: "nosuch0"},
		privileged: func() error { return nil }})
	require.ErrorIs(t, err, ErrXDPNoInterface)
	assert.ErrorContains(t, err, "node 2: AF_XDP on nosuch0 queue 0: no such interface")
}

// TestXDPFallbackRunsOverUDP checks that with fallback: udp a node that
// cannot use AF_XDP (no privileges; no such interface) runs over UDP,
// says why in Metrics, and delivers with the others.
func TestXDPFallbackRunsOverUDP(t *testing.T) {
	c := xdpTestCluster(t, 27720)
	out := make(chan broadcast.Delivery, 16)
	var nodes []*Node
	for i := range c.N() {
		cfg := Config{Cluster: c, ID: i, Deliveries: out, Frames: 1024, Logger: slog.New(slog.DiscardHandler)}
		switch i {
		case 1:
			cfg.Transport = &config.Transport{Kind: "xdp", Iface: "lo", Fallback: "udp"}
			cfg.privileged = func() error { return ErrXDPNotPermitted }
		case 3:
			cfg.Transport = &config.Transport{Kind: "xdp", Iface: "nosuch0", Fallback: "udp"}
			cfg.privileged = func() error { return nil }
		}
		nd, err := Start(cfg)
		require.NoError(t, err, "node %d", i)
		t.Cleanup(func() { assert.NoError(t, nd.Close()) })
		nodes = append(nodes, nd)
	}
	for i, want := range []string{"", "not permitted", "", "no such interface"} {
		m := nodes[i].Metrics()
		assert.Equal(t, "udp", m.Transport, "node %d", i)
		if want == "" {
			assert.Empty(t, m.Fallback, "node %d", i)
		} else {
			assert.Contains(t, m.Fallback, want, "node %d", i)
		}
	}
	b, err := nodes[1].Pool().Copy([]byte("over udp after all"))
	require.NoError(t, err)
	require.NoError(t, nodes[1].Submit(context.Background(), b))
	for i := range c.N() {
		select {
		case d := <-out:
			assert.Equal(t, "over udp after all", string(d.Payload.Bytes()))
			d.Payload.Release()
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d deliveries", i, c.N())
		}
	}
}
