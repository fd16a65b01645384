package xdp

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/netio/link"
)

// XDP return codes.
const (
	xdpPass = 2
)

// loadTestProgram loads the XDP program without attaching it; tests run it
// on crafted frames with BPF_PROG_TEST_RUN. There is no socket in its map,
// so a redirect comes back as XDP_PASS and shows in the Redirected counter.
func loadTestProgram(t testing.TB) *Program {
	t.Helper()
	skipUnlessRoot(t)
	p, err := LoadProgram(ProgramConfig{Port: 7700, LinkHeaderSize: link.HeaderSize, HeldMax: 1024})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p
}

func runProgram(t testing.TB, p *Program, frame []byte) (uint32, []byte) {
	t.Helper()
	ret, out, err := p.objs.OnecastXdp.Test(frame)
	require.NoError(t, err)
	return ret, out
}

// checkStripped verifies that out is a well-formed stripped frame.
func checkStripped(t testing.TB, out []byte) {
	t.Helper()
	off, n, _, err := parseUDP(out, 7700)
	require.NoError(t, err, "the stripped frame's IP and UDP lengths agree with its size")
	require.Equal(t, len(out), off+n)
	assert.Zero(t, ipChecksum(out[ethLen:ethLen+ipv4Len]), "the IPv4 checksum was fixed")
	hdr := out[HeadersLen+link.HeaderSize:]
	flags := broadcast.Flags(hdr[broadcast.FlagsOffset])
	assert.Equal(t, broadcast.Stripped, flags&(broadcast.Stripped|broadcast.HasPayload))
	body := int(binary.LittleEndian.Uint16(hdr[6:]))
	auth := int(binary.LittleEndian.Uint16(hdr[64:]))
	if flags&broadcast.Fragment != 0 {
		body, auth = 0, 0 // a continuation keeps its header only
	}
	assert.Equal(t, broadcast.HeaderSize+body+auth, len(hdr), "exactly the payload was cut")
}

func TestProgramVerdicts(t *testing.T) {
	p := loadTestProgram(t)
	payload := make([]byte, 900)
	held := broadcast.DigestOfBytes(payload)
	other := broadcast.DigestOfBytes([]byte("other"))
	p.Held(0, held)
	arp := buildFrame(make([]byte, 28))
	binary.BigEndian.PutUint16(arp[12:], 0x0806)
	otherPort := buildFrame(onecastFrame(broadcast.HasPayload, held, payload))
	binary.BigEndian.PutUint16(otherPort[36:], 53)
	bodyPastEnd := onecastFrame(broadcast.HasPayload, held, payload)
	binary.LittleEndian.PutUint16(bodyPastEnd[link.HeaderSize+6:], 60000)
	ipFragment := buildFrame(onecastFrame(broadcast.HasPayload, held, payload))
	ipFragment[20] = 0x20 // more fragments

	for _, tc := range []struct {
		name      string
		frame     []byte
		ret       uint32
		stripped  bool
		unchanged bool
	}{
		{"held first frame is stripped", buildFrame(onecastFrame(broadcast.HasPayload, held, payload)), xdpPass, true, false},
		{"first frame of a digest not held passes whole", buildFrame(onecastFrame(broadcast.HasPayload, other, payload)), xdpPass, false, true},
		{"fragment of a held digest is cut to its header", buildFrame(onecastFrame(broadcast.HasPayload|broadcast.Fragment, held, payload)), xdpPass, true, false},
		{"fragment of a digest not held passes", buildFrame(onecastFrame(broadcast.HasPayload|broadcast.Fragment, other, payload)), xdpPass, false, true},
		{"already stripped frame is left alone", buildFrame(onecastFrame(broadcast.Stripped, held, nil)), xdpPass, false, true},
		{"body length past the end is not cut", buildFrame(bodyPastEnd), xdpPass, false, true},
		{"ARP goes to the kernel", arp, xdpPass, false, true},
		{"other UDP port goes to the kernel", otherPort, xdpPass, false, true},
		{"IP fragment goes to the kernel", ipFragment, xdpPass, false, true},
		{"bare link ack", buildFrame(make([]byte, link.HeaderSize)), xdpPass, false, true},
		{"partial onecast header", buildFrame(onecastFrame(broadcast.HasPayload, held, payload)[:link.HeaderSize+30]), xdpPass, false, true},
		{"Ethernet header only", buildFrame(nil)[:14], xdpPass, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ret, out := runProgram(t, p, tc.frame)
			assert.EqualValues(t, tc.ret, ret)
			if tc.unchanged {
				assert.Equal(t, tc.frame, out)
			}
			if tc.stripped {
				checkStripped(t, out)
				assert.Equal(t, len(tc.frame)-len(payload), len(out))
			}
		})
	}
	k, err := p.Counters()
	require.NoError(t, err)
	assert.EqualValues(t, 1, k.StrippedFrames)
	assert.EqualValues(t, len(payload), k.StrippedBytes)
	assert.EqualValues(t, 1, k.StrippedFrags)
	assert.EqualValues(t, len(payload), k.StrippedFragBytes)
	assert.EqualValues(t, 1, k.Malformed)
	assert.EqualValues(t, 4, k.Passed, "ARP, other port, IP fragment, bare Ethernet")
}

