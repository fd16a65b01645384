package dupscope

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"sort"
	"time"

	fastcdc "github.com/jotfs/fastcdc-go"
)

// CDC are the content-defined chunking sizes, in bytes.
type CDC struct {
	Min, Avg, Max int
}

// DefaultCDC suits values from a few hundred bytes up: 256 B minimum, 1 KiB
// average, 8 KiB maximum chunks.
var DefaultCDC = CDC{Min: 256, Avg: 1024, Max: 8192}

// Options configure an analysis. The zero value is usable.
type Options struct {
	// CDC are the chunk sizes; zero means DefaultCDC.
	CDC CDC
	// Known are values whose every occurrence is counted (nil: none). The
	// copies of a value in one flow direction are the count of its most
	// frequent 32-byte piece there, so a copy split by framing the transport
	// inserted still counts once. Values should not repeat a 32-byte piece
	// inside themselves (random values do not).
	Known [][]byte
	// Name names an endpoint in the report (a node, a port's role); nil or
	// "" means the address itself.
	Name func(netip.AddrPort) string
	// Keep, when set, selects the flow directions to analyse (others are
	// left out of every figure but the packet counts).
	Keep func(FlowKey) bool
	// MaxStreamBytes bounds the content kept per flow direction (0: 1 GiB).
	MaxStreamBytes int
}

// Report is the result of an analysis. Byte counts are application bytes:
// reassembled TCP stream bytes and UDP payload bytes, without headers and
// without TCP retransmissions.
type Report struct {
	Packets, Decoded, Malformed int
	Duration                    time.Duration

	// TotalBytes is all stream bytes; ChunkedBytes those in chunks at least
	// CDC.Min long (shorter tails of streams and datagrams are not
	// fingerprinted); RepeatedBytes the bytes of chunks seen before.
	TotalBytes, ChunkedBytes, RepeatedBytes int64
	Chunks, RepeatedChunks                  int
	// FirstSeenBytes = ChunkedBytes − RepeatedBytes.
	FirstSeenBytes int64
	// PacketRepeats are whole transport payloads equal to an earlier one
	// (TCP retransmissions count here, not in RepeatedBytes).
	PacketRepeats, PacketRepeatBytes int64
	// RepeatGap summarises the time from a chunk's previous occurrence to its
	// repeat.
	RepeatGap Quantiles

	Flows []FlowReport // by descending Bytes
	Known []KnownReport
	// KnownBytes is the sum of the known values' lengths; KnownWireBytes the
	// bytes of all their occurrences. KnownFactor = KnownWireBytes ÷
	// KnownBytes (0 when no known value was given).
	KnownBytes, KnownWireBytes int64
	KnownFactor                float64
	CDC                        CDC
}

// Quantiles of a duration sample.
type Quantiles struct {
	Count              int
	P50, P90, P99, Max time.Duration
}

func quantiles(d []time.Duration) Quantiles {
	if len(d) == 0 {
		return Quantiles{}
	}
	slices.Sort(d)
	at := func(q float64) time.Duration { return d[int(q*float64(len(d)-1))] }
	return Quantiles{Count: len(d), P50: at(0.5), P90: at(0.9), P99: at(0.99), Max: d[len(d)-1]}
}

// FlowReport is one direction of one flow.
type FlowReport struct {
	Key   FlowKey
	Label string // Name(src) → Name(dst)
	// Bytes is the stream's content; RepeatedBytes its bytes in chunks seen
	// before (anywhere earlier in the capture).
	Bytes, RepeatedBytes int64
	// RepeatedInFlow are the repeated bytes whose previous occurrence was in
	// this same direction of this flow.
	RepeatedInFlow int64
	Packets        int
	Gaps           int64
	// KnownCopies and KnownBytes count occurrences of known values here.
	KnownCopies int
	KnownBytes  int64
	// KnownRepeats counts occurrences that were not a value's first one in
	// the capture.
	KnownRepeats int
}

// KnownReport is one known value.
type KnownReport struct {
	Index  int // position in Options.Known
	Len    int
	Digest [8]byte // SHA-256 prefix, for reading
	// Copies is how many times the value occurs in the capture; Repeats =
	// max(Copies−1, 0); Flows how many flow directions carry it.
	Copies, Repeats, Flows int
	// FirstSeen is when its first copy was captured.
	FirstSeen time.Time
}

// Analyse reads a capture and reports its duplicated content.
func Analyse(r io.Reader, opts Options) (*Report, error) {
	maxb := opts.MaxStreamBytes
	if maxb == 0 {
		maxb = 1 << 30
	}
	c, err := ReadCapture(r, maxb)
	if err != nil {
		return nil, err
	}
	return AnalyseCapture(c, opts)
}

// occurrence is one chunk or known-value copy.
type occurrence struct {
	ts     time.Time
	stream int
	off    int
	n      int
	key    [32]byte
}

func sortOcc(o []occurrence) {
	sort.SliceStable(o, func(i, j int) bool {
		if !o[i].ts.Equal(o[j].ts) {
			return o[i].ts.Before(o[j].ts)
		}
		if o[i].stream != o[j].stream {
			return o[i].stream < o[j].stream
		}
		return o[i].off < o[j].off
	})
}

