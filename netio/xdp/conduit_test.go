package xdp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/netio"
	"github.com/onecast/onecast/netio/link"
	"github.com/onecast/onecast/netio/netns"
)

const testPort = 7700

func skipUnlessRoot(t testing.TB) {
	t.Helper()
	ok, why := netns.Available()
	env.Need(t, ok, "AF_XDP tests need real namespaces and XDP: "+why)
}

// pair builds a two-node topology and one conduit per node. Everything is
// closed at the end of the test, leaks checked.
func pair(t testing.TB, tweak func(i int, cfg *Config)) (*netns.Topology, []*Conduit) {
	t.Helper()
	return cluster(t, 2, tweak)
}

func cluster(t testing.TB, n int, tweak func(i int, cfg *Config)) (*netns.Topology, []*Conduit) {
	t.Helper()
	return clusterMTU(t, n, 0, tweak)
}

// clusterMTU is cluster on interfaces of the given MTU (0: netns's default).
func clusterMTU(t testing.TB, n, mtu int, tweak func(i int, cfg *Config)) (*netns.Topology, []*Conduit) {
	t.Helper()
	skipUnlessRoot(t)
	t.Cleanup(leaktest.AfterTest(t)) // runs last, after every other cleanup
	topo, err := netns.New(netns.Config{Nodes: n, MTU: mtu, Subnet: netip.MustParsePrefix("10.77.2.0/24")})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, topo.Close()) })
	cs, err := OpenTopology(topo, testPort, func(i int, cfg *Config) {
		cfg.Checked = true
		cfg.Frames, cfg.RingSize = 1024, 256
		if tweak != nil {
			tweak(i, cfg)
		}
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		for _, c := range cs {
			require.NoError(t, c.Close())
			require.NoError(t, c.Pool().CheckLeaks())
			require.NoError(t, c.ReleaseUMEM())
		}
	})
	return topo, cs
}

// pacer keeps a test's sender at most `window` datagrams ahead of its
// receiver, so that a receiver slowed down by a loaded machine never
// overflows the rings: the tests check delivery, not the machine's speed.
type pacer struct {
	window   int
	received atomic.Int64
	stop     chan struct{}
	done     chan struct{}
}

