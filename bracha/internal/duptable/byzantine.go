package main

import (
	"fmt"
	"time"

	"github.com/onecast/onecast/bracha"
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/netio/mem"
)

// withholder is a Byzantine node of the second table: it sends what was
// queued, and answers FETCH with wrong bytes when junk is set.
type withholder struct {
	pool *bufpool.Pool
	out  []broadcast.Outbound
	junk bool
}

func (w *withholder) queue(to broadcast.NodeID, t broadcast.MsgType, in broadcast.Instance, d broadcast.Digest, plen int, p []byte) {
	m := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoBracha, Type: t, Instance: in, Digest: d, PayloadLen: uint32(plen)}}
	if p != nil {
		b, err := w.pool.Copy(p)
		if err != nil {
			panic(err)
		}
		m.Payload = b
		m.Flags |= broadcast.HasPayload
	}
	w.out = append(w.out, broadcast.Outbound{To: to, Msg: m})
}

func (w *withholder) Step(from broadcast.NodeID, m *broadcast.Message) error {
	if m.Type == broadcast.TypeFetch && w.junk {
		w.queue(from, broadcast.TypePayload, m.Instance, m.Digest, int(m.PayloadLen), make([]byte, m.PayloadLen))
	}
	return nil
}
func (w *withholder) Tick(time.Duration)         {}
func (w *withholder) Submit(p bufpool.Buf) error { p.Release(); return nil }
func (w *withholder) Ready() broadcast.Ready {
	rd := broadcast.Ready{Messages: w.out}
	w.out = nil
	return rd
}

// withheld measures digest mode against a Byzantine origin (node 0) that
// gives each payload to only f+1 correct nodes; the f Byzantine nodes ECHO
// and READY its digest to all, and answer FETCH with junk or not at all.
// It returns the mean payload and wire factors over the correct nodes and
// the FETCHes sent per payload a node had to fetch.
func withheld(n, size, k int, junk bool) (payload, wire, fetchesPerFetch float64, err error) {
	f := (n - 1) / 3
	pool := bufpool.MustNew(bufpool.Config{FrameSize: 16 << 10, Frames: 16 * k * (size/(16<<10) + 1) * n, Name: "withheld"})
	nodes := make([]broadcast.Protocol, n)
	var byz []*withholder
	var correct []*bracha.Node
	for i := range n {
		if i < f {
			w := &withholder{pool: pool, junk: junk}
			byz = append(byz, w)
			nodes[i] = w
			continue
		}
		nd, err := bracha.New(bracha.Config{N: n, F: f, Self: broadcast.NodeID(i), Mode: broadcast.ModeDigest, Pool: pool})
		if err != nil {
			return 0, 0, 0, err
		}
		defer nd.Close()
		correct = append(correct, nd)
		nodes[i] = nd
	}
	c := mem.NewCluster(mem.NewNetwork(n), nodes)
	defer c.Close()
	defer func() {
		for _, w := range byz {
			rd := w.Ready()
			rd.Release()
		}
	}()
	data := make([]byte, size)
	for seq := range k {
		data[0], data[1] = byte(seq), byte(seq>>8)
		in := broadcast.Instance{Origin: 0, Seq: uint64(seq)}
		d := broadcast.DigestOfBytes(data)
		for i := f; i < 2*f+1; i++ { // f+1 correct nodes get the SEND
			byz[0].queue(broadcast.NodeID(i), bracha.TypeSend, in, d, size, data)
		}
		for _, w := range byz {
			w.queue(broadcast.Everyone, bracha.TypeEcho, in, d, size, nil)
			w.queue(broadcast.Everyone, bracha.TypeReady, in, d, size, nil)
		}
	}
	c.TickAll(0)
	c.Run(time.Hour, 1<<30)
	var fetched, sent uint64
	for i, nd := range correct {
		id := f + i
		if got := len(c.Delivered[id]); got != k {
			return 0, 0, 0, fmt.Errorf("n=%d size=%d: node %d delivered %d of %d", n, size, id, got, k)
		}
		s := c.Metrics[id].Snapshot()
		payload += s.PayloadDupFactor()
		wire += s.WireFactor()
		st := nd.Stats()
		fetched += st.PayloadsFetched
		sent += st.FetchesSent
	}
	payload /= float64(len(correct))
	wire /= float64(len(correct))
	return payload, wire, float64(sent) / float64(fetched), nil
}