// AnalyseCapture analyses streams already read.
func AnalyseCapture(c *Capture, opts Options) (*Report, error) {
	cdc := opts.CDC
	if cdc == (CDC{}) {
		cdc = DefaultCDC
	}
	name := func(a netip.AddrPort) string {
		if opts.Name != nil {
			if s := opts.Name(a); s != "" {
				return s
			}
		}
		return a.String()
	}
	rep := &Report{Packets: c.Packets, Decoded: c.Decoded, Malformed: c.Malformed,
		Duration: c.Last.Sub(c.First), PacketRepeats: c.PacketRepeats, PacketRepeatBytes: c.PacketRepeatBytes, CDC: cdc}
	if opts.Keep != nil {
		kept := &Capture{}
		*kept = *c
		kept.Streams = nil
		for _, s := range c.Streams {
			if opts.Keep(s.Key) {
				kept.Streams = append(kept.Streams, s)
			}
		}
		c = kept
	}
	flows := make([]FlowReport, len(c.Streams))

	// Content-defined chunks of every stream, in capture-time order.
	var chunks []occurrence
	for i, s := range c.Streams {
		flows[i] = FlowReport{Key: s.Key, Label: name(s.Key.Src) + " → " + name(s.Key.Dst),
			Bytes: int64(len(s.Data)), Packets: s.Packets, Gaps: s.Gaps}
		rep.TotalBytes += int64(len(s.Data))
		pieces := [][2]int{{0, len(s.Data)}}
		if s.Key.Transport == UDP {
			pieces = pieces[:0]
			for j, b := range s.bounds {
				end := len(s.Data)
				if j+1 < len(s.bounds) {
					end = s.bounds[j+1]
				}
				pieces = append(pieces, [2]int{min(b, len(s.Data)), end})
			}
		}
		for _, p := range pieces {
			if err := chunk(s.Data[p[0]:p[1]], cdc, func(off, n int, h [32]byte) {
				off += p[0]
				chunks = append(chunks, occurrence{ts: s.TimeAt(off), stream: i, off: off, n: n, key: h})
			}); err != nil {
				return nil, err
			}
		}
	}
	sortOcc(chunks)
	type last struct {
		ts     time.Time
		stream int
	}
	seen := map[[32]byte]last{}
	var gaps []time.Duration
	for _, o := range chunks {
		rep.Chunks++
		rep.ChunkedBytes += int64(o.n)
		if prev, ok := seen[o.key]; ok {
			rep.RepeatedChunks++
			rep.RepeatedBytes += int64(o.n)
			flows[o.stream].RepeatedBytes += int64(o.n)
			if prev.stream == o.stream {
				flows[o.stream].RepeatedInFlow += int64(o.n)
			}
			gaps = append(gaps, o.ts.Sub(prev.ts))
		}
		seen[o.key] = last{ts: o.ts, stream: o.stream}
	}
	rep.FirstSeenBytes = rep.ChunkedBytes - rep.RepeatedBytes
	rep.RepeatGap = quantiles(gaps)

	// Known values.
	if len(opts.Known) > 0 {
		kr := make([]KnownReport, len(opts.Known))
		for i, v := range opts.Known {
			d := sha256.Sum256(v)
			kr[i] = KnownReport{Index: i, Len: len(v)}
			copy(kr[i].Digest[:], d[:8])
			rep.KnownBytes += int64(len(v))
		}
		sc, err := newScanner(opts.Known)
		if err != nil {
			return nil, err
		}
		var occ []occurrence
		for i, s := range c.Streams {
			sc.copies(s.Data, func(v, off int) {
				var k [32]byte
				k[0], k[1], k[2], k[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
				occ = append(occ, occurrence{ts: s.TimeAt(off), stream: i, off: off, n: len(opts.Known[v]), key: k})
			})
		}
		sortOcc(occ)
		flowsOf := make([]map[int]bool, len(kr))
		for _, o := range occ {
			v := int(o.key[0]) | int(o.key[1])<<8 | int(o.key[2])<<16 | int(o.key[3])<<24
			k := &kr[v]
			if k.Copies == 0 {
				k.FirstSeen = o.ts
			} else {
				k.Repeats++
				flows[o.stream].KnownRepeats++
			}
			k.Copies++
			if flowsOf[v] == nil {
				flowsOf[v] = map[int]bool{}
			}
			flowsOf[v][o.stream] = true
			flows[o.stream].KnownCopies++
			flows[o.stream].KnownBytes += int64(o.n)
			rep.KnownWireBytes += int64(o.n)
		}
		for i := range kr {
			kr[i].Flows = len(flowsOf[i])
		}
		rep.Known = kr
		if rep.KnownBytes > 0 {
			rep.KnownFactor = float64(rep.KnownWireBytes) / float64(rep.KnownBytes)
		}
	}

	sort.SliceStable(flows, func(i, j int) bool {
		if flows[i].Bytes != flows[j].Bytes {
			return flows[i].Bytes > flows[j].Bytes
		}
		return flows[i].Key.less(flows[j].Key)
	})
	rep.Flows = flows
	return rep, nil
}

// chunk splits b into content-defined chunks and calls fn for each chunk at
// least c.Min long with its offset, length and SHA-256.
func chunk(b []byte, c CDC, fn func(off, n int, h [32]byte)) error {
	if len(b) < c.Min {
		return nil
	}
	ch, err := fastcdc.NewChunker(bytes.NewReader(b), fastcdc.Options{MinSize: c.Min, AverageSize: c.Avg, MaxSize: c.Max})
	if err != nil {
		return fmt.Errorf("dupscope: chunker: %w", err)
	}
	for {
		k, err := ch.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("dupscope: chunker: %w", err)
		}
		if k.Length < c.Min {
			continue // a stream's short tail
		}
		fn(k.Offset, k.Length, sha256.Sum256(k.Data))
	}
}

func sum(b []byte) [32]byte { return sha256.Sum256(b) }

func sortInts(a []int) { sort.Ints(a) }