func newPacer(t testing.TB, window int) *pacer {
	p := &pacer{window: window, stop: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(func() { close(p.stop); <-p.done })
	return p
}

// wait blocks until datagram `sent` may go; it flushes c while it waits.
// It returns false when the test is over.
func (p *pacer) wait(c *Conduit, sent int) bool {
	for int64(sent)-p.received.Load() >= int64(p.window) {
		_ = c.Flush()
		select {
		case <-p.stop:
			return false
		case <-time.After(100 * time.Microsecond):
		}
	}
	return true
}

// run runs the sender in a goroutine that the test's cleanup waits for.
func (p *pacer) run(send func()) {
	go func() {
		defer close(p.done)
		send()
	}()
}

func recvOne(t testing.TB, c *Conduit, timeout time.Duration) (netio.Datagram, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return c.Recv(ctx)
}

func TestDatagramsArriveByReferenceInUMEM(t *testing.T) {
	_, cs := pair(t, nil)
	a, b := cs[0], cs[1]
	const count = 500
	sizes := []int{4, 64, 700, a.MTU()}
	pc := newPacer(t, 64)
	pc.run(func() {
		for i := range count {
			if !pc.wait(a, i) {
				return
			}
			n := sizes[i%len(sizes)]
			body := make([]byte, n-4)
			for j := range body {
				body[j] = byte(i + j)
			}
			var hdr [4]byte
			binary.LittleEndian.PutUint32(hdr[:], uint32(i))
			if err := a.Send(1, hdr[:], bufpool.Wrap(body)); err != nil {
				t.Errorf("send %d: %v", i, err)
			}
			if i%32 == 31 {
				_ = a.Flush()
			}
		}
		_ = a.Flush()
	})
	got, d0Copied := 0, 0
	for got < count {
		d, err := recvOne(t, b, 3*time.Second)
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		require.NoError(t, err)
		require.Equal(t, broadcast.NodeID(0), d.From)
		require.Equal(t, b.Pool(), d.Frame.Pool(), "the datagram is a view on a UMEM frame")
		require.True(t, b.UMEMHolds(d.Frame), "the datagram lies in the UMEM frame the kernel wrote")
		if got == 0 {
			// The identity check fails for any copy of the datagram: into
			// the heap, or into another UMEM frame through the pool.
			heap := bufpool.Wrap(append([]byte(nil), d.Frame.Bytes()...))
			assert.False(t, b.UMEMHolds(heap), "a heap copy is not in UMEM")
			cp, err := b.Pool().Copy(d.Frame.Bytes())
			require.NoError(t, err)
			d0Copied = d.Frame.Len()
			assert.False(t, b.UMEMHolds(cp), "a pool copy is not where the kernel wrote")
			cp.Release()
		}
		p := d.Frame.Bytes()
		require.GreaterOrEqual(t, len(p), 4)
		i := int(binary.LittleEndian.Uint32(p))
		require.Equal(t, sizes[i%len(sizes)], len(p), "datagram %d", i)
		for j, c := range p[4:] {
			if c != byte(i+j) {
				t.Fatalf("datagram %d byte %d: %d, want %d", i, j, c, byte(i+j))
			}
		}
		d.Frame.Release()
		got++
		pc.received.Add(1)
	}
	want := count
	assert.GreaterOrEqual(t, got, want*99/100, "at most 1%% loss on an idle veth")
	st, err := b.XDPStats()
	require.NoError(t, err)
	assert.Zero(t, st.RecvCopiedBytes, "no user-space copy on receive")
	assert.EqualValues(t, d0Copied, st.Pool.CopiedBytes, "no user-space copy through the UMEM pool but the test's own")
	if !st.ZeroCopy {
		assert.Equal(t, st.BytesReceived, st.KernelRecvCopiedBytes, "copy mode: the kernel copied every received byte into UMEM")
	}
	assert.Positive(t, st.RecvPasses)
	assert.LessOrEqual(t, st.RecvPasses, st.FramesReceived, "a receive pass takes at least one frame")
	assert.EqualValues(t, got, st.FramesReceived)
	assert.GreaterOrEqual(t, st.Kernel.Redirected, uint64(got))
	t.Logf("mode %v zerocopy %v; received %d; kernel %+v", st.Mode, st.ZeroCopy, got, st.Kernel)
}

func TestNativeModeOnVeth(t *testing.T) {
	_, cs := pair(t, func(i int, cfg *Config) { cfg.Mode = ModeNative })
	assert.Equal(t, ModeNative, cs[0].Program().Mode())
}

func TestOtherTrafficPassesToTheKernelStack(t *testing.T) {
	topo, cs := pair(t, nil)
	_ = cs
	var rx, tx, onecastPort *net.UDPConn
	require.NoError(t, topo.Do(1, func() (err error) {
		if rx, err = net.ListenUDP("udp4", &net.UDPAddr{IP: topo.Nodes[1].Addr.AsSlice(), Port: testPort + 1}); err != nil {
			return err
		}
		onecastPort, err = net.ListenUDP("udp4", &net.UDPAddr{IP: topo.Nodes[1].Addr.AsSlice(), Port: testPort})
		return err
	}))
	defer rx.Close()
	defer onecastPort.Close()
	require.NoError(t, topo.Do(0, func() (err error) {
		tx, err = net.ListenUDP("udp4", &net.UDPAddr{IP: topo.Nodes[0].Addr.AsSlice()})
		return err
	}))
	defer tx.Close()
	_, err := tx.WriteToUDP([]byte("to the kernel"), &net.UDPAddr{IP: topo.Nodes[1].Addr.AsSlice(), Port: testPort + 1})
	require.NoError(t, err)
	_, err = tx.WriteToUDP([]byte("to onecast"), &net.UDPAddr{IP: topo.Nodes[1].Addr.AsSlice(), Port: testPort})
	require.NoError(t, err)

	buf := make([]byte, 100)
	require.NoError(t, rx.SetReadDeadline(time.Now().Add(2*time.Second)))
	n, err := rx.Read(buf)
	require.NoError(t, err, "a datagram to another port reaches the kernel's socket")
	assert.Equal(t, "to the kernel", string(buf[:n]))

	require.NoError(t, onecastPort.SetReadDeadline(time.Now().Add(200*time.Millisecond)))
	_, err = onecastPort.Read(buf)
	assert.Error(t, err, "a datagram to the onecast port goes to the AF_XDP socket, not the kernel's")
	// It came from an ephemeral port, not a peer's: the conduit drops it.
	require.Eventually(t, func() bool { return cs[1].Stats().Dropped == 1 }, 2*time.Second, 5*time.Millisecond)
}

// onecastFrame builds link header | onecast header | auth | payload, as the
// reliable link sends a message, with the given flags and digest.
func onecastFrame(flags broadcast.Flags, d broadcast.Digest, payload []byte) []byte {
	auth := make([]byte, 64)
	for i := range auth {
		auth[i] = 0xA5
	}
	h := broadcast.Header{Protocol: broadcast.ProtoTest, Type: 1, Flags: flags, Sender: 0,
		PayloadLen: uint32(len(payload)), Digest: d, AuthLen: uint16(len(auth))}
	if flags&broadcast.Fragment != 0 {
		h.AuthLen, auth = 0, nil
		h.FragIndex, h.FragOffset = 1, 0
		h.PayloadLen = uint32(2 * len(payload))
	}
	lh := link.Header{Kind: link.KindData, SrcEpoch: 1, Seq: 1}
	out := make([]byte, link.HeaderSize+broadcast.HeaderSize)
	lh.Put(out)
	h.Put(out[link.HeaderSize:])
	out = append(out, auth...)
	return append(out, payload...)
}

func TestDefaultLinkHeaderSizeIsTheLinkLayers(t *testing.T) {
	assert.Equal(t, link.HeaderSize, DefaultLinkHeaderSize)
}

func TestKernelStripsPayloadsOfHeldDigests(t *testing.T) {
	for _, mode := range []Mode{ModeNative, ModeGeneric} {
		t.Run(mode.String(), func(t *testing.T) { testKernelStrips(t, mode) })
	}
}

func testKernelStrips(t *testing.T, mode Mode) {
	_, cs := pair(t, func(i int, cfg *Config) { cfg.Mode = mode })
	require.Equal(t, mode, cs[1].Program().Mode())
	a, b := cs[0], cs[1]
	payload := make([]byte, 1000)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	held := broadcast.DigestOfBytes(payload)
	other := broadcast.DigestOfBytes([]byte("not held"))
	store := broadcast.NewPayloadStore(broadcast.StoreConfig{Observer: b.Program()})
	defer store.Close()
	require.NoError(t, store.Put(0, held, bufpool.Wrap(payload)))
	require.True(t, b.Program().IsHeld(held), "Put inserts the digest into the kernel's map")
	xs, err := b.XDPStats()
	require.NoError(t, err)
	assert.Equal(t, HeldStats{Entries: 1, Quota: 65536 / 2}, xs.Held, "the conduit reports the map: one entry, the quota of each of 2 nodes")

	send := func(frame []byte) {
		require.NoError(t, a.Send(1, frame, bufpool.Buf{}))
		require.NoError(t, a.Flush())
	}
	prefix := link.HeaderSize + broadcast.HeaderSize + 64

	t.Run("held first frame loses its payload, keeps header and authenticator", func(t *testing.T) {
		send(onecastFrame(broadcast.HasPayload, held, payload))
		d, err := recvOne(t, b, 2*time.Second)
		require.NoError(t, err)
		defer d.Frame.Release()
		require.Equal(t, prefix, d.Frame.Len())
		m, err := broadcast.DecodeFrame(d.Frame.Slice(link.HeaderSize, d.Frame.Len()-link.HeaderSize), nil)
		require.NoError(t, err, "the stripped frame still decodes")
		assert.Equal(t, broadcast.Stripped, m.Flags)
		assert.Equal(t, held, m.Digest)
		assert.EqualValues(t, len(payload), m.PayloadLen)
		assert.Len(t, m.Auth, 64)
		assert.Equal(t, byte(0xA5), m.Auth[63])
		assert.True(t, m.Payload.IsZero())
	})
	t.Run("frame of a digest not held arrives whole", func(t *testing.T) {
		send(onecastFrame(broadcast.HasPayload, other, payload))
		d, err := recvOne(t, b, 2*time.Second)
		require.NoError(t, err)
		defer d.Frame.Release()
		require.Equal(t, prefix+len(payload), d.Frame.Len())
		m, err := broadcast.DecodeFrame(d.Frame.Slice(link.HeaderSize, d.Frame.Len()-link.HeaderSize), nil)
		require.NoError(t, err)
		assert.Equal(t, broadcast.HasPayload, m.Flags)
		assert.Equal(t, payload, m.Payload.Bytes())
	})
	t.Run("continuation fragment of a held digest is cut to its header", func(t *testing.T) {
		send(onecastFrame(broadcast.HasPayload|broadcast.Fragment, held, payload[:500]))
		send(onecastFrame(broadcast.HasPayload|broadcast.Fragment, other, payload[:500]))
		d, err := recvOne(t, b, 2*time.Second)
		require.NoError(t, err)
		require.Equal(t, link.HeaderSize+broadcast.HeaderSize, d.Frame.Len(), "the link still gets the frame, to acknowledge it")
		h, err := broadcast.ParseHeader(d.Frame.Bytes()[link.HeaderSize:])
		require.NoError(t, err)
		assert.Equal(t, broadcast.Fragment|broadcast.Stripped, h.Flags)
		assert.Equal(t, held, h.Digest)
		d.Frame.Release()
		d, err = recvOne(t, b, 2*time.Second)
		require.NoError(t, err)
		defer d.Frame.Release()
		m, err := broadcast.DecodeFrame(d.Frame.Slice(link.HeaderSize, d.Frame.Len()-link.HeaderSize), nil)
		require.NoError(t, err)
		assert.Equal(t, other, m.Digest)
		assert.Equal(t, 500, m.Payload.Len(), "the fragment of a digest not held arrives whole")
	})
	t.Run("after eviction the payload passes again", func(t *testing.T) {
		require.True(t, store.Pin(held))
		store.Unpin(held) // last pin: evicted
		require.False(t, b.Program().IsHeld(held), "eviction deletes the digest from the kernel's map")
		send(onecastFrame(broadcast.HasPayload, held, payload))
		d, err := recvOne(t, b, 2*time.Second)
		require.NoError(t, err)
		defer d.Frame.Release()
		assert.Equal(t, prefix+len(payload), d.Frame.Len())
	})
	st, err := b.XDPStats()
	require.NoError(t, err)
	assert.EqualValues(t, 1, st.Kernel.StrippedFrames)
	assert.EqualValues(t, len(payload), st.Kernel.StrippedBytes)
	assert.EqualValues(t, 1, st.Kernel.StrippedFrags)
	assert.EqualValues(t, 500, st.Kernel.StrippedFragBytes)
}

// TestReplayedPayloadsAreStrippedInKernel is the acceptance check: a peer
// that replays full payloads for digests already held gets ≥ 99 % of those
// payload bytes cut in the kernel, and none of them reach user space.
func TestReplayedPayloadsAreStrippedInKernel(t *testing.T) {
	metrics := &broadcast.Metrics{}
	_, cs := pair(t, func(i int, cfg *Config) { cfg.Metrics = metrics })
	a, b := cs[0], cs[1]
	store := broadcast.NewPayloadStore(broadcast.StoreConfig{Observer: b.Program()})
	defer store.Close()
	const distinct, rounds = 50, 20
	frames := make([][]byte, distinct)
	for i := range frames {
		p := fmt.Appendf(nil, "payload %d ", i)
		for len(p) < 1200 {
			p = append(p, byte(i))
		}
		d := broadcast.DigestOfBytes(p)
		require.NoError(t, store.Put(0, d, bufpool.Wrap(p)))
		frames[i] = onecastFrame(broadcast.HasPayload, d, p)
	}
	sent := 0
	pc := newPacer(t, 64)
	pc.run(func() {
		for r := range rounds {
			for i, f := range frames {
				if !pc.wait(a, r*distinct+i) {
					return
				}
				if err := a.Send(1, f, bufpool.Buf{}); err != nil {
					t.Errorf("round %d: %v", r, err)
					return
				}
			}
			_ = a.Flush()
		}
	})
	var userPayload uint64
	got := 0
	for got < distinct*rounds {
		d, err := recvOne(t, b, 2*time.Second)
		if err != nil {
			break
		}
		m, err := broadcast.DecodeFrame(d.Frame.Slice(link.HeaderSize, d.Frame.Len()-link.HeaderSize), nil)
		require.NoError(t, err)
		userPayload += uint64(m.Payload.Len())
		d.Frame.Release()
		got++
		pc.received.Add(1)
	}
	sent = distinct * rounds * 1200
	st, err := b.XDPStats()
	require.NoError(t, err)
	t.Logf("replayed %d payload bytes; kernel stripped %d in %d frames; %d reached user space", sent, st.Kernel.StrippedBytes, st.Kernel.StrippedFrames, userPayload)
	assert.GreaterOrEqual(t, st.Kernel.StrippedBytes*100, uint64(sent)*99, "≥ 99 %% of replayed payload bytes stripped in the kernel")
	assert.Zero(t, userPayload, "no replayed payload byte reaches user space")
	assert.GreaterOrEqual(t, got*100, distinct*rounds*99, "the stripped votes still arrive")
	require.NoError(t, b.SyncMetrics())
	assert.Equal(t, st.Kernel.StrippedBytes, metrics.StrippedBytes.Load(), "the node's metrics carry the kernel's counters")
}

func TestStoreRehomesPayloadsUnderTheFrameWatermark(t *testing.T) {
	_, cs := pair(t, func(i int, cfg *Config) {
		cfg.Frames, cfg.RingSize, cfg.Watermark = 128, 32, 24
	})
	a, b := cs[0], cs[1]
	store := broadcast.NewPayloadStore(broadcast.StoreConfig{Observer: b.Program()})
	defer store.Close()
	b.WatchStore(store)
	const count = 300 // more than twice the UMEM's frames
	pc := newPacer(t, 8)
	pc.run(func() {
		for i := range count {
			if !pc.wait(a, i) {
				return
			}
			if err := a.Send(1, fmt.Appendf(nil, "distinct payload %d", i), bufpool.Buf{}); err != nil {
				t.Errorf("send %d: %v", i, err)
				return
			}
			if err := a.Flush(); err != nil {
				t.Errorf("flush: %v", err)
				return
			}
		}
	})
	got := 0
	for got < count {
		d, err := recvOne(t, b, 3*time.Second)
		if err != nil {
			break
		}
		// The store keeps every payload in the frame it arrived in.
		require.NoError(t, store.Put(d.From, broadcast.DigestOf(d.Frame), d.Frame))
		d.Frame.Release()
		got++
		pc.received.Add(1)
	}
	st, err := b.XDPStats()
	require.NoError(t, err)
	t.Logf("received %d, rehomed %d payloads (%d B), fill starved %d", got, st.RehomedPayloads, st.RehomedBytes, st.FillStarved)
	assert.GreaterOrEqual(t, got, count*95/100, "receiving goes on past the UMEM's size")
	assert.Positive(t, st.RehomedPayloads, "the store moved payloads out of UMEM")
	assert.Equal(t, st.RehomedBytes, st.Pool.CopiedBytes, "each moved byte is one counted copy")
	assert.EqualValues(t, got, store.Stats().Held, "nothing stored is lost")
}

func TestConfigIsValidated(t *testing.T) {
	good := func() Config {
		return Config{Ifindex: 1, MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Addr: netip.MustParseAddrPort("10.77.9.1:7700"),
			Peers: map[broadcast.NodeID]Peer{1: {MAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, Addr: netip.MustParseAddrPort("10.77.9.2:7700")}}}
	}
	for name, mut := range map[string]func(*Config){
		"no ifindex":     func(c *Config) { c.Ifindex = 0 },
		"short MAC":      func(c *Config) { c.MAC = c.MAC[:4] },
		"no port":        func(c *Config) { c.Addr = netip.MustParseAddrPort("10.77.9.1:0") },
		"IPv6":           func(c *Config) { c.Addr = netip.MustParseAddrPort("[fd00::1]:7700") },
		"no peers":       func(c *Config) { c.Peers = nil },
		"self as peer":   func(c *Config) { c.Peers[0] = c.Peers[1] },
		"odd frame size": func(c *Config) { c.FrameSize = 3000 },
		"ring not pow2":  func(c *Config) { c.RingSize = 100 },
		"too few frames": func(c *Config) { c.Frames, c.RingSize = 100, 64 },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := good()
			mut(&cfg)
			_, err := New(cfg)
			assert.Error(t, err)
		})
	}
	cfg := good()
	require.NoError(t, cfg.fill())
	assert.Equal(t, DefaultLinkHeaderSize, cfg.LinkHeaderSize)
}

