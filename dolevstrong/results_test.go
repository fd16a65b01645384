package dolevstrong

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/netio/mem"
	"github.com/stretchr/testify/require"
)

// measurement is one row of the RESULTS table.
type measurement struct {
	recvBytes, recvPayload, recvProof float64 // per node per broadcast
	cpu                               time.Duration
	verifies, signs                   float64 // per broadcast, whole cluster
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure runs k honest broadcasts (senders rotating) of size-byte values
// on an n-node cluster with f = n−1 and returns per-broadcast figures.
func measure(t testing.TB, n, size, k int, v variant) measurement {
	pool, err := bufpool.New(bufpool.Config{FrameSize: 4096, Frames: 64 + 2*n*(size/4096+1)*4})
	require.NoError(t, err)
	ks := clusterKeys(t, n, v.bls)
	nodes := make([]*Node, n)
	protos := make([]broadcast.Protocol, n)
	stores := make([]*broadcast.PayloadStore, n)
	for i := range n {
		stores[i] = broadcast.NewPayloadStore(broadcast.StoreConfig{})
		cfg := Config{Params: broadcast.Params{N: n, F: n - 1, Self: broadcast.NodeID(i), Mode: v.mode},
			Store: stores[i], Keys: ks.ed[i], RoundDuration: testDelta}
		if v.bls {
			cfg.BLS = ks.bls[i]
		}
		nodes[i], err = New(cfg)
		require.NoError(t, err)
		protos[i] = nodes[i]
	}
	c := mem.NewCluster(mem.NewNetwork(n), protos)
	c.OnDeliver = func(_ broadcast.NodeID, d broadcast.Delivery) { d.Payload.Retain() } // keep Close's release balanced
	c.TickAll(0)
	val := make([]byte, size)
	for i := range val {
		val[i] = byte(i * 7)
	}
	start := cpuTime()
	for b := range k {
		val[0], val[1] = byte(b), byte(b>>8)
		buf, err := pool.Copy(val)
		require.NoError(t, err)
		require.NoError(t, c.Submit(broadcast.NodeID(b%n), buf))
		c.Run(c.Now+time.Duration(n+1)*testDelta, 1<<30)
		for i := range c.Delivered {
			for _, d := range c.Delivered[i] {
				d.Payload.Release()
				d.Payload.Release()
			}
			c.Delivered[i] = c.Delivered[i][:0]
		}
	}
	cpu := cpuTime() - start
	var m measurement
	for i := range n {
		tot := c.Metrics[i].Snapshot().Totals()
		m.recvBytes += float64(tot.RecvHeaderBytes + tot.RecvPayload)
		m.recvPayload += float64(tot.RecvPayload)
		st := nodes[i].Stats()
		m.verifies += float64(st.Verifies)
		m.signs += float64(st.Signs)
		require.Equal(t, uint64(k), st.Instances, "node %d decided %d of %d broadcasts", i, st.Instances, k)
	}
	m.recvBytes /= float64(n * k)
	m.recvPayload /= float64(n * k)
	m.recvProof = m.recvBytes - m.recvPayload
	m.verifies /= float64(k)
	m.signs /= float64(k)
	m.cpu = cpu / time.Duration(k)
	c.Close()
	for i := range n {
		nodes[i].Close()
		stores[i].Close()
	}
	return m
}

// TestResultsTable prints the table of docs/RESULTS.md (section
// Dolev–Strong). It runs only when DOLEVSTRONG_RESULTS=1:
//
//	DOLEVSTRONG_RESULTS=1 go test ./dolevstrong -run TestResultsTable -v -timeout 20m
func TestResultsTable(t *testing.T) {
	if os.Getenv("DOLEVSTRONG_RESULTS") == "" {
		env.OptIn(t, "set DOLEVSTRONG_RESULTS=1 to regenerate the RESULTS table")
	}
	var sb strings.Builder
	sb.WriteString("| variant | n | value | recv B/node/bcast | of which payload | of which headers+proofs | wire factor | CPU/bcast (cluster) | CPU/bcast/node | verifies/bcast | signs/bcast |\n")
	sb.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, v := range variants {
		for _, size := range []int{1 << 10, 64 << 10} {
			for _, n := range []int{4, 7, 10, 16} {
				k := 30
				if v.bls {
					k = 10
				}
				m := measure(t, n, size, k, v)
				// payload delivered per node per broadcast: (n−1)/n of a value (the sender's own is local)
				remote := float64(size) * float64(n-1) / float64(n)
				sb.WriteString(fmt.Sprintf("| %s | %d | %d KiB | %.0f | %.0f | %.0f | %.2f | %.2f ms | %.0f µs | %.1f | %.1f |\n",
					v.name, n, size>>10, m.recvBytes, m.recvPayload, m.recvProof, m.recvBytes/remote,
					float64(m.cpu.Microseconds())/1000, float64(m.cpu.Microseconds())/float64(n), m.verifies, m.signs))
			}
		}
	}
	fmt.Print(sb.String())
}
