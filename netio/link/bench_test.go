package link_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/netio/link"
	"github.com/onecast/onecast/netio/udp"
)

// BenchmarkLinkUDP streams b.N messages from one node to another over the
// reliable link on loopback UDP and reports the payload rate, the frames
// resent, and allocations per message on both ends (the link's hot paths:
// Send, the receive loop, Recv and Release).
func BenchmarkLinkUDP(b *testing.B) {
	for _, size := range []int{1 << 10, 4 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("size=%dKiB", size>>10), func(b *testing.B) {
			addrs := loopbackAddrs(b, 2)
			var links [2]*link.Link
			var pools [2]*bufpool.Pool
			for i := range 2 {
				pools[i] = bufpool.MustNew(bufpool.Config{FrameSize: 2048, Frames: 1 << 16})
				cd, err := udp.New(udp.Config{Self: broadcast.NodeID(i), Peers: addrs, Pool: pools[i]})
				if err != nil {
					b.Fatal(err)
				}
				if links[i], err = link.New(link.Config{Self: broadcast.NodeID(i), N: 2, Conduit: cd}); err != nil {
					b.Fatal(err)
				}
			}
			payload, err := pools[0].Copy(make([]byte, size))
			if err != nil {
				b.Fatal(err)
			}
			m := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoTest, Type: 1, Sender: 0},
				Auth: make([]byte, broadcast.MACSize)}
			m.SetPayload(payload, broadcast.DigestOf(payload))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			done := make(chan int)
			go func() {
				got := 0
				for got < b.N {
					in, err := links[1].Recv(ctx)
					if err != nil {
						break
					}
					in.Release()
					got++
				}
				done <- got
			}()
			b.ReportAllocs()
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				m.Instance.Seq = uint64(i)
				for links[0].Send(1, &m) != nil {
					_ = links[0].Flush()
					time.Sleep(100 * time.Microsecond) // queue full: wait for acks
				}
				if i%16 == 15 {
					_ = links[0].Flush()
				}
				for links[0].Congested() {
					_ = links[0].Flush()
					time.Sleep(50 * time.Microsecond)
				}
			}
			_ = links[0].Flush()
			if got := <-done; got != b.N {
				b.Fatalf("received %d of %d", got, b.N)
			}
			b.StopTimer()
			st := links[0].Stats()
			b.ReportMetric(float64(st.Retransmits)/float64(st.FramesSent), "retx/frame")
			payload.Release()
			for i := range 2 {
				_ = links[i].Close()
			}
		})
	}
}
