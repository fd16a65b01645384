package link

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/netio"
)

// nullConduit sends nowhere and receives nothing: the fuzz targets hand
// frames to the link's peer state directly.
type nullConduit struct{ done chan struct{} }

func (c *nullConduit) Send(broadcast.NodeID, []byte, bufpool.Buf) error { return nil }
func (c *nullConduit) Flush() error                                     { return nil }
func (c *nullConduit) MTU() int                                         { return 1472 }
func (c *nullConduit) Stats() netio.ConduitStats                        { return netio.ConduitStats{} }
func (c *nullConduit) Close() error                                     { close(c.done); return nil }
func (c *nullConduit) Recv(ctx context.Context) (netio.Datagram, error) {
	select {
	case <-ctx.Done():
		return netio.Datagram{}, ctx.Err()
	case <-c.done:
		return netio.Datagram{}, netio.ErrClosed
	}
}

const fuzzEpoch, fuzzPeerEpoch = 100, 50

// linkFrame builds one link frame from the peer to the fuzzed node.
func linkFrame(kind Kind, dst, seq uint64, body []byte) []byte {
	b := make([]byte, HeaderSize, HeaderSize+len(body))
	h := Header{Kind: kind, SrcEpoch: fuzzPeerEpoch, DstEpoch: dst, Seq: seq}
	h.Put(b)
	return append(b, body...)
}

// fuzzSeeds are datagram sequences (each datagram length-prefixed) that
// reach every branch: a probe, a message with payload, a fragmented
// message, a duplicate, a gap, a restart, a bad continuation.
func fuzzSeeds() [][]byte {
	payload := make([]byte, 3000)
	for i := range payload {
		payload[i] = byte(i)
	}
	msg := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoTest, Type: 1, Sender: 1,
		Instance: broadcast.Instance{Origin: 1, Seq: 7}}, Auth: []byte("authenticator")}
	msg.Flags = broadcast.HasPayload
	msg.PayloadLen = uint32(len(payload))
	msg.Digest = broadcast.DigestOfBytes(payload)
	prefix, _ := broadcast.AppendPrefix(nil, &msg)
	room := 1472 - HeaderSize
	first := append(append([]byte{}, prefix...), payload[:room-len(prefix)]...)
	var frags [][]byte
	frags = append(frags, first)
	h := msg.Header
	h.Flags = broadcast.HasPayload | broadcast.Fragment
	h.BodyLen, h.AuthLen = 0, 0
	chunk := room - broadcast.HeaderSize
	for off, idx := room-len(prefix), 1; off < len(payload); off, idx = off+chunk, idx+1 {
		n := min(chunk, len(payload)-off)
		h.FragIndex, h.FragOffset = uint16(idx), uint32(off)
		fb := make([]byte, broadcast.HeaderSize)
		h.Put(fb)
		frags = append(frags, append(fb, payload[off:off+n]...))
	}
	small := msg
	small.Flags = 0
	small.PayloadLen = 0
	smallFrame, _ := broadcast.AppendPrefix(nil, &small)

	join := func(ds ...[]byte) []byte {
		var out []byte
		for _, d := range ds {
			out = binary.LittleEndian.AppendUint16(out, uint16(len(d)))
			out = append(out, d...)
		}
		return out
	}
	probe := linkFrame(KindAck, 0, 0, nil)
	var seeds [][]byte
	seeds = append(seeds, join(probe))
	seeds = append(seeds, join(probe, linkFrame(KindData, fuzzEpoch, 1, smallFrame)))
	var fragged [][]byte
	fragged = append(fragged, probe)
	for i, f := range frags {
		fragged = append(fragged, linkFrame(KindData, fuzzEpoch, uint64(1+i), f))
	}
	seeds = append(seeds, join(fragged...))
	// Out of order, duplicated, and a continuation without its first frame.
	seeds = append(seeds, join(probe, fragged[3], fragged[2], fragged[2], fragged[1]))
	seeds = append(seeds, join(probe, linkFrame(KindData, fuzzEpoch, 1, frags[1])))
	// A restart of the peer mid-message.
	restart := linkFrame(KindAck, fuzzEpoch, 0, nil)
	binary.LittleEndian.PutUint64(restart[8:], fuzzPeerEpoch+1)
	seeds = append(seeds, join(probe, fragged[1], restart, fragged[2]))
	// A prefix spilt into pieces (a 3000-byte body), its payload in
	// continuations; then the same pieces cut short, out of order, and a
	// piece with a bad marker.
	big := msg
	big.Body = payload
	bigPrefix, _ := broadcast.AppendPrefix(nil, &big)
	var pieces [][]byte
	pieceRoom := room - PieceHeaderSize
	for off := 0; off < len(bigPrefix); off += pieceRoom {
		pb := binary.LittleEndian.AppendUint32([]byte{PieceMarker, 0, 0, 0}, uint32(off))
		pieces = append(pieces, append(pb, bigPrefix[off:min(off+pieceRoom, len(bigPrefix))]...))
	}
	spilt := []byte{}
	spilt = append(spilt, join(probe)...)
	seq := uint64(1)
	for _, pc := range pieces {
		spilt = append(spilt, join(linkFrame(KindPrefix, fuzzEpoch, seq, pc))...)
		seq++
	}
	h.FragIndex, h.FragOffset = 1, 0
	cont := make([]byte, broadcast.HeaderSize)
	h.Put(cont)
	cont = append(cont, payload[:chunk]...)
	seeds = append(seeds, append(spilt, join(linkFrame(KindData, fuzzEpoch, seq, cont))...))
	seeds = append(seeds, join(probe, linkFrame(KindPrefix, fuzzEpoch, 1, pieces[0]), linkFrame(KindData, fuzzEpoch, 2, smallFrame)))
	seeds = append(seeds, join(probe, linkFrame(KindPrefix, fuzzEpoch, 1, pieces[1])))
	bad := append([]byte{'Q'}, pieces[0][1:]...)
	seeds = append(seeds, join(probe, linkFrame(KindPrefix, fuzzEpoch, 1, bad)))
	// A payload of 12 frames, over half the fuzzed link's frame quota (16):
	// received into the heap; then the same cut short by a new message.
	_, large := onecastFrames(1, 9, 15000, 15000)
	heap := [][]byte{probe}
	for i, f := range large {
		heap = append(heap, linkFrame(KindData, fuzzEpoch, uint64(1+i), f))
	}
	seeds = append(seeds, join(heap...))
	seeds = append(seeds, join(append(heap[:4:4], linkFrame(KindData, fuzzEpoch, 4, smallFrame))...))
	// Garbage.
	seeds = append(seeds, join([]byte("L\x01\x01\x00garbage"), make([]byte, 60)))
	return seeds
}

