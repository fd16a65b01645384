package xdp

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/netio/link"
)

var (
	epA = newEndpoint(net.HardwareAddr{2, 0x77, 0, 0, 0, 1}, netip.MustParseAddrPort("10.77.2.1:7700"))
	epB = newEndpoint(net.HardwareAddr{2, 0x77, 0, 0, 0, 2}, netip.MustParseAddrPort("10.77.2.2:7700"))
)

func buildFrame(payload []byte) []byte {
	f := make([]byte, HeadersLen+len(payload))
	putHeaders(f, &epA, &epB, len(payload), 1)
	copy(f[HeadersLen:], payload)
	return f
}

func TestParseUDPReadsWhatPutHeadersWrites(t *testing.T) {
	f := buildFrame([]byte("hello"))
	off, n, from, err := parseUDP(f, 7700)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(f[off:off+n]))
	assert.Equal(t, epA.addr, from)
	assert.Zero(t, ipChecksum(f[ethLen:ethLen+ipv4Len]), "the IPv4 checksum verifies")
}

func TestParseUDPRejectsBadFrames(t *testing.T) {
	good := buildFrame([]byte("payload"))
	for name, tc := range map[string]struct {
		mut    func([]byte) []byte
		reason broadcast.Reason
	}{
		"truncated headers":    {func(f []byte) []byte { return f[:30] }, broadcast.ReasonTruncated},
		"not IPv4":             {func(f []byte) []byte { f[12] = 0x86; f[13] = 0xdd; return f }, broadcast.ReasonMagic},
		"IP options":           {func(f []byte) []byte { f[14] = 0x46; return f }, broadcast.ReasonMagic},
		"not UDP":              {func(f []byte) []byte { f[23] = 6; return f }, broadcast.ReasonMagic},
		"IP fragment":          {func(f []byte) []byte { f[20] = 0x20; return f }, broadcast.ReasonLength},
		"IP length past end":   {func(f []byte) []byte { binary.BigEndian.PutUint16(f[16:], 1400); return f }, broadcast.ReasonLength},
		"IP length too small":  {func(f []byte) []byte { binary.BigEndian.PutUint16(f[16:], 20); return f }, broadcast.ReasonLength},
		"UDP length disagrees": {func(f []byte) []byte { binary.BigEndian.PutUint16(f[38:], 9); return f }, broadcast.ReasonLength},
		"other port":           {func(f []byte) []byte { binary.BigEndian.PutUint16(f[36:], 53); return f }, broadcast.ReasonMagic},
	} {
		t.Run(name, func(t *testing.T) {
			f := tc.mut(append([]byte(nil), good...))
			_, _, _, err := parseUDP(f, 7700)
			require.Error(t, err)
			assert.Equal(t, tc.reason, broadcast.ReasonOf(err))
		})
	}
}

func FuzzParseUDP(f *testing.F) {
	f.Add(buildFrame([]byte("seed")))
	f.Add(buildFrame(nil))
	f.Fuzz(func(t *testing.T, frame []byte) {
		off, n, _, err := parseUDP(frame, 7700)
		if err != nil {
			if broadcast.ReasonOf(err) == 0 {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if off < HeadersLen || n < 0 || off+n > len(frame) {
			t.Fatalf("datagram [%d, %d) outside a frame of %d bytes", off, off+n, len(frame))
		}
	})
}

// inject writes raw Ethernet frames onto node 0's interface.
func inject(t *testing.T, ifindex int, frames ...[]byte) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	require.NoError(t, err)
	defer unix.Close(fd)
	for _, f := range frames {
		require.NoError(t, unix.Sendto(fd, f, 0, &unix.SockaddrLinklayer{Ifindex: ifindex, Halen: 6, Addr: [8]byte{2, 0x77, 0, 0, 0, 2}}))
	}
}

// TestBadFramesOnTheWireAreDroppedAndCounted injects malformed frames on
// the wire and checks that the conduit rejects and counts them, the kernel
// cuts nothing it should not, and good frames still get through.
func TestBadFramesOnTheWireAreDroppedAndCounted(t *testing.T) {
	topo, cs := pair(t, nil)
	b := cs[1]
	payload := make([]byte, 600)
	held := broadcast.DigestOfBytes(payload)
	b.Program().Held(0, held)

	lenPastEnd := onecastFrame(broadcast.HasPayload, held, payload)
	binary.LittleEndian.PutUint16(lenPastEnd[link.HeaderSize+6:], 60000) // BodyLen past the end
	partial := onecastFrame(broadcast.HasPayload, held, payload)[:link.HeaderSize+40]
	ipPastEnd := buildFrame([]byte("ip length past the end"))
	binary.BigEndian.PutUint16(ipPastEnd[16:], 1400)
	udpBad := buildFrame([]byte("udp length disagrees"))
	binary.BigEndian.PutUint16(udpBad[38:], 9)
	short := buildFrame([]byte("x"))[:40]

	require.NoError(t, topo.Do(0, func() error {
		inject(t, topo.Nodes[0].Ifindex, ipPastEnd, udpBad, short, buildFrame(lenPastEnd), buildFrame(partial), buildFrame([]byte("good")))
		return nil
	}))
	var got [][]byte
	for len(got) < 3 {
		d, err := recvOne(t, b, 2*time.Second)
		require.NoError(t, err, "got %d datagrams", len(got))
		got = append(got, append([]byte(nil), d.Frame.Bytes()...))
		d.Frame.Release()
	}
	assert.Equal(t, lenPastEnd, got[0], "a frame whose lengths run past its end is not cut in the kernel")
	assert.Equal(t, partial, got[1])
	assert.Equal(t, "good", string(got[2]))
	_, err := broadcast.DecodeFrame(bufpool.Wrap(got[0][link.HeaderSize:]), nil)
	assert.Equal(t, broadcast.ReasonTruncated, broadcast.ReasonOf(err), "user space rejects it with a typed error")
	st, err := b.XDPStats()
	require.NoError(t, err)
	assert.EqualValues(t, 2, st.Rejected, "bad IP and UDP lengths are rejected in user space")
	assert.EqualValues(t, 1, st.Kernel.Malformed, "a partial onecast header is counted in the kernel")
	assert.Zero(t, st.Kernel.StrippedFrames)
}
