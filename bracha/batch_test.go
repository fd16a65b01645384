package bracha_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/bracha"
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

func TestBatchContainerRoundTrip(t *testing.T) {
	pool := bufpool.MustNew(bufpool.Config{FrameSize: 64, Frames: 64, Checked: true, Name: t.Name()})
	for _, tc := range []struct {
		name  string
		parts []string
	}{
		{"one", []string{"a"}},
		{"several", []string{"alpha", "", "gamma delta", "x"}},
		{"spans frames", []string{string(make([]byte, 100)), "tail"}},
	} {
		for _, p := range []*bufpool.Pool{nil, pool} {
			t.Run(fmt.Sprintf("%s/pool=%v", tc.name, p != nil), func(t *testing.T) {
				var parts []bufpool.Buf
				for _, s := range tc.parts {
					parts = append(parts, bufpool.Wrap([]byte(s)))
				}
				b, err := bracha.EncodeBatch(p, parts)
				require.NoError(t, err)
				defer b.Release()
				got, err := bracha.DecodeBatch(b, 16)
				require.NoError(t, err)
				require.Len(t, got, len(tc.parts))
				for i, s := range tc.parts {
					assert.Equal(t, s, string(got[i].Bytes()))
				}
				_, err = bracha.DecodeBatch(b, len(tc.parts)-1)
				assert.ErrorIs(t, err, broadcast.ErrBody, "more entries than allowed")
			})
		}
	}
	require.NoError(t, pool.CheckLeaks())
}

func TestDecodeBatchRejectsBrokenContainers(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"short count", []byte{1, 0}},
		{"zero count", []byte{0, 0, 0, 0}},
		{"table past end", []byte{2, 0, 0, 0, 1, 0, 0, 0}},
		{"entry past end", []byte{1, 0, 0, 0, 5, 0, 0, 0, 'a'}},
		{"trailing bytes", []byte{1, 0, 0, 0, 1, 0, 0, 0, 'a', 'b'}},
		{"huge count", []byte{0xff, 0xff, 0xff, 0xff}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bracha.DecodeBatch(bufpool.Wrap(tc.b), 1<<16)
			assert.ErrorIs(t, err, broadcast.ErrBody)
		})
	}
}

// Batching: Config.Batch payloads make one instance; each payload is
// delivered with its index, as a view on the instance's one buffer (no
// copy at the receivers).
func TestBatchedPayloadsAreDeliveredAsViewsOfOneBuffer(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			h := newHarness(t, 4, harnessOpt{mode: mode, cfg: func(c *bracha.Config) { c.Batch = 3 }})
			var want [][]byte
			for k := range 7 {
				p := payloadFor(1, k, 200+k)
				want = append(want, p)
				require.NoError(t, h.c.Submit(1, h.buf(p)))
			}
			require.NoError(t, h.nodes[1].Flush())
			h.c.TickAll(0) // sends what Flush queued
			h.run()
			copies := h.pool.Stats().Copies
			for _, id := range h.correct() {
				ds := h.c.Delivered[id]
				require.Len(t, ds, 7, "node %v", id)
				frames := map[broadcast.Instance]int{}
				for _, d := range ds {
					assert.Equal(t, broadcast.NodeID(1), d.Instance.Origin)
					k := int(d.Instance.Seq)*3 + d.Index
					assert.Equal(t, want[k], d.Payload.Bytes(), "instance %v index %d", d.Instance, d.Index)
					if f, ok := frames[d.Instance]; ok {
						assert.Equal(t, f, d.Payload.FrameIndex(), "one buffer per instance")
					}
					frames[d.Instance] = d.Payload.FrameIndex()
				}
				assert.Len(t, frames, 3)
				assert.EqualValues(t, 3, h.nodes[id].Stats().Delivered)
			}
			assert.Equal(t, copies, h.pool.Stats().Copies, "delivery copied nothing")
		})
	}
}

// A partial batch is sealed BatchDelay after its first payload.
func TestPartialBatchIsSealedAfterBatchDelay(t *testing.T) {
	h := newHarness(t, 4, harnessOpt{mode: broadcast.ModeDigest, cfg: func(c *bracha.Config) {
		c.Batch = 10
		c.BatchDelay = 5 * time.Millisecond
	}})
	require.NoError(t, h.c.Submit(0, h.buf([]byte("one"))))
	require.NoError(t, h.c.Submit(0, h.buf([]byte("two"))))
	assert.Empty(t, h.c.Delivered[1])
	h.run()
	for _, id := range h.correct() {
		require.Len(t, h.c.Delivered[id], 2)
		assert.Equal(t, "two", string(h.c.Delivered[id][1].Payload.Bytes()))
	}
	assert.GreaterOrEqual(t, h.c.Now, 5*time.Millisecond)
}

