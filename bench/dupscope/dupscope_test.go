package dupscope

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// pkt is one synthetic packet.
type pkt struct {
	at       time.Duration
	udp      bool
	src, dst netip.AddrPort
	seq      uint32
	syn      bool
	payload  []byte
}

func frame(t testing.TB, p pkt) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{0, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{0, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: p.src.Addr().AsSlice(), DstIP: p.dst.Addr().AsSlice()}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	var err error
	if p.udp {
		ip.Protocol = layers.IPProtocolUDP
		u := &layers.UDP{SrcPort: layers.UDPPort(p.src.Port()), DstPort: layers.UDPPort(p.dst.Port())}
		require.NoError(t, u.SetNetworkLayerForChecksum(ip))
		err = gopacket.SerializeLayers(buf, opts, eth, ip, u, gopacket.Payload(p.payload))
	} else {
		ip.Protocol = layers.IPProtocolTCP
		tc := &layers.TCP{SrcPort: layers.TCPPort(p.src.Port()), DstPort: layers.TCPPort(p.dst.Port()), Seq: p.seq, SYN: p.syn, ACK: !p.syn, Window: 65535}
		require.NoError(t, tc.SetNetworkLayerForChecksum(ip))
		err = gopacket.SerializeLayers(buf, opts, eth, ip, tc, gopacket.Payload(p.payload))
	}
	require.NoError(t, err)
	return buf.Bytes()
}

// writePcap writes packets to a pcap (or pcapng) file image.
func writePcap(t testing.TB, pkts []pkt, ng bool) []byte {
	t.Helper()
	var out bytes.Buffer
	var write func(ci gopacket.CaptureInfo, b []byte) error
	var flush func() error
	if ng {
		w, err := pcapgo.NewNgWriter(&out, layers.LinkTypeEthernet)
		require.NoError(t, err)
		write, flush = w.WritePacket, w.Flush
	} else {
		w := pcapgo.NewWriter(&out)
		require.NoError(t, w.WriteFileHeader(65536, layers.LinkTypeEthernet))
		write, flush = w.WritePacket, func() error { return nil }
	}
	for _, p := range pkts {
		b := frame(t, p)
		require.NoError(t, write(gopacket.CaptureInfo{Timestamp: t0.Add(p.at), CaptureLength: len(b), Length: len(b)}, b))
	}
	require.NoError(t, flush())
	return out.Bytes()
}

// tcpSend makes the packets of one TCP direction carrying data from start,
// split into segments of seg bytes, one per microsecond; the first is a SYN.
func tcpSend(src, dst netip.AddrPort, start time.Duration, data []byte, seg int) []pkt {
	isn := uint32(1000)
	out := []pkt{{at: start, src: src, dst: dst, seq: isn, syn: true}}
	for off := 0; off < len(data); off += seg {
		end := min(off+seg, len(data))
		out = append(out, pkt{at: start + time.Duration(off/seg+1)*time.Microsecond, src: src, dst: dst, seq: isn + 1 + uint32(off), payload: data[off:end]})
	}
	return out
}

