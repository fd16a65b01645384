package bracha_test

import (
	"encoding/binary"
	"runtime"
	"testing"
	"time"

	"github.com/onecast/onecast/bracha"
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

// inproc drives nodes in one goroutine with a FIFO of messages passed by
// reference: the protocol's own cost, without a transport or
// authenticators. It allocates nothing once its queue has grown.
type inproc struct {
	nodes []*bracha.Node
	queue []envelope
	head  int

	deliveries, remoteBytes, recvPayload uint64
}

type envelope struct {
	from, to broadcast.NodeID
	msg      broadcast.Message
}

func (d *inproc) flush(id broadcast.NodeID) {
	rd := d.nodes[id].Ready()
	for i := range rd.Messages {
		out := &rd.Messages[i]
		if out.To == broadcast.Everyone {
			for j := range d.nodes {
				if broadcast.NodeID(j) != id {
					m := out.Msg
					m.Payload = m.Payload.Retain()
					d.queue = append(d.queue, envelope{from: id, to: broadcast.NodeID(j), msg: m})
				}
			}
		} else {
			m := out.Msg
			m.Payload = m.Payload.Retain()
			d.queue = append(d.queue, envelope{from: id, to: out.To, msg: m})
		}
		out.Msg.Payload.Release()
	}
	for _, dl := range rd.Deliveries {
		d.deliveries++
		if dl.Instance.Origin != id {
			d.remoteBytes += uint64(dl.Payload.Len())
		}
		dl.Payload.Release()
	}
}

func (d *inproc) run() {
	for d.head < len(d.queue) {
		e := &d.queue[d.head]
		d.head++
		to := e.to
		d.recvPayload += uint64(e.msg.Payload.Len())
		if err := d.nodes[to].Step(e.from, &e.msg); err != nil {
			panic(err)
		}
		e.msg.Payload.Release()
		*e = envelope{}
		d.flush(to) // may grow d.queue: e is stale from here
	}
	d.queue, d.head = d.queue[:0], 0
}

// BenchmarkDeliver measures one broadcast of a 4 KiB payload to n = 4
// nodes (origins round-robin) until every node delivered it: deliveries
// per second over the cluster, allocations per delivery, and the payload
// duplication factor the receivers saw.
func BenchmarkDeliver(b *testing.B) {
	const n, size = 4, 4 << 10
	for _, mode := range []broadcast.Mode{broadcast.ModeFull, broadcast.ModeDigest} {
		b.Run(mode.String(), func(b *testing.B) {
			pool := bufpool.MustNew(bufpool.Config{FrameSize: size, Frames: 16384, Name: "bench"})
			d := &inproc{}
			for i := range n {
				nd, err := bracha.New(bracha.Config{N: n, F: 1, Self: broadcast.NodeID(i), Mode: mode, Pool: pool})
				if err != nil {
					b.Fatal(err)
				}
				d.nodes = append(d.nodes, nd)
			}
			defer func() {
				for _, nd := range d.nodes {
					nd.Close()
				}
			}()
			submit := func(i int, tag uint64) {
				p, err := pool.Alloc(size)
				if err != nil {
					b.Fatal(err)
				}
				// A distinct payload each time. p is a fresh single-frame
				// buffer this loop owns alone, so writing through Bytes is
				// safe (WritableSegments would allocate its iterator).
				binary.LittleEndian.PutUint64(p.Bytes(), tag)
				origin := broadcast.NodeID(i % n)
				if err := d.nodes[origin].Broadcast(p); err != nil {
					b.Fatal(err)
				}
				d.flush(origin)
				d.run()
			}
			for i := range 6000 { // warm up queues, maps, free lists and the retained set (MaxRetained 4096)
				submit(i, 1<<40+uint64(i))
			}
			d.deliveries, d.remoteBytes, d.recvPayload = 0, 0, 0
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			b.ReportAllocs()
			b.SetBytes(size)
			start := time.Now()
			i := 0
			for b.Loop() {
				submit(i, uint64(i))
				i++
			}
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			if d.deliveries != uint64(n*i) {
				b.Fatalf("%d deliveries for %d broadcasts", d.deliveries, i)
			}
			b.ReportMetric(float64(d.deliveries)/elapsed.Seconds(), "deliveries/s")
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(d.deliveries), "allocs/delivery")
			b.ReportMetric(float64(d.recvPayload)/float64(d.remoteBytes), "dupfactor")
		})
	}
}