// Submissions beyond MaxInFlight wait in a backlog and all go out.
func TestBacklogDrainsAsInstancesDeliver(t *testing.T) {
	h := newHarness(t, 4, harnessOpt{mode: broadcast.ModeDigest, cfg: func(c *bracha.Config) { c.MaxInFlight = 2 }})
	for k := range 10 {
		require.NoError(t, h.c.Submit(2, h.buf(payloadFor(2, k, 64))))
	}
	assert.Equal(t, 8, h.nodes[2].Stats().Backlog)
	h.run()
	for _, id := range h.correct() {
		assert.Len(t, h.delivered(id), 10)
	}
	assert.Zero(t, h.nodes[2].Stats().Backlog)
}

// Delivered instances are collected: at once in full mode, after Retention
// (or beyond MaxRetained) in digest mode; their pins go with them.
func TestFinishedInstancesAreCollected(t *testing.T) {
	t.Run("full at once", func(t *testing.T) {
		h := newHarness(t, 4, harnessOpt{mode: broadcast.ModeFull})
		h.broadcast(0, []byte("x"))
		h.c.Stabilize(1 << 20)
		for _, id := range h.correct() {
			assert.Zero(t, h.nodes[id].Stats().Live)
			assert.Zero(t, h.stores[id].Stats().Held)
		}
	})
	t.Run("digest after retention", func(t *testing.T) {
		h := newHarness(t, 4, harnessOpt{mode: broadcast.ModeDigest, cfg: func(c *bracha.Config) { c.MaxRetained = 2 }})
		for k := range 5 {
			h.broadcast(0, payloadFor(0, k, 10))
		}
		h.c.Stabilize(1 << 20)
		for _, id := range h.correct() {
			assert.Equal(t, 2, h.nodes[id].Stats().Retained, "MaxRetained caps what is kept")
			assert.Equal(t, 2, h.stores[id].Stats().Held)
		}
		h.run() // the clock reaches the retention deadline
		assert.GreaterOrEqual(t, h.c.Now, 2*time.Second)
		for _, id := range h.correct() {
			assert.Zero(t, h.nodes[id].Stats().Live)
			assert.Zero(t, h.stores[id].Stats().Held)
			assert.Len(t, h.delivered(id), 5)
		}
	})
	t.Run("late messages after collection are ignored", func(t *testing.T) {
		h := newHarness(t, 4, harnessOpt{mode: broadcast.ModeFull})
		h.broadcast(0, []byte("late"))
		h.run()
		m := &broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoBracha, Type: bracha.TypeEcho, Sender: 2,
			Instance: broadcast.Instance{Origin: 0}, Digest: broadcast.DigestOfBytes([]byte("late")), PayloadLen: 4}}
		require.NoError(t, h.nodes[1].Step(2, m))
		assert.Zero(t, h.nodes[1].Stats().Live, "no state recreated")
		assert.Positive(t, h.nodes[1].Stats().Late)
	})
}

func TestSubmitRefusesEmptyAndOversizedPayloads(t *testing.T) {
	h := newHarness(t, 4, harnessOpt{mode: broadcast.ModeDigest, cfg: func(c *bracha.Config) { c.MaxPayload = 10 }})
	assert.ErrorIs(t, h.nodes[0].Submit(bufpool.Buf{}), bracha.ErrEmptyPayload)
	assert.Error(t, h.nodes[0].Broadcast(h.buf(make([]byte, 11))))
}

// With a negative BatchDelay a partial batch waits for Flush.
func TestNegativeBatchDelayWaitsForFlush(t *testing.T) {
	h := newHarness(t, 4, harnessOpt{mode: broadcast.ModeDigest, cfg: func(c *bracha.Config) {
		c.Batch = 10
		c.BatchDelay = -1
	}})
	require.NoError(t, h.c.Submit(0, h.buf([]byte("one"))))
	h.run()
	assert.Empty(t, h.c.Delivered[1], "nothing sealed by time")
	require.NoError(t, h.nodes[0].Flush())
	h.c.TickAll(h.c.Now)
	h.run()
	for _, id := range h.correct() {
		require.Len(t, h.c.Delivered[id], 1)
	}
}