func random(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func TestKnownValueSentThreeTimesOverTwoFlowsIsTwoRepeats(t *testing.T) {
	for _, ng := range []bool{false, true} {
		v := random(1, 3000)
		other := random(2, 100) // a value never sent
		a1, a2 := ap("127.0.0.11:40000"), ap("127.0.0.12:2380")
		b1, b2 := ap("127.0.0.11:40001"), ap("127.0.0.13:2380")
		var pkts []pkt
		pkts = append(pkts, tcpSend(a1, a2, 0, cat(random(3, 50), v, random(4, 7), v), 1400)...)
		pkts = append(pkts, tcpSend(b1, b2, time.Millisecond, cat(random(5, 11), v), 1400)...)
		rep, err := Analyse(bytes.NewReader(writePcap(t, pkts, ng)), Options{Known: [][]byte{v, other}})
		require.NoError(t, err)
		require.Len(t, rep.Known, 2)
		k := rep.Known[0]
		assert.Equal(t, 3, k.Copies)
		assert.Equal(t, 2, k.Repeats)
		assert.Equal(t, 2, k.Flows)
		assert.Equal(t, t0.Add(time.Microsecond), k.FirstSeen.UTC(), "the first data segment follows the SYN by 1 µs")
		assert.Equal(t, 0, rep.Known[1].Copies)
		assert.Equal(t, int64(3000+100), rep.KnownBytes)
		assert.Equal(t, int64(3*3000), rep.KnownWireBytes)
		var repeats int
		var repeatedBytes int64
		for _, f := range rep.Flows {
			repeats += f.KnownRepeats
			repeatedBytes += int64(f.KnownRepeats) * 3000
		}
		assert.Equal(t, 2, repeats, "two repeats")
		assert.Equal(t, int64(6000), repeatedBytes, "N = 2 × 3000 repeated bytes")
		byKey := map[FlowKey]FlowReport{}
		for _, f := range rep.Flows {
			byKey[f.Key] = f
		}
		fa := byKey[FlowKey{TCP, a1, a2}]
		assert.Equal(t, int64(50+3000+7+3000), fa.Bytes)
		assert.Equal(t, 2, fa.KnownCopies)
		assert.Equal(t, 1, fa.KnownRepeats, "the second copy in flow a is a repeat")
		assert.Equal(t, 1, byKey[FlowKey{TCP, b1, b2}].KnownRepeats)
	}
}

func TestChunkRepeatsAcrossThreeFlowsAreExact(t *testing.T) {
	v := random(9, 8192)
	var pkts []pkt
	pkts = append(pkts, tcpSend(ap("127.0.0.1:1000"), ap("127.0.0.2:2000"), 0, v, 1000)...)
	pkts = append(pkts, tcpSend(ap("127.0.0.1:1001"), ap("127.0.0.3:2000"), 250*time.Millisecond, v, 1460)...)
	pkts = append(pkts, pkt{at: time.Second, udp: true, src: ap("127.0.0.4:5000"), dst: ap("127.0.0.5:5000"), payload: v})
	rep, err := Analyse(bytes.NewReader(writePcap(t, pkts, false)), Options{})
	require.NoError(t, err)
	assert.Equal(t, int64(3*8192), rep.TotalBytes)
	require.Zero(t, rep.ChunkedBytes%3)
	per := rep.ChunkedBytes / 3
	assert.GreaterOrEqual(t, per, int64(8192-DefaultCDC.Min), "only a tail shorter than the minimum chunk is left out")
	assert.Equal(t, 2*per, rep.RepeatedBytes, "the second and third copies repeat the first")
	assert.Equal(t, per, rep.FirstSeenBytes)
	assert.Equal(t, 2*rep.Chunks/3, rep.RepeatedChunks)
	for _, f := range rep.Flows {
		switch f.Key.Src.Port() {
		case 1000:
			assert.Zero(t, f.RepeatedBytes, "the first copy is first-seen")
		default:
			assert.Equal(t, per, f.RepeatedBytes, f.Label)
			assert.Zero(t, f.RepeatedInFlow)
		}
	}
	// Gaps: the TCP copy 250 ms after the first, the UDP copy 750 ms after
	// the second; segment timing shifts each chunk by microseconds.
	assert.Equal(t, rep.RepeatedChunks, rep.RepeatGap.Count)
	assert.InDelta(t, float64(750*time.Millisecond), float64(rep.RepeatGap.Max), float64(20*time.Microsecond))
	assert.InDelta(t, float64(250*time.Millisecond), float64(rep.RepeatGap.P50), float64(20*time.Microsecond))
}

func TestReassemblyCountsRetransmitsAndReordersOnce(t *testing.T) {
	data := random(11, 5000)
	pkts := tcpSend(ap("10.0.0.1:1"), ap("10.0.0.2:2"), 0, data, 1000)
	// Reorder segments 2 and 3, and retransmit segment 1 at the end.
	pkts[2], pkts[3] = pkts[3], pkts[2]
	re := pkts[1]
	re.at = time.Second
	pkts = append(pkts, re)
	c, err := ReadCapture(bytes.NewReader(writePcap(t, pkts, false)), 0)
	require.NoError(t, err)
	require.Len(t, c.Streams, 1)
	assert.Equal(t, data, c.Streams[0].Data)
	assert.Equal(t, 6, c.Streams[0].Packets)
	assert.Equal(t, int64(6000), c.Streams[0].WireBytes)
	assert.Equal(t, int64(1), c.PacketRepeats)
	assert.Equal(t, int64(1000), c.PacketRepeatBytes)
	rep, err := AnalyseCapture(c, Options{})
	require.NoError(t, err)
	assert.Zero(t, rep.RepeatedBytes, "a retransmission is not content duplication")
}

func TestUDPDatagramsAreChunkedSeparately(t *testing.T) {
	v := random(12, 300) // one chunk (≥ Min) per datagram
	var pkts []pkt
	for i := range 4 {
		pkts = append(pkts, pkt{at: time.Duration(i) * time.Millisecond, udp: true, src: ap("127.0.0.1:9"), dst: ap("127.0.0.2:9"), payload: v})
	}
	rep, err := Analyse(bytes.NewReader(writePcap(t, pkts, false)), Options{Known: [][]byte{v}})
	require.NoError(t, err)
	assert.Equal(t, 4, rep.Chunks)
	assert.Equal(t, int64(900), rep.RepeatedBytes)
	assert.Equal(t, int64(900), rep.Flows[0].RepeatedInFlow)
	assert.Equal(t, 4, rep.Known[0].Copies)
	assert.Equal(t, time.Millisecond, rep.RepeatGap.P50)
	assert.Equal(t, int64(3), rep.PacketRepeats)
}

func TestKeepSelectsFlows(t *testing.T) {
	v := random(30, 2000)
	var pkts []pkt
	pkts = append(pkts, tcpSend(ap("127.0.0.1:1"), ap("127.0.0.2:2"), 0, v, 1000)...)
	pkts = append(pkts, tcpSend(ap("127.0.0.1:3"), ap("127.0.0.2:4"), time.Millisecond, v, 1000)...)
	rep, err := Analyse(bytes.NewReader(writePcap(t, pkts, false)), Options{Known: [][]byte{v},
		Keep: func(k FlowKey) bool { return k.Src.Port() == 3 }})
	require.NoError(t, err)
	require.Len(t, rep.Flows, 1)
	assert.Equal(t, int64(2000), rep.TotalBytes)
	assert.Zero(t, rep.RepeatedBytes, "the left-out flow's copy is not seen")
	assert.Equal(t, 1, rep.Known[0].Copies)
}

func TestNameLabelsFlows(t *testing.T) {
	pkts := tcpSend(ap("127.0.0.1:5"), ap("127.0.0.2:2379"), 0, []byte("hello"), 100)
	rep, err := Analyse(bytes.NewReader(writePcap(t, pkts, false)), Options{Name: func(a netip.AddrPort) string {
		if a.Port() == 2379 {
			return "etcd-1"
		}
		return ""
	}})
	require.NoError(t, err)
	require.Len(t, rep.Flows, 1)
	assert.Equal(t, "127.0.0.1:5 → etcd-1", rep.Flows[0].Label)
	var out bytes.Buffer
	require.NoError(t, rep.WriteText(&out, 10))
	assert.Contains(t, out.String(), "etcd-1")
}

func TestScannerFindsEveryOccurrence(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		data   string
		want   [][2]int // value, offset
	}{
		{"none", []string{"abc"}, "xyzxyz", nil},
		{"at both ends", []string{"abc"}, "abcxxabc", [][2]int{{0, 0}, {0, 5}}},
		{"overlapping", []string{"aa"}, "aaa", [][2]int{{0, 0}, {0, 1}}},
		{"shared prefix", []string{"abcd", "abce"}, "abce abcd", [][2]int{{0, 5}, {1, 0}}},
		{"longer than window", []string{string(random(1, 100))}, "x" + string(random(1, 100)) + "y", [][2]int{{0, 1}}},
		{"value longer than data", []string{"abcdef"}, "abc", nil},
		{"split by framing", []string{string(random(1, 100))}, string(random(1, 100)[:50]) + "\r\n1000\r\n" + string(random(1, 100)[50:]), [][2]int{{0, 0}}},
		{"twice, once split", []string{string(random(1, 100))}, string(random(1, 100)) + string(random(1, 100)[:70]) + "FRAME" + string(random(1, 100)[70:]), [][2]int{{0, 0}, {0, 100}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var vals [][]byte
			for _, v := range tt.values {
				vals = append(vals, []byte(v))
			}
			s, err := newScanner(vals)
			require.NoError(t, err)
			var got [][2]int
			s.copies([]byte(tt.data), func(v, off int) { got = append(got, [2]int{v, off}) })
			assert.Equal(t, tt.want, got)
		})
	}
	_, err := newScanner([][]byte{{}})
	assert.Error(t, err, "an empty value is refused")
}

