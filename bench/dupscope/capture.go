package dupscope

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/gopacket/gopacket/reassembly"
)

// Transport is a flow's transport protocol.
type Transport uint8

// Transports.
const (
	TCP Transport = iota + 1
	UDP
)

func (t Transport) String() string {
	switch t {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return fmt.Sprintf("transport%d", uint8(t))
}

// FlowKey names one direction of a flow: bytes from Src to Dst.
type FlowKey struct {
	Transport Transport
	Src, Dst  netip.AddrPort
}

func (k FlowKey) String() string { return fmt.Sprintf("%s %s → %s", k.Transport, k.Src, k.Dst) }

// Reverse is the opposite direction of the same flow.
func (k FlowKey) Reverse() FlowKey { return FlowKey{Transport: k.Transport, Src: k.Dst, Dst: k.Src} }

func (k FlowKey) less(o FlowKey) bool {
	if k.Transport != o.Transport {
		return k.Transport < o.Transport
	}
	if c := k.Src.Compare(o.Src); c != 0 {
		return c < 0
	}
	return k.Dst.Compare(o.Dst) < 0
}

// mark says that the stream byte at offset off arrived at ts.
type mark struct {
	off int
	ts  time.Time
}

// Stream is the content one direction of a flow carried: the reassembled
// TCP byte stream, or the UDP datagram payloads one after another (with a
// boundary at each datagram).
type Stream struct {
	Key  FlowKey
	Data []byte
	// Packets is the number of packets with payload seen in this direction
	// (retransmissions included).
	Packets int
	// WireBytes is the payload bytes of those packets (retransmissions
	// included), which may exceed len(Data).
	WireBytes int64
	// Gaps counts bytes TCP reassembly had to skip (missing from the
	// capture).
	Gaps  int64
	marks []mark // ascending offsets
	// bounds are datagram boundaries (UDP): offsets where a datagram starts.
	bounds []int
}

// TimeAt returns when the byte at offset off was captured.
func (s *Stream) TimeAt(off int) time.Time {
	i := sort.Search(len(s.marks), func(i int) bool { return s.marks[i].off > off }) - 1
	if i < 0 {
		if len(s.marks) > 0 {
			return s.marks[0].ts
		}
		return time.Time{}
	}
	return s.marks[i].ts
}

func (s *Stream) append(b []byte, ts time.Time) {
	if len(b) == 0 {
		return
	}
	s.marks = append(s.marks, mark{off: len(s.Data), ts: ts})
	s.Data = append(s.Data, b...)
}

// Capture is a capture file read into streams.
type Capture struct {
	Streams []*Stream // sorted by key
	// Packets is every packet record read; Decoded those with an IPv4/IPv6
	// TCP or UDP layer; Malformed those that failed to decode.
	Packets, Decoded, Malformed int
	// PacketRepeats counts packets whose whole transport payload equals an
	// earlier packet's (retransmissions included), and their bytes.
	PacketRepeats, PacketRepeatBytes int64
	// First and Last are the first and last packet timestamps.
	First, Last time.Time
}

// ErrFormat reports a file that is neither pcap nor pcapng.
var ErrFormat = errors.New("dupscope: not a pcap or pcapng capture")

// packetSource is what pcapgo's two readers have in common.
type packetSource interface {
	ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
}

// ReadCapture reads a pcap or pcapng capture and rebuilds its streams.
// maxBytes bounds the content kept per direction (0: no bound); content past
// it is counted in WireBytes but not kept.
func ReadCapture(r io.Reader, maxBytes int) (*Capture, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	magic, err := br.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	var src packetSource
	linkOf := func(gopacket.CaptureInfo) layers.LinkType { return 0 }
	if binary.LittleEndian.Uint32(magic) == 0x0A0D0D0A {
		ng, err := pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			return nil, fmt.Errorf("%w: pcapng: %v", ErrFormat, err)
		}
		src = ng
		linkOf = func(ci gopacket.CaptureInfo) layers.LinkType {
			if iface, err := ng.Interface(ci.InterfaceIndex); err == nil {
				return iface.LinkType
			}
			return ng.LinkType()
		}
	} else {
		pr, err := pcapgo.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: pcap: %v", ErrFormat, err)
		}
		src = pr
		lt := pr.LinkType()
		linkOf = func(gopacket.CaptureInfo) layers.LinkType { return lt }
	}

	c := &Capture{}
	b := newBuilder(c, maxBytes)
	for {
		data, ci, err := src.ReadPacketData()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("dupscope: packet %d: %w", c.Packets+1, err)
		}
		c.Packets++
		if c.First.IsZero() || ci.Timestamp.Before(c.First) {
			c.First = ci.Timestamp
		}
		if ci.Timestamp.After(c.Last) {
			c.Last = ci.Timestamp
		}
		b.packet(data, ci, linkOf(ci))
	}
	b.finish()
	return c, nil
}

// builder turns packets into streams.
type builder struct {
	c        *Capture
	maxBytes int
	streams  map[FlowKey]*Stream
	asm      *reassembly.Assembler
	seen     map[[32]byte]struct{}
}

func newBuilder(c *Capture, maxBytes int) *builder {
	b := &builder{c: c, maxBytes: maxBytes, streams: map[FlowKey]*Stream{}, seen: map[[32]byte]struct{}{}}
	b.asm = reassembly.NewAssembler(reassembly.NewStreamPool(&factory{b: b}))
	return b
}

func (b *builder) stream(k FlowKey) *Stream {
	s := b.streams[k]
	if s == nil {
		s = &Stream{Key: k}
		b.streams[k] = s
	}
	return s
}