// TestLargestVethMTUCarriesFullFrames opens conduits on veths of
// MaxVethMTU with the program in native mode: the conduit picks 4 KiB
// frames, its MTU is the interface's less the IPv4 and UDP headers, and
// datagrams of that size arrive whole, in UMEM. One byte more of MTU and
// the kernel refuses the native attach: MaxVethMTU is the largest.
func TestLargestVethMTUCarriesFullFrames(t *testing.T) {
	_, cs := clusterMTU(t, 2, MaxVethMTU, func(_ int, cfg *Config) {
		cfg.Mode = ModeNative
		cfg.FrameSize = 0 // chosen from the MTU
	})
	a, b := cs[0], cs[1]
	require.Equal(t, MaxVethMTU-ipv4Len-udpLen, a.MTU())
	require.Equal(t, 4096, a.cfg.FrameSize)
	body := make([]byte, a.MTU()-4)
	for i := range body {
		body[i] = byte(i * 7)
	}
	for range 8 {
		require.NoError(t, a.Send(1, []byte{1, 2, 3, 4}, bufpool.Wrap(body)))
	}
	require.NoError(t, a.Flush())
	for range 8 {
		d, err := recvOne(t, b, 3*time.Second)
		require.NoError(t, err)
		require.Equal(t, a.MTU(), d.Frame.Len())
		require.Equal(t, body, d.Frame.Bytes()[4:])
		require.True(t, b.UMEMHolds(d.Frame))
		d.Frame.Release()
	}
	require.Error(t, a.Send(1, []byte{1, 2, 3, 4, 5}, bufpool.Wrap(body)), "larger than the MTU")

	topo, err := netns.New(netns.Config{Nodes: 2, MTU: MaxVethMTU + 1, Subnet: netip.MustParsePrefix("10.77.4.0/24")})
	require.NoError(t, err)
	defer topo.Close()
	cfg := TopologyConfig(topo, 0, testPort)
	cfg.Mode = ModeNative
	err = topo.Do(0, func() error {
		c, err := New(cfg)
		if err == nil {
			_ = c.Close()
		}
		return err
	})
	require.Error(t, err, "native XDP on a veth of MTU %d", MaxVethMTU+1)
	t.Logf("MTU %d: %v", MaxVethMTU+1, err)
}