// FuzzXDPProgram runs the kernel program on arbitrary bytes after valid
// Ethernet/IPv4/UDP headers and a onecast header naming a held digest: the
// verifier already proved memory safety; this checks the program's output is
// always a well-formed frame and that it cuts only payload bytes.
func FuzzXDPProgram(f *testing.F) {
	payload := make([]byte, 300)
	held := broadcast.DigestOfBytes(payload)
	f.Add(onecastFrame(broadcast.HasPayload, held, payload))
	f.Add(onecastFrame(broadcast.HasPayload|broadcast.Fragment, held, payload))
	f.Add(onecastFrame(broadcast.Stripped, held, nil))
	f.Add([]byte{})
	p := loadTestProgram(f)
	p.Held(0, held)
	f.Fuzz(func(t *testing.T, datagram []byte) { checkProgramOn(t, p, datagram) })
}

// TestProgramOnRandomMutations runs the fuzz property on seeded random
// mutations of valid frames: flipped bytes, cut and extended tails, and
// length fields set to random values.
func TestProgramOnRandomMutations(t *testing.T) {
	p := loadTestProgram(t)
	payload := make([]byte, 300)
	held := broadcast.DigestOfBytes(payload)
	p.Held(0, held)
	seeds := [][]byte{
		onecastFrame(broadcast.HasPayload, held, payload),
		onecastFrame(broadcast.HasPayload|broadcast.Fragment, held, payload),
	}
	rng := rand.New(rand.NewPCG(6, 6))
	hdr := link.HeaderSize
	for i := range 20000 {
		d := append([]byte(nil), seeds[i%2]...)
		switch rng.IntN(5) {
		case 0: // a random byte of the onecast header
			d[hdr+rng.IntN(broadcast.HeaderSize)] = byte(rng.Uint32())
		case 1: // body or auth length
			off := []int{6, 64}[rng.IntN(2)]
			binary.LittleEndian.PutUint16(d[hdr+off:], uint16(rng.IntN(1500)))
		case 2: // flags
			d[hdr+broadcast.FlagsOffset] = byte(rng.Uint32())
		case 3: // cut
			d = d[:rng.IntN(len(d)+1)]
		case 4: // extend
			d = append(d, make([]byte, rng.IntN(1000))...)
		}
		checkProgramOn(t, p, d)
		if t.Failed() {
			t.Fatalf("mutation %d: %x", i, d)
		}
	}
}

func checkProgramOn(t *testing.T, p *Program, datagram []byte) {
	{
		if len(datagram) > 1400 {
			return
		}
		in := buildFrame(datagram)
		ret, out := runProgram(t, p, in)
		switch {
		case ret != xdpPass:
			t.Fatalf("verdict %d", ret)
		case len(out) < len(in):
			checkStripped(t, out)
			// Above the IP header, only the flags byte changed.
			kept := append([]byte(nil), out[HeadersLen:]...)
			flags := link.HeaderSize + broadcast.FlagsOffset
			kept[flags] = datagram[flags]
			require.Equal(t, datagram[:len(kept)], kept, "header, body and authenticator are kept")
		default:
			require.Equal(t, in, out, "a frame not stripped is not modified")
		}
	}
}

// TestHeldMapQuotaIsPerSupplier: a Byzantine supplier's distinct payloads
// fill only its own share of the kernel's held map: a correct supplier's
// digests stay held, no insert is refused, and the pushed-out digests are
// counted.
func TestHeldMapQuotaIsPerSupplier(t *testing.T) {
	skipUnlessRoot(t)
	p, err := LoadProgram(ProgramConfig{Port: 7700, LinkHeaderSize: link.HeaderSize, HeldMax: 64, Nodes: 4})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	digest := func(from, i int) broadcast.Digest {
		return broadcast.DigestOfBytes([]byte{byte(from), byte(i), byte(i >> 8)})
	}
	for i := range 10 {
		p.Held(0, digest(0, i))
	}
	for i := range 500 { // origin 3 floods distinct payloads
		p.Held(3, digest(3, i))
	}
	for i := range 10 {
		assert.True(t, p.IsHeld(digest(0, i)), "the correct supplier's digest %d is still held", i)
	}
	for i := range 500 {
		assert.Equal(t, i >= 500-16, p.IsHeld(digest(3, i)), "the flooder keeps only its newest 16 (64/4) digests: %d", i)
	}
	st := p.HeldStats()
	assert.Equal(t, HeldStats{Entries: 26, Quota: 16, QuotaEvictions: 500 - 16}, st)
	// Eviction by the store removes a digest and frees its supplier's room.
	p.Evicted(digest(3, 499))
	p.Evicted(digest(3, 0)) // pushed out already: nothing happens
	assert.False(t, p.IsHeld(digest(3, 499)))
	p.Held(3, digest(3, 1000))
	assert.True(t, p.IsHeld(digest(3, 498)), "a freed slot is used before anything is pushed out")
	assert.Equal(t, 26, p.HeldStats().Entries)
}