func (b *builder) keep(s *Stream, p []byte, ts time.Time) {
	if b.maxBytes > 0 && len(s.Data)+len(p) > b.maxBytes {
		p = p[:max(0, b.maxBytes-len(s.Data))]
	}
	s.append(p, ts)
}

// asmContext carries a packet's capture info into the assembler.
type asmContext struct{ ci gopacket.CaptureInfo }

func (a *asmContext) GetCaptureInfo() gopacket.CaptureInfo { return a.ci }

func (b *builder) packet(data []byte, ci gopacket.CaptureInfo, lt layers.LinkType) {
	var first gopacket.Decoder = lt
	switch lt {
	case layers.LinkTypeRaw, layers.LinkType(12), layers.LinkType(14): // raw IP
		first = layers.LayerTypeIPv4
		if len(data) > 0 && data[0]>>4 == 6 {
			first = layers.LayerTypeIPv6
		}
	}
	pkt := gopacket.NewPacket(data, first, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
	if el := pkt.ErrorLayer(); el != nil {
		b.c.Malformed++
		return
	}
	nl, tl := pkt.NetworkLayer(), pkt.TransportLayer()
	if nl == nil || tl == nil {
		return
	}
	var srcIP, dstIP netip.Addr
	switch ip := nl.(type) {
	case *layers.IPv4:
		srcIP, _ = netip.AddrFromSlice(ip.SrcIP.To4())
		dstIP, _ = netip.AddrFromSlice(ip.DstIP.To4())
	case *layers.IPv6:
		srcIP, _ = netip.AddrFromSlice(ip.SrcIP)
		dstIP, _ = netip.AddrFromSlice(ip.DstIP)
	default:
		return
	}
	b.c.Decoded++
	switch t := tl.(type) {
	case *layers.TCP:
		k := FlowKey{TCP, netip.AddrPortFrom(srcIP, uint16(t.SrcPort)), netip.AddrPortFrom(dstIP, uint16(t.DstPort))}
		if len(t.Payload) > 0 {
			s := b.stream(k)
			s.Packets++
			s.WireBytes += int64(len(t.Payload))
			b.packetRepeat(t.Payload)
		}
		b.asm.AssembleWithContext(nl.NetworkFlow(), t, &asmContext{ci: ci})
	case *layers.UDP:
		if len(t.Payload) == 0 {
			return
		}
		k := FlowKey{UDP, netip.AddrPortFrom(srcIP, uint16(t.SrcPort)), netip.AddrPortFrom(dstIP, uint16(t.DstPort))}
		s := b.stream(k)
		s.Packets++
		s.WireBytes += int64(len(t.Payload))
		b.packetRepeat(t.Payload)
		s.bounds = append(s.bounds, len(s.Data))
		b.keep(s, t.Payload, ci.Timestamp)
	}
}

func (b *builder) packetRepeat(p []byte) {
	h := sum(p)
	if _, ok := b.seen[h]; ok {
		b.c.PacketRepeats++
		b.c.PacketRepeatBytes += int64(len(p))
		return
	}
	b.seen[h] = struct{}{}
}

func (b *builder) finish() {
	b.asm.FlushAll()
	for _, s := range b.streams {
		if len(s.Data) > 0 || s.Packets > 0 {
			b.c.Streams = append(b.c.Streams, s)
		}
	}
	sort.Slice(b.c.Streams, func(i, j int) bool { return b.c.Streams[i].Key.less(b.c.Streams[j].Key) })
}

// factory makes one tcpStream per TCP connection.
type factory struct{ b *builder }

func (f *factory) New(netFlow, tcpFlow gopacket.Flow, tcp *layers.TCP, _ reassembly.AssemblerContext) reassembly.Stream {
	src, _ := netip.AddrFromSlice(netFlow.Src().Raw())
	dst, _ := netip.AddrFromSlice(netFlow.Dst().Raw())
	k := FlowKey{TCP, netip.AddrPortFrom(src, uint16(tcp.SrcPort)), netip.AddrPortFrom(dst, uint16(tcp.DstPort))}
	return &tcpStream{b: f.b, key: k}
}

// tcpStream receives one connection's reassembled bytes, both directions.
type tcpStream struct {
	b   *builder
	key FlowKey // client → server as first seen
}

func (t *tcpStream) Accept(_ *layers.TCP, _ gopacket.CaptureInfo, _ reassembly.TCPFlowDirection, _ reassembly.Sequence, start *bool, _ reassembly.AssemblerContext) bool {
	*start = true // accept streams whose SYN the capture missed
	return true
}

func (t *tcpStream) ReassembledSG(sg reassembly.ScatterGather, _ reassembly.AssemblerContext) {
	dir, _, _, skip := sg.Info()
	k := t.key
	if dir == reassembly.TCPDirServerToClient {
		k = k.Reverse()
	}
	avail, _ := sg.Lengths()
	if avail == 0 {
		return
	}
	s := t.b.stream(k)
	if skip > 0 {
		s.Gaps += int64(skip)
	}
	data := sg.Fetch(avail)
	// Timestamps per packet: walk the data in the pieces the assembler
	// recorded, looking up each piece's capture time.
	for off := 0; off < len(data); {
		ci := sg.CaptureInfo(off)
		end := len(data)
		// The assembler keeps one capture info per page; find where this
		// one stops by probing forward in 1 KiB steps (cheap, bounded).
		for probe := off + 1024; probe < len(data); probe += 1024 {
			if !sg.CaptureInfo(probe).Timestamp.Equal(ci.Timestamp) {
				end = probe
				break
			}
		}
		t.b.keep(s, data[off:end], ci.Timestamp)
		off = end
	}
}

func (t *tcpStream) ReassemblyComplete(reassembly.AssemblerContext) bool { return true }