// TestSendReferencesBodiesInUMEM sends a body that lies in the sender's
// UMEM, across a frame boundary, to the peer several times: it arrives
// whole each time, no byte of it was copied in user space (the header
// frame and one TX descriptor per body segment, multi-buffer AF_XDP), and
// the references Send took come back with the completions. A heap body is
// copied, counted, and the stats say why.
func TestSendReferencesBodiesInUMEM(t *testing.T) {
	_, cs := clusterMTU(t, 2, MaxVethMTU, func(_ int, cfg *Config) { cfg.FrameSize = 4096 })
	a, b := cs[0], cs[1]
	st, err := a.XDPStats()
	require.NoError(t, err)
	require.True(t, st.MultiBuffer, "bound with XDP_USE_SG")
	require.True(t, st.NeedWakeup, "bound with XDP_USE_NEED_WAKEUP")

	whole, err := a.Pool().Alloc(2 * 4096)
	require.NoError(t, err)
	n := 0
	for seg := range whole.WritableSegments() {
		for i := range seg {
			seg[i] = byte(n * 31)
			n++
		}
	}
	body := whole.Slice(4096-1000, 3000) // two segments: the end of frame 0, the start of frame 1
	want := append([]byte{9, 8, 7, 6}, make([]byte, 0, 3000)...)
	for seg := range body.Segments() {
		want = append(want, seg...)
	}
	const count = 6
	for range count {
		require.NoError(t, a.Send(1, []byte{9, 8, 7, 6}, body))
	}
	require.NoError(t, a.Send(1, []byte{9, 8, 7, 6}, bufpool.Wrap(want[4:])))
	require.NoError(t, a.Flush())
	for range count + 1 {
		d, err := recvOne(t, b, 3*time.Second)
		require.NoError(t, err)
		require.Equal(t, want, d.Frame.Bytes())
		d.Frame.Release()
	}
	require.Eventually(t, func() bool {
		_ = a.Flush() // reaps completions
		return whole.Refs() == 1
	}, 3*time.Second, 5*time.Millisecond, "the completions gave back the references Send took")
	whole.Release()
	st, err = a.XDPStats()
	require.NoError(t, err)
	assert.EqualValues(t, count*3000, st.SendReferencedBytes)
	assert.EqualValues(t, count*2, st.SendRefDescs, "one descriptor per body segment")
	assert.EqualValues(t, 3000, st.SendCopiedBytes, "only the heap body was copied")
	assert.Contains(t, st.SendCopyFallback, "not in this UMEM")
}

