package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/onecast/onecast/bufpool"
)

// The control port lets `onecast bench` coordinate nodes that run in other
// processes or on other hosts (`onecast node --control ADDR`). It is plain
// HTTP, for operators' curl as much as for the bench:
//
//	POST /submit      the request body is one payload; the node submits it
//	GET  /deliveries  a stream of 24-byte records, one per delivery at this
//	                  node: payload number, submit time, delivery time
//	                  (little-endian uint64s; times in Unix nanoseconds)
//	GET  /counters    the node's NodeCounters and peak RSS, as JSON
//
// Latency across hosts compares the submitting host's clock with the
// delivering host's: synchronize clocks (NTP, PTP) before trusting
// latencies of a remote cluster. On one host (`local`) they are exact.

// deliveryRecordSize is the size of one /deliveries record.
const deliveryRecordSize = 24

// ControlServer serves a node's control port.
type ControlServer struct {
	info     NodeInfo
	submit   func(ctx context.Context, p bufpool.Buf) error
	counters func() NodeCounters
	pool     *bufpool.Pool
	maxBody  int
	log      *slog.Logger
	srv      *http.Server
	ln       net.Listener

	mu      sync.Mutex
	streams map[chan [deliveryRecordSize]byte]struct{}
}

// ControlConfig configures a ControlServer.
type ControlConfig struct {
	// Addr to listen on (host:port).
	Addr string
	// Submit hands the node a payload (taking the reference).
	Submit func(ctx context.Context, p bufpool.Buf) error
	// Counters reads the node's counters.
	Counters func() NodeCounters
	// Pool holds submitted payloads; nil uses heap buffers.
	Pool *bufpool.Pool
	// Info describes the node's configuration.
	Info NodeInfo
	// MaxPayload bounds a submitted payload (default 64 MiB).
	MaxPayload int
	Logger     *slog.Logger
}

// NewControlServer listens on cfg.Addr and serves until Close.
func NewControlServer(cfg ControlConfig) (*ControlServer, error) {
	if cfg.Submit == nil || cfg.Counters == nil {
		return nil, errors.New("bench: control server needs Submit and Counters")
	}
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = 64 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("control port: %w", err)
	}
	s := &ControlServer{info: cfg.Info, submit: cfg.Submit, counters: cfg.Counters, pool: cfg.Pool, maxBody: cfg.MaxPayload,
		log: cfg.Logger, ln: ln, streams: map[chan [deliveryRecordSize]byte]struct{}{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /submit", s.handleSubmit)
	mux.HandleFunc("GET /deliveries", s.handleDeliveries)
	mux.HandleFunc("GET /counters", s.handleCounters)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Warn("control port stopped", "err", err)
		}
	}()
	return s, nil
}

// Addr returns the address the server listens on.
func (s *ControlServer) Addr() string { return s.ln.Addr().String() }

