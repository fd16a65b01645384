package broadcast

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/bufpool"
)

func sampleHeader() Header {
	return Header{
		Protocol: ProtoBracha, Type: 2, Flags: HasPayload, Sender: 3,
		Instance: Instance{Origin: 1, Seq: 1 << 40}, Round: 7, PayloadLen: 5,
		Digest: DigestOfBytes([]byte("hello")),
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	h := sampleHeader()
	h.BodyLen, h.AuthLen, h.FragIndex, h.FragOffset = 9, 16, 0, 0
	var b [HeaderSize]byte
	h.Put(b[:])
	got, err := ParseHeader(b[:])
	require.NoError(t, err)
	assert.Equal(t, h, got)
	assert.Equal(t, h.Digest[:], b[DigestOffset:DigestOffset+32], "the digest sits where the XDP program reads it")
	assert.Equal(t, byte(HasPayload), b[FlagsOffset])
}

// frame builds a frame of header|body|auth|payload, the way a sender does.
func frame(t testing.TB, h Header, body, auth, payload []byte) []byte {
	m := Message{Header: h, Body: body, Auth: auth}
	out, err := AppendPrefix(nil, &m)
	require.NoError(t, err)
	return append(out, payload...)
}

func TestDecodeFrameGivesViews(t *testing.T) {
	pool := bufpool.MustNew(bufpool.Config{FrameSize: 512, Frames: 2, Checked: true})
	h := sampleHeader()
	raw := frame(t, h, []byte("body"), bytes.Repeat([]byte{0xAA}, 16), []byte("hello"))
	buf, err := pool.Copy(raw)
	require.NoError(t, err)

	m, err := DecodeFrame(buf, nil)
	require.NoError(t, err)
	assert.Equal(t, "body", string(m.Body))
	assert.Len(t, m.Auth, 16)
	assert.Equal(t, "hello", string(m.Payload.Bytes()))
	assert.True(t, m.Complete())
	assert.Equal(t, buf.FrameIndex(), m.Payload.FrameIndex(), "the payload is a view on the frame, not a copy")
	assert.Equal(t, 1, buf.Refs(), "decoding takes no reference")
	assert.EqualValues(t, 1, pool.Stats().Copies, "only the test's own Copy")
	buf.Release()
	require.NoError(t, pool.CheckLeaks())
}

func TestDecodeFrameRejects(t *testing.T) {
	good := sampleHeader()
	payload := []byte("hello")
	cases := []struct {
		name   string
		frame  func() []byte
		reason Reason
	}{
		{"empty", func() []byte { return nil }, ReasonTruncated},
		{"short header", func() []byte { return frame(t, good, nil, nil, payload)[:HeaderSize-1] }, ReasonTruncated},
		{"bad magic", func() []byte {
			f := frame(t, good, nil, nil, payload)
			f[0] ^= 0xFF
			return f
		}, ReasonMagic},
		{"bad version", func() []byte {
			f := frame(t, good, nil, nil, payload)
			f[2] = 9
			return f
		}, ReasonVersion},
		{"unknown protocol", func() []byte {
			f := frame(t, good, nil, nil, payload)
			f[3] = 200
			return f
		}, ReasonProtocol},
		{"unknown flag", func() []byte {
			f := frame(t, good, nil, nil, payload)
			f[FlagsOffset] |= 0x80
			return f
		}, ReasonFlags},
		{"body past the end", func() []byte {
			f := frame(t, good, nil, nil, payload)
			binary.LittleEndian.PutUint16(f[6:], 60000)
			return f
		}, ReasonTruncated},
		{"auth past the end", func() []byte {
			f := frame(t, good, nil, nil, payload)
			binary.LittleEndian.PutUint16(f[64:], 4000)
			return f
		}, ReasonTruncated},
		{"auth over the limit", func() []byte {
			f := frame(t, good, nil, nil, payload)
			binary.LittleEndian.PutUint16(f[64:], 60000)
			return f
		}, ReasonLength},
		{"payload over the limit", func() []byte {
			h := good
			h.PayloadLen = DefaultLimits.MaxPayload + 1
			return frame(t, h, nil, nil, payload)
		}, ReasonLength},
		{"more payload bytes than announced", func() []byte { return frame(t, good, nil, nil, []byte("hello world")) }, ReasonLength},
		{"payload flag without bytes", func() []byte { return frame(t, good, nil, nil, nil) }, ReasonLength},
		{"trailing bytes without payload flag", func() []byte {
			h := good
			h.Flags = 0
			return frame(t, h, nil, nil, payload)
		}, ReasonLength},
		{"payload and stripped", func() []byte {
			h := good
			h.Flags |= Stripped
			return frame(t, h, nil, nil, payload)
		}, ReasonFlags},
		{"fragment fields on a first frame", func() []byte {
			h := good
			h.FragOffset = 3
			return frame(t, h, nil, nil, payload)
		}, ReasonFlags},
		{"fragment with a body", func() []byte {
			h := good
			h.Flags |= Fragment
			h.FragIndex = 1
			return frame(t, h, []byte("b"), nil, payload)
		}, ReasonFlags},
		{"fragment index zero", func() []byte {
			h := good
			h.Flags |= Fragment
			return frame(t, h, nil, nil, payload)
		}, ReasonLength},
		{"fragment past payload end", func() []byte {
			h := good
			h.Flags |= Fragment
			h.FragIndex, h.FragOffset = 1, 3
			return frame(t, h, nil, nil, payload)
		}, ReasonLength},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var counters RejectCounters
			_, _, err := ParseFrame(tc.frame(), nil)
			require.Error(t, err)
			assert.Equal(t, tc.reason, ReasonOf(err), "error: %v", err)
			assert.ErrorIs(t, err, reasonErrs[tc.reason])
			counters.Count(err)
			assert.EqualValues(t, 1, counters.Get(tc.reason))
		})
	}
}

