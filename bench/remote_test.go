package bench

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/bracha"
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

// controlSink forwards an in-process cluster's deliveries to each node's
// control server, as `onecast node --control` does in its own process.
type controlSink struct{ servers []*ControlServer }

func (s *controlSink) Delivered(id broadcast.NodeID, p bufpool.Buf, at time.Time) {
	s.servers[id].Delivered(p, at)
}
func (s *controlSink) Record(uint64, time.Time, time.Time) {}

// TestRemoteClusterThroughControlPorts runs a point through the remote
// cluster kind against four nodes that serve control ports on loopback.
func TestRemoteClusterThroughControlPorts(t *testing.T) {
	pt := shortPoint(broadcast.ModeDigest, "mem")
	sink := &controlSink{servers: make([]*ControlServer, pt.N)}
	c, _, err := startInproc(pt, bracha.Spec, sink, nil)
	require.NoError(t, err)
	defer c.Close()
	controls := make([]string, pt.N)
	for i := range pt.N {
		id := broadcast.NodeID(i)
		srv, err := NewControlServer(ControlConfig{
			Addr:     "127.0.0.1:0",
			Submit:   func(_ context.Context, p bufpool.Buf) error { return c.Submit(id, p) },
			Counters: func() NodeCounters { return c.Counters(id) },
			Info:     NodeInfo{ID: i, Protocol: "bracha", Mode: "digest", N: pt.N, F: pt.F, Transport: "mem"},
		})
		require.NoError(t, err)
		defer srv.Close()
		sink.servers[i] = srv
		controls[i] = srv.Addr()
	}

	remote := pt
	remote.Cluster = "remote"
	// A longer window than the in-process tests': payloads take an HTTP
	// round trip here, on a machine that may be running other tests.
	remote.Warmup, remote.Duration = time.Second, 1500*time.Millisecond
	opts := Options{Specs: []broadcast.Spec{bracha.Spec}, Clusters: map[string]ClusterFactory{"remote": Remote(controls, nil)}}
	results, _ := Run(context.Background(), []Point{remote}, opts)
	require.Len(t, results, 1)
	r := results[0]
	require.Empty(t, r.Error)
	assert.Greater(t, r.Deliveries, uint64(0))
	assert.InDelta(t, 1.0, r.PayloadDupFactor, 0.02)
	assert.Greater(t, r.LatencyP50Ms, 0.0)

	wrong := remote
	wrong.Mode = broadcast.ModeFull
	results, _ = Run(context.Background(), []Point{wrong}, opts)
	require.Len(t, results, 1)
	assert.Contains(t, results[0].Error, "mode digest", "a point that does not match the running nodes is refused")
}

// recordSink counts the records a remote cluster reports.
type recordSink struct{ n atomic.Int64 }

func (s *recordSink) Delivered(broadcast.NodeID, bufpool.Buf, time.Time) {}
func (s *recordSink) Record(uint64, time.Time, time.Time)                { s.n.Add(1) }

// TestRemoteStreamsAreOpenWhenTheClusterIsReturned is the cause of "1
// payloads were not delivered by every correct node" on a healthy remote
// cluster: the bench submitted its first payloads before the nodes had
// registered its delivery streams, so their first deliveries were never
// reported. A delivery right after the factory returns must be seen.
func TestRemoteStreamsAreOpenWhenTheClusterIsReturned(t *testing.T) {
	const n = 4
	controls := make([]string, n)
	servers := make([]*ControlServer, n)
	for i := range n {
		srv, err := NewControlServer(ControlConfig{
			Addr:     "127.0.0.1:0",
			Submit:   func(_ context.Context, p bufpool.Buf) error { p.Release(); return nil },
			Counters: func() NodeCounters { return NodeCounters{} },
			Info:     NodeInfo{ID: i, Protocol: "bracha", Mode: "digest", N: n, F: 1, Transport: "udp"},
		})
		require.NoError(t, err)
		defer srv.Close()
		servers[i], controls[i] = srv, srv.Addr()
	}
	pt := Point{Protocol: "bracha", Mode: broadcast.ModeDigest, Transport: "udp", Cluster: "remote", N: n, F: 1}
	sink := &recordSink{}
	c, _, err := Remote(controls, nil)(context.Background(), pt, bracha.Spec, sink)
	require.NoError(t, err)
	defer c.Close()
	payload := make([]byte, 64)
	stamp(payload, 1, time.Now())
	for _, srv := range servers {
		srv.Delivered(bufpool.Wrap(payload), time.Now())
	}
	require.Eventually(t, func() bool { return sink.n.Load() == n }, 5*time.Second, 5*time.Millisecond,
		"every node's first delivery is reported")
}
