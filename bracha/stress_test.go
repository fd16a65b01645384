package bracha_test

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/bracha"
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

// Thousands of instances through the in-process driver, past every window
// and ring wrap-around: each broadcast is delivered by every node, at once.
func TestManyInstancesWrapTheWindow(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			pool := bufpool.MustNew(bufpool.Config{FrameSize: 256, Frames: 4096, Checked: true, Name: t.Name()})
			d := &inproc{}
			for i := range 4 {
				nd, err := bracha.New(bracha.Config{N: 4, F: 1, Self: broadcast.NodeID(i), Mode: mode, Window: 64, MaxInFlight: 8, MaxRetained: 100})
				require.NoError(t, err)
				d.nodes = append(d.nodes, nd)
			}
			for i := range 3000 {
				p, err := pool.Alloc(64)
				require.NoError(t, err)
				binary.LittleEndian.PutUint64(p.Bytes(), uint64(i))
				origin := broadcast.NodeID(i % 3)
				require.NoError(t, d.nodes[origin].Broadcast(p))
				before := d.deliveries
				d.flush(origin)
				d.run()
				require.Equal(t, before+4, d.deliveries, "broadcast %d: %+v %+v", i, d.nodes[0].Stats(), d.nodes[1].Stats())
			}
			for _, nd := range d.nodes {
				nd.Close()
			}
			require.NoError(t, pool.CheckLeaks())
		})
	}
}