// TestOnPassRunsTheConsumerInTheReceiveLoop: passes queued for Recv before
// a handler comes are drained to it, later passes go to it directly, and
// Recv sees none of them.
func TestOnPassRunsTheConsumerInTheReceiveLoop(t *testing.T) {
	_, cs := pair(t, nil)
	a, b := cs[0], cs[1]
	send := func(from, count int) {
		for i := range count {
			require.NoError(t, a.Send(1, []byte{byte(from + i)}, bufpool.Buf{}))
		}
		require.NoError(t, a.Flush())
	}
	send(0, 5)
	require.Eventually(t, func() bool { return b.Stats().FramesReceived == 5 }, 3*time.Second, time.Millisecond)
	var mu sync.Mutex
	var got []byte
	b.OnPass(func(pass []netio.Datagram) {
		mu.Lock()
		defer mu.Unlock()
		for _, d := range pass {
			got = append(got, d.Frame.Bytes()[0])
			d.Frame.Release()
		}
	})
	send(5, 3)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 8
	}, 3*time.Second, time.Millisecond, "every datagram reached the handler")
	mu.Lock()
	assert.ElementsMatch(t, []byte{0, 1, 2, 3, 4, 5, 6, 7}, got)
	mu.Unlock()
	_, err := recvOne(t, b, 50*time.Millisecond)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "Recv sees nothing the handler took")
	b.OnPass(nil)
	send(8, 1)
	d, err := recvOne(t, b, 3*time.Second)
	require.NoError(t, err, "without a handler, passes queue for Recv again")
	assert.Equal(t, byte(8), d.Frame.Bytes()[0])
	d.Frame.Release()
}

