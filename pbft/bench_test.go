package pbft

import (
	crand "crypto/rand"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/netio/mem"
)

// BenchmarkNormalCaseMem measures closed-loop throughput and latency of
// PBFT on netio/mem at n = 4 with 4 KiB requests and batches of 64, in both
// modes, with the production authentication: MAC vectors on links (the
// cluster's authenticators) and on client requests (Config.RequestAuth's
// default with keys), Ed25519 for certificates. Every client keeps 64
// requests outstanding. One
// goroutine drives the whole cluster, so the figure is the CPU cost of the
// protocol, all four replicas on one core.
//
//	go test ./pbft -run XXX -bench NormalCaseMem -benchtime 20000x
func BenchmarkNormalCaseMem(b *testing.B) {
	for _, sigs := range []string{"ed25519", "hmac"} {
		for _, mode := range []broadcast.Mode{broadcast.ModeFull, broadcast.ModeDigest} {
			b.Run(fmt.Sprintf("%v/n4/4KiB/batch64/%s", mode, sigs), func(b *testing.B) {
				benchNormalCase(b, 4, mode, 4096, 64, 64, sigs == "ed25519")
			})
		}
	}
}

// benchNormalCase runs the closed loop; ed25519 selects Ed25519 certificate
// signatures and MAC-vector requests, else the HMAC OracleSigner for both
// (to show the cost of the protocol without public-key cryptography).
func benchNormalCase(b *testing.B, n int, mode broadcast.Mode, size, batch, window int, ed25519 bool) {
	f := (n - 1) / 3
	rings, err := broadcast.GenerateKeyrings(n, crand.Reader)
	require.NoError(b, err)
	pool := bufpool.MustNew(bufpool.Config{FrameSize: 8192, Frames: 1 << 14})
	protos := make([]broadcast.Protocol, n)
	nodes := make([]*Node, n)
	auth := make([]broadcast.Authenticator, n)
	stores := make([]*broadcast.PayloadStore, n)
	for i := range n {
		stores[i] = broadcast.NewPayloadStore(broadcast.StoreConfig{})
		nd, err := New(Config{Params: broadcast.Params{N: n, F: f, Self: broadcast.NodeID(i), Mode: mode},
			Store: stores[i], Keys: rings[i], Batch: batch, ClientWindow: window, Pipeline: 4, CheckpointInterval: 64,
			Timeout: time.Hour})
		if !ed25519 {
			nd, err = New(Config{Params: broadcast.Params{N: n, F: f, Self: broadcast.NodeID(i), Mode: mode},
				Store: stores[i], Signer: OracleSigner{Self: broadcast.NodeID(i)}, Batch: batch, ClientWindow: window,
				Pipeline: 4, CheckpointInterval: 64, Timeout: time.Hour})
		}
		require.NoError(b, err)
		nodes[i], protos[i] = nd, nd
		auth[i], err = broadcast.NewMAC(rings[i])
		require.NoError(b, err)
	}
	c := mem.NewCluster(mem.NewNetwork(n), protos)
	c.Auth = auth
	c.OnDeliver = func(_ broadcast.NodeID, d broadcast.Delivery) {}
	payload := make([]byte, size)
	submitted := make([][]time.Time, n)
	total, done := 0, 0
	submit := func(i int) {
		payload[0], payload[1], payload[2] = byte(total), byte(total>>8), byte(total>>16)
		payload[3] = byte(i)
		buf, err := pool.Copy(payload)
		require.NoError(b, err)
		submitted[i] = append(submitted[i], time.Now())
		require.NoError(b, c.Submit(broadcast.NodeID(i), buf))
		total++
	}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.SetBytes(int64(size))
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < n && total < b.N; i++ {
		for k := 0; k < window && total < b.N; k++ {
			submit(i)
		}
	}
	var res []Result
	for done < b.N {
		if c.Stabilize(256) == 0 && !c.Pending() {
			b.Fatalf("stalled after %d of %d requests", done, b.N)
		}
		for i, nd := range nodes {
			res = nd.TakeResults(res[:0])
			now := time.Now()
			for _, r := range res {
				lat = append(lat, now.Sub(submitted[i][r.Timestamp-1]))
				done++
				if total < b.N {
					submit(i)
				}
			}
		}
		// Release what was executed: the application is done with it.
		for i := range c.Delivered {
			for _, d := range c.Delivered[i] {
				d.Payload.Release()
			}
			c.Delivered[i] = c.Delivered[i][:0]
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(0, "ns/op")
	c.Close()
	for i, nd := range nodes {
		nd.Close()
		stores[i].Close()
	}
}

// BenchmarkNormalCaseDirect is BenchmarkNormalCaseMem's closed loop (n = 4,
// digest mode, 4 KiB requests, batches of 64, 64 outstanding per client)
// without a network: messages go from Ready straight to the receivers' Step,
// unencoded and unauthenticated, so allocs/op are the protocol's own (the
// replicas and their hosted clients) per request. Certificates use the
// OracleSigner; requests MAC vectors (Keys set).
//
//	go test ./pbft -run XXX -bench NormalCaseDirect -benchtime 20000x -benchmem
func BenchmarkNormalCaseDirect(b *testing.B) {
	const n, f, size, window = 4, 1, 4096, 64
	rings, err := broadcast.GenerateKeyrings(n, crand.Reader)
	require.NoError(b, err)
	pool := bufpool.MustNew(bufpool.Config{FrameSize: 8192, Frames: 1 << 14})
	nodes := make([]*Node, n)
	stores := make([]*broadcast.PayloadStore, n)
	for i := range n {
		stores[i] = broadcast.NewPayloadStore(broadcast.StoreConfig{})
		nodes[i], err = New(Config{Params: broadcast.Params{N: n, F: f, Self: broadcast.NodeID(i), Mode: broadcast.ModeDigest},
			Store: stores[i], Keys: rings[i], Signer: OracleSigner{Self: broadcast.NodeID(i)}, Batch: 64,
			ClientWindow: window, Pipeline: 4, CheckpointInterval: 64, Timeout: time.Hour})
		require.NoError(b, err)
	}
	type inflight struct {
		from, to broadcast.NodeID
		m        broadcast.Message
	}
	var queue []inflight
	payload := make([]byte, size)
	total, done := 0, 0
	submit := func(i int) {
		payload[0], payload[1], payload[2], payload[3] = byte(total), byte(total>>8), byte(total>>16), byte(i)
		buf, err := pool.Copy(payload)
		require.NoError(b, err)
		require.NoError(b, nodes[i].Submit(buf))
		total++
	}
	flush := func(i int) {
		rd := nodes[i].Ready()
		for _, o := range rd.Messages {
			o.Msg.Sender = broadcast.NodeID(i)
			for j := range n {
				if j != i && (o.To == broadcast.Everyone || o.To == broadcast.NodeID(j)) {
					c := o.Msg
					c.Payload = o.Msg.Payload.Retain()
					queue = append(queue, inflight{broadcast.NodeID(i), broadcast.NodeID(j), c})
				}
			}
			o.Msg.Payload.Release()
		}
		for _, d := range rd.Deliveries {
			d.Payload.Release()
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < n && total < b.N; i++ {
		for k := 0; k < window && total < b.N; k++ {
			submit(i)
		}
	}
	var res []Result
	for done < b.N {
		for i := range n {
			flush(i)
		}
		if len(queue) == 0 {
			b.Fatalf("stalled after %d of %d requests", done, b.N)
		}
		batch := queue
		queue = nil
		for k := range batch {
			in := &batch[k]
			_ = nodes[in.to].Step(in.from, &in.m)
			in.m.Payload.Release()
			in.m = broadcast.Message{}
			flush(int(in.to))
		}
		if cap(batch) > cap(queue) {
			queue = append(batch[:0], queue...)
		}
		for i, nd := range nodes {
			res = nd.TakeResults(res[:0])
			done += len(res)
			for range res {
				if total < b.N {
					submit(i)
				}
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(0, "ns/op")
	for i, nd := range nodes {
		nd.Close()
		stores[i].Close()
	}
	for _, in := range queue {
		in.m.Payload.Release()
	}
}