func TestDecodeFrameAcceptsValidShapes(t *testing.T) {
	h := sampleHeader()
	vote := h
	vote.Flags = 0
	stripped := h
	stripped.Flags = Stripped
	first := h
	first.PayloadLen = 10 // 5 bytes here, 5 in a continuation fragment
	frag := h
	frag.Flags = HasPayload | Fragment
	frag.PayloadLen, frag.FragIndex, frag.FragOffset = 10, 1, 5
	empty := h
	empty.PayloadLen = 0
	for name, f := range map[string][]byte{
		"vote without payload":        frame(t, vote, nil, make([]byte, 64), nil),
		"stripped by the kernel":      frame(t, stripped, nil, make([]byte, 16), nil),
		"first frame of a fragmented": frame(t, first, []byte("body"), make([]byte, 16), []byte("hello")),
		"continuation fragment":       frame(t, frag, nil, nil, []byte("world")),
		"empty payload":               frame(t, empty, nil, nil, nil),
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := ParseFrame(f, nil)
			require.NoError(t, err)
		})
	}
}

func TestAppendPrefixRefusesOversizeBody(t *testing.T) {
	m := Message{Header: sampleHeader(), Body: make([]byte, 70000)}
	_, err := AppendPrefix(nil, &m)
	require.Error(t, err)
}

func TestSigningDigestIgnoresPerFrameFields(t *testing.T) {
	h := sampleHeader()
	base := SigningDigest(&h, []byte("body"))
	mutable := h
	mutable.Flags = Stripped
	mutable.AuthLen, mutable.FragIndex, mutable.FragOffset = 99, 3, 1000
	assert.Equal(t, base, SigningDigest(&mutable, []byte("body")), "the kernel may strip a payload without invalidating the vote")

	for name, mut := range map[string]func(h *Header){
		"digest":   func(h *Header) { h.Digest[0] ^= 1 },
		"sender":   func(h *Header) { h.Sender++ },
		"round":    func(h *Header) { h.Round++ },
		"instance": func(h *Header) { h.Instance.Seq++ },
		"type":     func(h *Header) { h.Type++ },
		"length":   func(h *Header) { h.PayloadLen++ },
	} {
		c := h
		mut(&c)
		assert.NotEqual(t, base, SigningDigest(&c, []byte("body")), "%s must be covered", name)
	}
	assert.NotEqual(t, base, SigningDigest(&h, []byte("bodz")), "the body must be covered")
}

func FuzzParseFrame(f *testing.F) {
	h := sampleHeader()
	f.Add(frame(f, h, nil, nil, []byte("hello")))
	f.Add(frame(f, h, []byte("body"), make([]byte, 16), []byte("hello")))
	vote := h
	vote.Flags = 0
	f.Add(frame(f, vote, nil, make([]byte, 64), nil))
	frag := h
	frag.Flags = HasPayload | Fragment
	frag.PayloadLen, frag.FragIndex, frag.FragOffset = 10, 1, 5
	f.Add(frame(f, frag, nil, nil, []byte("world")))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, off, err := ParseFrame(b, nil)
		if err != nil {
			if ReasonOf(err) == 0 {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		// A frame that parses must re-encode to the same prefix, and its
		// parts must lie inside the frame.
		if off > len(b) || off != m.PrefixLen() {
			t.Fatalf("payload offset %d, prefix %d, frame %d", off, m.PrefixLen(), len(b))
		}
		again, err := AppendPrefix(nil, &m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, b[:off]) {
			t.Fatalf("re-encoded prefix differs")
		}
		if m.Flags&HasPayload == 0 && off != len(b) {
			t.Fatalf("trailing bytes accepted")
		}
	})
}

func BenchmarkHeaderPut(b *testing.B) {
	h := sampleHeader()
	var buf [HeaderSize]byte
	b.ReportAllocs()
	b.SetBytes(HeaderSize)
	for b.Loop() {
		h.Put(buf[:])
	}
}

func BenchmarkParseHeader(b *testing.B) {
	h := sampleHeader()
	var buf [HeaderSize]byte
	h.Put(buf[:])
	b.ReportAllocs()
	b.SetBytes(HeaderSize)
	for b.Loop() {
		if _, err := ParseHeader(buf[:]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendPrefix(b *testing.B) {
	m := Message{Header: sampleHeader(), Auth: make([]byte, 16)}
	dst := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = AppendPrefix(dst[:0], &m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeFrame(b *testing.B) {
	pool := bufpool.MustNew(bufpool.Config{FrameSize: 8192, Frames: 1})
	payload := bytes.Repeat([]byte{1}, 4096)
	h := sampleHeader()
	h.PayloadLen = uint32(len(payload))
	raw := frame(b, h, nil, make([]byte, 16), payload)
	buf, _ := pool.Copy(raw)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeFrame(buf, nil); err != nil {
			b.Fatal(err)
		}
	}
	buf.Release()
}