// FuzzLinkReceive feeds arbitrary datagrams from a peer to a link: nothing
// may panic, every frame is released, and whatever is handed up is a
// well-formed message.
func FuzzLinkReceive(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		pool := bufpool.MustNew(bufpool.Config{FrameSize: 2048, Frames: 64, Checked: true})
		l, err := New(Config{Self: 0, N: 2, Conduit: &nullConduit{done: make(chan struct{})}, Epoch: fuzzEpoch,
			Tick: time.Hour, Window: 8, RecvQueue: 4})
		require.NoError(t, err)
		now := time.Now()
		for len(data) >= 2 {
			n := int(binary.LittleEndian.Uint16(data))
			data = data[2:]
			n = min(n, len(data), 1472)
			b, err := pool.Get()
			if err != nil {
				break
			}
			copy(b.Bytes(), data[:n])
			data = data[n:]
			l.peers[1].receive(b.Slice(0, n), now)
			// Take what was handed up, as a runner would.
			for {
				select {
				case in := <-l.inbound:
					l.taken(in)
					if in.Msg.Flags&broadcast.HasPayload != 0 {
						require.Equal(t, int(in.Msg.PayloadLen), in.Msg.Payload.Len(), "a message is handed up whole")
					}
					in.Release()
					continue
				default:
				}
				break
			}
		}
		require.NoError(t, l.Close())
		require.NoError(t, pool.CheckLeaks())
	})
}