func TestBadInputIsAnErrorNotAPanic(t *testing.T) {
	_, err := Analyse(bytes.NewReader([]byte("not a capture at all")), Options{})
	assert.True(t, errors.Is(err, ErrFormat))
	_, err = Analyse(bytes.NewReader(nil), Options{})
	assert.True(t, errors.Is(err, ErrFormat))
	good := writePcap(t, tcpSend(ap("127.0.0.1:1"), ap("127.0.0.1:2"), 0, random(1, 3000), 1000), false)
	for cut := 0; cut < len(good); cut += 37 {
		_, _ = Analyse(bytes.NewReader(good[:cut]), Options{})
	}
}

func FuzzReadCapture(f *testing.F) {
	f.Add(writePcap(f, tcpSend(ap("127.0.0.1:1"), ap("127.0.0.1:2"), 0, random(1, 700), 300), false))
	f.Add(writePcap(f, []pkt{{udp: true, src: ap("127.0.0.1:1"), dst: ap("127.0.0.1:2"), payload: random(2, 400)}}, true))
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := Analyse(bytes.NewReader(b), Options{Known: [][]byte{[]byte("abcd")}, MaxStreamBytes: 1 << 20})
		if err == nil {
			require.GreaterOrEqual(t, rep.ChunkedBytes, rep.RepeatedBytes)
		}
	})
}

func BenchmarkAnalyse(b *testing.B) {
	v := random(1, 16<<10)
	var pkts []pkt
	for i := range 16 {
		pkts = append(pkts, tcpSend(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(1000+i)), ap("127.0.0.2:2380"), time.Duration(i)*time.Millisecond, cat(random(uint64(i), 100), v), 1400)...)
	}
	img := writePcap(b, pkts, false)
	b.SetBytes(int64(len(img)))
	b.ReportAllocs()
	var rep *Report
	for b.Loop() {
		var err error
		rep, err = Analyse(bytes.NewReader(img), Options{Known: [][]byte{v}})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(rep.KnownFactor, "copies/value")
}

func TestMatcherFindsValuesInsideABatch(t *testing.T) {
	a, b := random(21, 64), random(22, 1000)
	m, err := NewMatcher([][]byte{a, b})
	require.NoError(t, err)
	batch := cat([]byte{2, 0, 0, 0}, b, []byte{9, 9}, a)
	var got [][2]int
	m.Copies(batch, func(v, off int) { got = append(got, [2]int{v, off}) })
	assert.Equal(t, [][2]int{{0, 4 + 1000 + 2}, {1, 4}}, got)
}