// TestBusyPollReceivesWithFewerPolls: a receive loop that spins on the RX
// ring before it polls gets every datagram of a paced stream, and sleeps in
// poll(2) less often than one that polls at once.
func TestBusyPollReceivesWithFewerPolls(t *testing.T) {
	polls := map[time.Duration]uint64{}
	for _, spin := range []time.Duration{0, 2 * time.Millisecond} {
		_, cs := pair(t, func(i int, cfg *Config) { cfg.BusyPoll = spin })
		a, b := cs[0], cs[1]
		const count = 200
		go func() {
			for i := range count {
				_ = a.Send(1, []byte{byte(i)}, bufpool.Buf{})
				_ = a.Flush()
				time.Sleep(50 * time.Microsecond)
			}
		}()
		for i := range count {
			d, err := recvOne(t, b, 3*time.Second)
			require.NoError(t, err, "datagram %d", i)
			d.Frame.Release()
		}
		st, err := b.XDPStats()
		require.NoError(t, err)
		polls[spin] = st.Polls
		t.Logf("busy-poll %v: %d frames in %d passes, %d polls", spin, st.FramesReceived, st.RecvPasses, st.Polls)
	}
	assert.Less(t, polls[2*time.Millisecond], polls[0], "spinning saves polls")
}

// TestCopyModeTXAlwaysNeedsAKick: bound with need_wakeup, a copy-mode
// socket's TX ring always asks for sendto (the kernel transmits only in
// it), so the conduit never skips a kick there; a socket told to copy
// binds without multi-buffer and says why.
func TestCopyModeTXAlwaysNeedsAKick(t *testing.T) {
	_, cs := pair(t, func(i int, cfg *Config) { cfg.CopySend = i == 0 })
	a, b := cs[0], cs[1]
	for i := range 100 {
		require.NoError(t, a.Send(1, []byte{byte(i)}, bufpool.Wrap(make([]byte, 100))))
	}
	require.NoError(t, a.Flush())
	for range 100 {
		d, err := recvOne(t, b, 3*time.Second)
		require.NoError(t, err)
		d.Frame.Release()
	}
	st, err := a.XDPStats()
	require.NoError(t, err)
	require.True(t, st.NeedWakeup)
	assert.False(t, st.ZeroCopy)
	assert.Zero(t, st.TxKicksSkipped, "copy mode: every kick was asked for")
	assert.False(t, st.MultiBuffer, "Config.CopySend binds without XDP_USE_SG")
	assert.Contains(t, st.SendCopyFallback, "Config.CopySend")
}