// TestCutContinuationSendsTheMessageUpStripped: the kernel cuts the
// continuations of a payload whose digest entered its held set after the
// first frame passed. The message goes up stripped (its vote still
// counts), the remaining continuations are consumed, and nothing is
// rejected.
func TestCutContinuationSendsTheMessageUpStripped(t *testing.T) {
	pool := bufpool.MustNew(bufpool.Config{FrameSize: 2048, Frames: 64, Checked: true})
	l, err := New(Config{Self: 0, N: 2, Conduit: &nullConduit{done: make(chan struct{})}, Epoch: fuzzEpoch,
		Tick: time.Hour, Window: 8, RecvQueue: 4})
	require.NoError(t, err)
	msg := broadcast.Message{Header: broadcast.Header{Protocol: broadcast.ProtoTest, Type: 1, Sender: 1,
		Instance: broadcast.Instance{Origin: 1, Seq: 7}}, Auth: []byte("authenticator")}
	payload := make([]byte, 4000)
	msg.Flags, msg.PayloadLen, msg.Digest = broadcast.HasPayload, uint32(len(payload)), broadcast.DigestOfBytes(payload)
	first, _ := broadcast.AppendPrefix(nil, &msg)
	first = append(first, payload[:1000]...)
	cut := func(idx uint16, off uint32) []byte { // a continuation as the XDP program leaves it
		h := msg.Header
		h.Flags = broadcast.Fragment | broadcast.Stripped
		h.BodyLen, h.AuthLen, h.FragIndex, h.FragOffset = 0, 0, idx, off
		b := make([]byte, broadcast.HeaderSize)
		h.Put(b)
		return b
	}
	frames := [][]byte{linkFrame(KindAck, 0, 0, nil), linkFrame(KindData, fuzzEpoch, 1, first),
		linkFrame(KindData, fuzzEpoch, 2, cut(1, 1000)), linkFrame(KindData, fuzzEpoch, 3, cut(2, 2400))}
	for _, fr := range frames {
		b, err := pool.Copy(fr)
		require.NoError(t, err)
		l.peers[1].receive(b, time.Now())
	}
	require.Len(t, l.inbound, 1)
	in := <-l.inbound
	l.taken(in)
	assert.Equal(t, broadcast.Stripped, in.Msg.Flags&(broadcast.Stripped|broadcast.HasPayload))
	assert.Equal(t, msg.Digest, in.Msg.Digest)
	assert.Equal(t, "authenticator", string(in.Msg.Auth))
	in.Release()
	assert.Zero(t, l.Stats().Rejected)
	assert.Equal(t, uint64(3), l.peers[1].rcvNxt-1, "every frame consumed")
	require.NoError(t, l.Close())
	require.NoError(t, pool.CheckLeaks())
}

// FuzzParseHeader checks the link header codec on arbitrary bytes: no
// panic, and what parses re-encodes to the same bytes.
func FuzzParseHeader(f *testing.F) {
	f.Add(linkFrame(KindAck, 0, 0, nil))
	f.Add(linkFrame(KindData, 3, 9, []byte("x")))
	f.Add([]byte("short"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			require.NotZero(t, broadcast.ReasonOf(err), "rejections are typed: %v", err)
			return
		}
		out := make([]byte, HeaderSize)
		h.Put(out)
		want := append([]byte{}, b[:HeaderSize]...)
		want[3] = 0 // reserved, not kept
		require.Equal(t, want, out)
	})
}

// TestWriteFuzzCorpus writes the seeds to testdata/fuzz when
// ONECAST_WRITE_CORPUS is set (the committed corpus comes from it).
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("ONECAST_WRITE_CORPUS") == "" {
		env.OptIn(t, "set ONECAST_WRITE_CORPUS=1 to rewrite testdata/fuzz")
	}
	write := func(target string, seeds [][]byte) {
		dir := filepath.Join("testdata", "fuzz", target)
		require.NoError(t, os.MkdirAll(dir, 0o755))
		for i, s := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
			require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%02d", i)), []byte(body), 0o644))
		}
	}
	write("FuzzLinkReceive", fuzzSeeds())
	write("FuzzParseHeader", [][]byte{linkFrame(KindAck, 0, 0, nil), linkFrame(KindData, 3, 9, []byte("x")), []byte("short")})
}
