package bench

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/onecast/onecast/bracha"
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/netio/netns"
	"github.com/onecast/onecast/pbft"
)

// TestNetnsByzantineWireBehaviours runs a short namespace point per wire
// behaviour, with one Byzantine node (the cluster's real keys, the same
// transport) beside three correct ones: every payload is delivered by
// every correct node, and the refusal counter the behaviour aims at moved.
func TestNetnsByzantineWireBehaviours(t *testing.T) {
	ok, why := netns.Available()
	env.Need(t, ok, "netns cluster: "+why)
	// PBFT with an answer budget of 1 MiB/s per peer: at the default
	// (64 MiB/s) this host's replicas spend themselves answering a
	// fetch-flooder and leave payloads undelivered past the drain (the
	// budget never bites: the transport is the bottleneck first). That
	// is reported, not hidden: see the issue 18 report.
	budgeted := pbft.SpecWith("pbft", func(c *pbft.Config) { c.FetchAnswerRate = 1 << 20 })
	opts := Options{Specs: []broadcast.Spec{bracha.Spec, budgeted}, Clusters: map[string]ClusterFactory{"netns": Netns(nil)}}
	type tc struct {
		protocol, transport, behaviour string
		moved                          func(Refusals) uint64 // the counter the behaviour drives, if one must move
	}
	cases := []tc{
		{"bracha", "udp", "partial-large", nil},
		{"bracha", "udp", "fetch-flood", func(r Refusals) uint64 { return r.FetchRefused }},
		{"bracha", "udp", "held-spray", nil},
		{"bracha", "udp", "garbage", func(r Refusals) uint64 { return r.LinkRejected }},
		{"bracha", "udp", "replay", nil},
		{"bracha", "udp", "ack-withhold", nil},
		{"bracha", "xdp", "garbage", func(r Refusals) uint64 { return r.LinkRejected }},
		{"pbft", "udp", "fetch-flood", func(r Refusals) uint64 { return r.FetchRefused }},
		{"pbft", "udp", "future-view", func(r Refusals) uint64 { return r.FutureStripped }},
	}
	var points []Point
	for _, c := range cases {
		pt := shortPoint(broadcast.ModeDigest, c.transport)
		pt.Protocol, pt.Cluster = c.protocol, "netns"
		pt.Byzantine = []Byzantine{{Count: 1, Behaviour: c.behaviour}}
		points = append(points, pt)
	}
	results, interrupted := Run(context.Background(), points, opts)
	require.False(t, interrupted)
	require.Len(t, results, len(cases))
	for i, r := range results {
		c := cases[i]
		name := fmt.Sprintf("%s/%s/%s", c.protocol, c.transport, c.behaviour)
		require.Empty(t, r.Error, name)
		assert.Positive(t, r.Deliveries, name)
		assert.Zero(t, r.Incomplete, "%s: every payload delivered by every correct node", name)
		if c.moved != nil {
			assert.Positive(t, c.moved(r.Refusals), "%s: the refusal counter it aims at: %+v", name, r.Refusals)
		}
		t.Logf("%s: %.0f deliveries/s, rss %.0f MB, %+v", name, r.DeliveriesPerSec, r.PeakRSSMB, r.Refusals)
	}
}

// TestNetnsFetchFloodedReplicaSendsItsBudget floods PBFT replicas with
// FETCHes for payloads they hold, with an answer budget of 256 KiB/s per
// asking peer, and reads what each correct replica's interface sent (the
// kernel's counter in its namespace, not the node's): over an idle cluster
// it is the answers, within the budget, plus the frames' headers (the
// answers' fragments, the link's acks of the flood).
func TestNetnsFetchFloodedReplicaSendsItsBudget(t *testing.T) {
	ok, why := netns.Available()
	env.Need(t, ok, "netns cluster: "+why)
	const rate = 256 << 10
	spec := pbft.SpecWith("pbft", func(c *pbft.Config) { c.FetchAnswerRate = rate })
	pt := shortPoint(broadcast.ModeDigest, "udp")
	pt.Protocol, pt.Cluster = "pbft", "netns"
	pt.Byzantine = []Byzantine{{Count: 1, Behaviour: "fetch-flood"}}
	tr := newTracker(pt.N-1, 1<<10, 0)
	cl, _, err := startNetns(pt, spec, tr, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	c := cl.(*inprocCluster)
	defer c.Close()

	// Payloads for the replicas to hold (fewer than a checkpoint interval,
	// so none is collected).
	const payloads = 16
	for i := range payloads {
		b := make([]byte, 16<<10)
		fillPattern(b, uint64(i+1))
		require.NoError(t, c.Submit(0, bufpool.Wrap(b)))
	}
	require.Eventually(t, func() bool {
		for _, id := range c.Correct() {
			if c.Counters(id).Metrics.Deliveries < payloads {
				return false
			}
		}
		return true
	}, 10*time.Second, 10*time.Millisecond)
	time.Sleep(300 * time.Millisecond) // the first burst of answers is spent

	txBytes := func(id broadcast.NodeID) (n, pk uint64) {
		require.NoError(t, c.topo.Do(int(id), func() error {
			l, err := netlink.LinkByName(c.topo.Nodes[id].Ifname)
			if err != nil {
				return err
			}
			n, pk = l.Attrs().Statistics.TxBytes, l.Attrs().Statistics.TxPackets
			return nil
		}))
		return n, pk
	}
	before := map[broadcast.NodeID]uint64{}
	beforePk := map[broadcast.NodeID]uint64{}
	refused := map[broadcast.NodeID]uint64{}
	for _, id := range c.Correct() {
		before[id], beforePk[id] = txBytes(id)
		refused[id] = c.Counters(id).Refusals.FetchRefused
	}
	const window = 2 * time.Second
	start := time.Now()
	time.Sleep(window)
	elapsed := time.Since(start).Seconds()
	for _, id := range c.Correct() {
		sent, pk := txBytes(id)
		sent -= before[id]
		pk -= beforePk[id]
		// The budget's payload bytes, one answer beyond it (the bucket may
		// go negative by one), and per packet at most the headers of a
		// frame (Ethernet, IPv4, UDP, link and onecast): the answers'
		// fragments and the link's acks of the flood.
		const perPacket = 14 + 20 + 8 + 48 + 72
		limit := uint64(rate*elapsed) + 16<<10 + pk*perPacket
		t.Logf("replica %d: interface sent %d bytes in %d packets in %.1f s (budget %d B/s, limit %d), refused %d fetches",
			id, sent, pk, elapsed, rate, limit, c.Counters(id).Refusals.FetchRefused-refused[id])
		assert.LessOrEqual(t, sent, limit, "replica %d sends the flooder at most its answer budget", id)
		assert.Greater(t, c.Counters(id).Refusals.FetchRefused, refused[id], "replica %d refuses the flood beyond it", id)
		assert.Greater(t, sent, uint64(rate*elapsed/4), "replica %d answers within the budget", id)
	}
}