// Close stops the server and ends every delivery stream.
func (s *ControlServer) Close() error {
	s.mu.Lock()
	for ch := range s.streams {
		close(ch)
		delete(s.streams, ch)
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

// Delivered records a delivery at this node for the streams. It borrows p.
// A slow stream loses records rather than slowing the node.
func (s *ControlServer) Delivered(p bufpool.Buf, at time.Time) {
	seq, sent, ok := readStamp(p)
	if !ok {
		return
	}
	var rec [deliveryRecordSize]byte
	binary.LittleEndian.PutUint64(rec[0:], seq)
	binary.LittleEndian.PutUint64(rec[8:], uint64(sent.UnixNano()))
	binary.LittleEndian.PutUint64(rec[16:], uint64(at.UnixNano()))
	s.mu.Lock()
	for ch := range s.streams {
		select {
		case ch <- rec:
		default:
		}
	}
	s.mu.Unlock()
}

func (s *ControlServer) handleSubmit(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength <= 0 || r.ContentLength > int64(s.maxBody) {
		http.Error(w, fmt.Sprintf("payload must have a Content-Length of 1 to %d bytes", s.maxBody), http.StatusBadRequest)
		return
	}
	n := int(r.ContentLength)
	var buf bufpool.Buf
	if s.pool != nil {
		b, err := s.pool.Alloc(n)
		if err != nil {
			http.Error(w, "no buffer for the payload: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		buf = b
		off := 0
		for seg := range buf.WritableSegments() {
			k, err := io.ReadFull(r.Body, seg)
			off += k
			if err != nil {
				buf.Release()
				http.Error(w, "short payload: "+err.Error(), http.StatusBadRequest)
				return
			}
		}
	} else {
		data := make([]byte, n)
		if _, err := io.ReadFull(r.Body, data); err != nil {
			http.Error(w, "short payload: "+err.Error(), http.StatusBadRequest)
			return
		}
		buf = bufpool.Wrap(data)
	}
	if err := s.submit(r.Context(), buf); err != nil {
		http.Error(w, "submit: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *ControlServer) handleDeliveries(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	ch := make(chan [deliveryRecordSize]byte, 1<<16)
	s.mu.Lock()
	s.streams[ch] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if _, open := s.streams[ch]; open {
			delete(s.streams, ch)
		}
		s.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	// Each record goes out as soon as nothing more is queued behind it:
	// the bench returns a payload's window token when the last node's
	// record arrives, so a record held back (a periodic flush) holds the
	// load back with it. Under load the queue batches records per write.
	bw := bufio.NewWriterSize(w, 64<<10)
	for {
		select {
		case <-r.Context().Done():
			return
		case rec, open := <-ch:
			for {
				if !open {
					_ = bw.Flush()
					return
				}
				if _, err := bw.Write(rec[:]); err != nil {
					return
				}
				select {
				case rec, open = <-ch:
					continue
				default:
				}
				break
			}
			if err := bw.Flush(); err != nil {
				return
			}
			fl.Flush()
		}
	}
}

// controlCounters is the JSON of /counters.
type controlCounters struct {
	NodeCounters
	Info      NodeInfo `json:"info"`
	PeakRSSMB float64  `json:"peak_rss_mb"`
}

func (s *ControlServer) handleCounters(w http.ResponseWriter, _ *http.Request) {
	nc := s.counters()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	nc.CPUNanos, nc.Mallocs = uint64(cpuTime()), ms.Mallocs
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(controlCounters{NodeCounters: nc, Info: s.info, PeakRSSMB: peakRSSMB(0)})
}

// controlClient talks to one node's control port.
type controlClient struct {
	base string
	hc   *http.Client
}

func (c *controlClient) submit(ctx context.Context, p bufpool.Buf) error {
	defer p.Release()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/submit", p.Reader())
	if err != nil {
		return err
	}
	req.ContentLength = int64(p.Len())
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNoContent:
		return nil
	case http.StatusServiceUnavailable:
		return ErrBackPressure // congested: the node did not take it
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return fmt.Errorf("%s: %s: %s", c.base, resp.Status, msg)
}

func (c *controlClient) counters(ctx context.Context) (controlCounters, error) {
	var cc controlCounters
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/counters", nil)
	if err != nil {
		return cc, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return cc, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return cc, fmt.Errorf("%s: %s", c.base, resp.Status)
	}
	return cc, json.NewDecoder(resp.Body).Decode(&cc)
}

// follow reads id's delivery stream until ctx ends, reporting each record.
// It calls opened once: with nil when the node has registered the stream
// (it answers only then, so no later delivery is missed), or with the error
// that kept the stream from opening.
func (c *controlClient) follow(ctx context.Context, onRecord func(seq uint64, sent, at time.Time), opened func(error)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/deliveries", nil)
	if err != nil {
		opened(err)
		return err
	}
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		opened(err)
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("%s: %s", c.base, resp.Status)
		opened(err)
		return err
	}
	opened(nil)
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	var rec [deliveryRecordSize]byte
	for {
		if _, err := io.ReadFull(br, rec[:]); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		onRecord(binary.LittleEndian.Uint64(rec[0:]),
			time.Unix(0, int64(binary.LittleEndian.Uint64(rec[8:]))),
			time.Unix(0, int64(binary.LittleEndian.Uint64(rec[16:]))))
	}
}
