package xdp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/netio"
	"github.com/onecast/onecast/netio/netns"
	"github.com/onecast/onecast/netio/udp"
)

// BenchmarkRecv compares the receive path of the AF_XDP conduit with the
// kernel UDP conduit (recvmmsg) on one veth pair in one run: the same
// sender (an AF_XDP conduit in the other namespace, flooding datagrams of
// `size` bytes) and the same consumer (Release each datagram): over UDP a
// Recv loop, over AF_XDP in the receive loop, a pass at a time (OnPass, as
// netio/link takes it); xdp-busy spins 50 µs on the RX ring before it
// polls. It reports frames/s, payload MB/s (from SetBytes), user-space and
// kernel copies per received byte, CPU per frame (both namespaces' sides,
// sender included) and AF_XDP's frames per receive pass. Run it with a fixed count, so that each receiver is set up once:
//
//	go test -run '^$' -bench BenchmarkRecv -benchtime 200000x ./netio/xdp
func BenchmarkRecv(b *testing.B) {
	skipUnlessRoot(b)
	for _, size := range []int{64, 1400} {
		for _, kind := range []string{"xdp", "xdp-busy", "udp"} {
			b.Run(fmt.Sprintf("%s/%dB", kind, size), func(b *testing.B) { benchRecv(b, kind, size) })
		}
	}
}

func benchRecv(b *testing.B, kind string, size int) {
	{
		{
			topo, err := netns.New(netns.Config{Nodes: 2, Subnet: netip.MustParsePrefix("10.77.3.0/24")})
			require.NoError(b, err)
			defer topo.Close()

			sender, err := openOne(topo, 0, func(cfg *Config) { cfg.Logger = quietLogger() })
			require.NoError(b, err)
			defer sender.Close()

			var recv netio.Conduit
			var pool *bufpool.Pool
			var xc *Conduit
			switch kind {
			case "xdp", "xdp-busy":
				c, err := openOne(topo, 1, func(cfg *Config) {
					cfg.Logger = quietLogger()
					if kind == "xdp-busy" {
						cfg.BusyPoll = 50 * time.Microsecond
					}
				})
				require.NoError(b, err)
				recv, pool, xc = c, c.Pool(), c
			case "udp":
				pool = bufpool.MustNew(bufpool.Config{FrameSize: 2048, Frames: 8192, Name: "udp-bench"})
				peers := []netip.AddrPort{
					netip.AddrPortFrom(topo.Nodes[0].Addr, testPort),
					netip.AddrPortFrom(topo.Nodes[1].Addr, testPort),
				}
				require.NoError(b, topo.Do(1, func() error {
					c, err := udp.New(udp.Config{Self: 1, Peers: peers, Pool: pool, Logger: quietLogger()})
					recv = c
					return err
				}))
			}
			defer recv.Close()

			body := bufpool.Wrap(make([]byte, size-8))
			var stop atomic.Bool
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				hdr := make([]byte, 8)
				for !stop.Load() {
					for range 32 {
						if err := sender.Send(1, hdr, body); errors.Is(err, ErrNoFrame) {
							break
						}
					}
					_ = sender.Flush()
				}
			}()
			defer func() { stop.Store(true); wg.Wait() }()

			// Warm up: the first datagram proves the path works.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			d, err := recv.Recv(ctx)
			require.NoError(b, err)
			d.Frame.Release()
			before := recv.Stats()
			poolBefore := pool.Stats()

			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			start, cpuStart := time.Now(), cpuTime()
			got := 0
			if xc != nil {
				// AF_XDP runs the consumer in its receive loop, a pass at a
				// time (as netio/link takes it).
				var n atomic.Int64
				done := make(chan struct{})
				xc.OnPass(func(pass []netio.Datagram) {
					for _, d := range pass {
						d.Frame.Release()
					}
					if n.Add(int64(len(pass))) >= int64(b.N) && n.Load()-int64(len(pass)) < int64(b.N) {
						close(done)
					}
				})
				select {
				case <-done:
				case <-ctx.Done():
				}
				xc.OnPass(nil)
				got = int(n.Load())
			} else {
				for got < b.N {
					d, err := recv.Recv(ctx)
					if err != nil {
						break
					}
					d.Frame.Release()
					got++
				}
			}
			elapsed, cpu := time.Since(start), cpuTime()-cpuStart
			b.StopTimer()
			require.GreaterOrEqual(b, got, b.N, "receiver timed out")
			after := recv.Stats()
			bytes := after.BytesReceived - before.BytesReceived
			copied := after.RecvCopiedBytes - before.RecvCopiedBytes + pool.Stats().CopiedBytes - poolBefore.CopiedBytes
			kernel := after.KernelRecvCopiedBytes - before.KernelRecvCopiedBytes
			b.ReportMetric(float64(got)/elapsed.Seconds(), "frames/s")
			b.ReportMetric(float64(copied)/float64(max(bytes, 1)), "copies/B")
			b.ReportMetric(float64(kernel)/float64(max(bytes, 1)), "krn-copies/B")
			if xc != nil {
				st, _ := xc.XDPStats()
				b.ReportMetric(float64(st.FramesReceived)/float64(max(st.RecvPasses, 1)), "frames/pass")
			}
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(got), "cpu-ns/frame")
		}
	}
}

// openOne opens the conduit of node i of topo only (OpenTopology for one
// node), in node i's namespace.
func openOne(topo *netns.Topology, i int, tweak func(cfg *Config)) (*Conduit, error) {
	cfg := TopologyConfig(topo, i, testPort)
	if tweak != nil {
		tweak(&cfg)
	}
	var c *Conduit
	err := topo.Do(i, func() error {
		var err error
		c, err = New(cfg)
		return err
	})
	return c, err
}

// cpuTime is the process's user and system CPU time: sender, receiver and
// the softirq work charged to them, on both namespaces' sides.
func cpuTime() time.Duration {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
