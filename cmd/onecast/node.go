package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lni/goutils/syncutil"

	"github.com/onecast/onecast/bench"
	"github.com/onecast/onecast/bracha"
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/dolevstrong"
	"github.com/onecast/onecast/netio"
	"github.com/onecast/onecast/netio/config"
	"github.com/onecast/onecast/netio/link"
	"github.com/onecast/onecast/netio/udp"
	"github.com/onecast/onecast/pbft"
	"github.com/onecast/onecast/sim/toyrb"
)

func nodeCommand() command {
	return command{
		name:    "node",
		summary: "run one node of a cluster over UDP (config from keygen)",
		run:     runNode,
	}
}

// nodeSpecs lists the protocols a node can run.
func nodeSpecs() []broadcast.Spec {
	return []broadcast.Spec{bracha.Spec, pbft.Spec, dolevstrong.Spec, toyrb.Spec(0)}
}

// nodeOptions are the node command's knobs beyond the configuration file.
type nodeOptions struct {
	id          int
	frames      int
	deliveries  string
	statsEvery  time.Duration
	window      int
	payloadSize int
	// control is the address of the bench control port (empty: none).
	control string
}

func runNode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "cluster configuration file (required)")
	var o nodeOptions
	fs.IntVar(&o.id, "id", -1, "this node's ID (required)")
	fs.IntVar(&o.frames, "frames", 65536, "receive and payload buffer frames (each 2 KiB for the default MTU)")
	fs.StringVar(&o.deliveries, "deliveries", "", "append one line per delivery to this file")
	fs.DurationVar(&o.statsEvery, "stats", 10*time.Second, "period of the stats log line (0: none)")
	fs.IntVar(&o.window, "window", 0, "reliable-link window, frames per peer (default 512)")
	fs.IntVar(&o.payloadSize, "max-payload", 64<<20, "largest payload a client may submit")
	fs.StringVar(&o.control, "control", "", "serve the bench control port here (host:port; default: the config's control address), for `onecast bench --cluster local|remote`")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "text or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *cfgPath == "" {
		return fmt.Errorf("%w: --config is required", errUsage)
	}
	logger, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	c, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	if o.id < 0 || o.id >= c.N() {
		return fmt.Errorf("%w: --id %d is not a node of %s (0 … %d)", errUsage, o.id, *cfgPath, c.N()-1)
	}
	nd, err := startClusterNode(c, o, logger)
	if err != nil {
		return err
	}
	<-ctx.Done()
	nd.logger.Info("shutting down", "cause", context.Cause(ctx))
	return nd.close()
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("%w: --log-level %q: %v", errUsage, level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("%w: --log-format %q (want text or json)", errUsage, format)
}

// clusterNode is one running node: pool, store, protocol, UDP conduit,
// reliable link, runner, and the client API.
type clusterNode struct {
	id      broadcast.NodeID
	logger  *slog.Logger
	pool    *bufpool.Pool
	store   *broadcast.PayloadStore
	conduit *udp.Conduit
	link    *link.Link
	runner  *netio.Runner
	metrics *broadcast.Metrics
	api     *apiServer
	control *bench.ControlServer
	stopper *syncutil.Stopper

	delivered atomic.Uint64
	outMu     sync.Mutex
	out       *bufio.Writer
	outFile   *os.File
}

func startClusterNode(c *config.Cluster, o nodeOptions, logger *slog.Logger) (nd *clusterNode, err error) {
	id := broadcast.NodeID(o.id)
	spec, err := broadcast.FindSpec(nodeSpecs(), c.Protocol)
	if err != nil {
		return nil, fmt.Errorf("config protocol: %w", err)
	}
	params := broadcast.Params{N: c.N(), F: c.F, Self: id, Mode: c.ModeValue()}
	if err := params.Validate(spec.MinN); err != nil {
		return nil, fmt.Errorf("config: %s: %w", spec.Name, err)
	}
	ring, err := c.Keyring(o.id)
	if err != nil {
		return nil, err
	}
	auth, err := broadcast.NewAuthenticator(c.Scheme(), ring)
	if err != nil {
		return nil, fmt.Errorf("config auth: %w", err)
	}
	mtu := c.MTU
	if mtu == 0 {
		mtu = udp.DefaultMTU
	}
	logger = logger.With("node", o.id)
	nd = &clusterNode{id: id, logger: logger, metrics: &broadcast.Metrics{}, stopper: syncutil.NewStopper()}
	defer func() {
		if err != nil {
			_ = nd.close()
		}
	}()
	frameSize := max(2048, (mtu+1023)/1024*1024)
	nd.pool, err = bufpool.New(bufpool.Config{FrameSize: frameSize, Frames: o.frames, Name: fmt.Sprintf("node%d", o.id)})
	if err != nil {
		return nd, err
	}
	nd.store = broadcast.NewPayloadStore(broadcast.StoreConfig{})
	proto, err := spec.New(params, broadcast.Env{Store: nd.store, Keys: ring, Tuning: broadcast.Tuning{Auth: c.Scheme()}})
	if err != nil {
		return nd, fmt.Errorf("%s: %w", spec.Name, err)
	}
	if o.deliveries != "" {
		nd.outFile, err = os.OpenFile(o.deliveries, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nd, fmt.Errorf("--deliveries: %w", err)
		}
		nd.out = bufio.NewWriter(nd.outFile)
	}
	nd.conduit, err = udp.New(udp.Config{Self: id, Peers: c.Addrs(), Pool: nd.pool, MTU: mtu, Logger: logger})
	if err != nil {
		return nd, err
	}
	nd.conduit.WatchStore(nd.store) // long-held payloads leave the receive pool when it runs low
	nd.link, err = link.New(link.Config{Self: id, N: c.N(), Conduit: nd.conduit, Window: o.window, Metrics: nd.metrics, Logger: logger})
	if err != nil {
		_ = nd.conduit.Close()
		return nd, err
	}
	// The Unix epoch as the protocol clock's origin: every node of the
	// cluster, on any host with a synchronized clock, counts the same time,
	// so synchronous rounds (Dolev–Strong) line up across processes.
	nd.runner, err = netio.NewRunner(netio.RunnerConfig{Self: id, N: c.N(), Protocol: proto, Transport: nd.link, Epoch: time.Unix(0, 0),
		Auth: auth, Metrics: nd.metrics, OnDeliver: nd.onDeliver, Logger: logger, Verifiers: 2})
	if err != nil {
		return nd, err
	}
	if node, _ := c.Node(o.id); o.control == "" {
		o.control = node.Control
	}
	if o.control != "" {
		nd.control, err = bench.NewControlServer(bench.ControlConfig{
			Addr: o.control, Submit: nd.runner.Submit, Counters: nd.counters, Pool: nd.pool, MaxPayload: o.payloadSize,
			Info:   bench.NodeInfo{ID: o.id, Protocol: spec.Name, Mode: params.Mode.String(), N: params.N, F: params.F, Transport: "udp"},
			Logger: logger,
		})
		if err != nil {
			return nd, err
		}
	}
	if node, _ := c.Node(o.id); node.API != "" {
		nd.api, err = startAPI(node.API, nd, o.payloadSize, logger)
		if err != nil {
			return nd, err
		}
	}
	nd.runner.Start()
	if o.statsEvery > 0 {
		nd.stopper.RunWorker(func() {
			t := time.NewTicker(o.statsEvery)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					nd.logStats("stats")
				case <-nd.stopper.ShouldStop():
					return
				}
			}
		})
	}
	logger.Info("node started", "protocol", spec.Name, "mode", params.Mode, "n", params.N, "f", params.F,
		"auth", c.Scheme(), "addr", nd.conduit.LocalAddr(), "api", c.Nodes[o.id].API, "epoch", nd.link.Epoch(), "mtu", mtu)
	return nd, nil
}

// onDeliver runs on the runner's loop goroutine; it takes d's reference.
func (nd *clusterNode) onDeliver(d broadcast.Delivery) {
	nd.delivered.Add(1)
	if nd.out != nil {
		nd.outMu.Lock()
		fmt.Fprintf(nd.out, "%d/%d %d %s %d\n", d.Instance.Origin, d.Instance.Seq, d.Index, hex.EncodeToString(d.Digest[:]), d.Payload.Len())
		nd.outMu.Unlock()
	}
	nd.logger.Debug("delivered", "instance", d.Instance, "index", d.Index, "digest", d.Digest, "bytes", d.Payload.Len())
	if nd.api != nil {
		nd.api.delivered(d)
	}
	if nd.control != nil {
		nd.control.Delivered(d.Payload, time.Now())
	}
	d.Payload.Release()
}

// counters are what the bench control port reports.
func (nd *clusterNode) counters() bench.NodeCounters {
	ls := nd.link.Stats()
	return bench.NodeCounters{Metrics: nd.metrics.Snapshot(), CopiedBytes: nd.pool.Stats().CopiedBytes, // the link's receive copies are in nd.metrics
		Retransmissions: ls.Retransmits}
}

func (nd *clusterNode) logStats(msg string) {
	snap := nd.metrics.Snapshot()
	tot := snap.Totals()
	attrs := []any{"deliveries", nd.delivered.Load(), "delivered_bytes", snap.DeliveredBytes,
		"msgs_sent", tot.SentMessages, "msgs_received", tot.RecvMessages,
		"payload_dup_factor", fmt.Sprintf("%.3f", snap.PayloadDupFactor()),
		"copied_bytes", snap.CopiedBytes, "rejects", snap.Rejects}
	if nd.runner != nil {
		rs := nd.runner.Stats()
		attrs = append(attrs, "send_errors", rs.SendErrors, "auth_failures", rs.AuthFailures, "step_errors", rs.StepErrors)
	}
	if nd.link != nil {
		ls := nd.link.Stats()
		attrs = append(attrs, "frames_sent", ls.FramesSent, "retransmits", ls.Retransmits, "duplicates", ls.Duplicates,
			"restarts", ls.Restarts)
	}
	if nd.conduit != nil {
		cs := nd.conduit.Stats()
		us := nd.conduit.UDPStats()
		attrs = append(attrs, "wire_bytes_sent", cs.BytesSent, "wire_bytes_received", cs.BytesReceived,
			"recv_copied_bytes", cs.RecvCopiedBytes, "recv_no_frame", us.NoFrame, "send_refused", us.SendErrors)
	}
	nd.logger.Info(msg, attrs...)
}

// close stops everything in order: the API, the runner, the link (and
// its conduit), the store; then logs the totals.
func (nd *clusterNode) close() error {
	if nd.control != nil {
		_ = nd.control.Close()
	}
	if nd.api != nil {
		nd.api.close()
	}
	nd.stopper.Stop()
	if nd.runner != nil {
		nd.runner.Stop()
	}
	var errs []error
	if nd.link != nil {
		errs = append(errs, nd.link.Close())
	}
	if nd.store != nil {
		nd.store.Close()
	}
	if nd.out != nil {
		nd.outMu.Lock()
		errs = append(errs, nd.out.Flush(), nd.outFile.Close())
		nd.outMu.Unlock()
	}
	if nd.runner != nil {
		nd.logStats("node stopped")
	}
	return errors.Join(errs...)
}

// apiServer takes payloads from clients over TCP: each is a 4-byte
// little-endian length and the bytes. The node submits it and, when it
// delivers that payload itself, answers "delivered <instance> <index>
// <digest>" on the same connection.
type apiServer struct {
	ln         net.Listener
	nd         *clusterNode
	maxPayload int
	logger     *slog.Logger
	stopper    *syncutil.Stopper
	ctx        context.Context
	cancel     context.CancelFunc

	mu      sync.Mutex
	waiters map[broadcast.Digest][]chan string
	conns   map[net.Conn]struct{}
}

func startAPI(addr string, nd *clusterNode, maxPayload int, logger *slog.Logger) (*apiServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("client API: %w", err)
	}
	s := &apiServer{ln: ln, nd: nd, maxPayload: maxPayload, logger: logger, stopper: syncutil.NewStopper(),
		waiters: map[broadcast.Digest][]chan string{}, conns: map[net.Conn]struct{}{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.stopper.RunWorker(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[conn] = struct{}{}
			s.mu.Unlock()
			s.stopper.RunWorker(func() { s.serve(conn) })
		}
	})
	return s, nil
}

func (s *apiServer) serve(conn net.Conn) {
	replies := make(chan string, 4096)
	done := make(chan struct{})
	s.stopper.RunWorker(func() {
		w := bufio.NewWriter(conn)
		for {
			select {
			case line := <-replies:
				w.WriteString(line)
				if len(replies) == 0 {
					if err := w.Flush(); err != nil {
						return
					}
				}
			case <-done:
				return
			case <-s.stopper.ShouldStop():
				return
			}
		}
	})
	defer func() {
		close(done)
		s.mu.Lock()
		delete(s.conns, conn)
		for d, ws := range s.waiters {
			for i := 0; i < len(ws); i++ {
				if ws[i] == replies {
					ws = append(ws[:i], ws[i+1:]...)
					i--
				}
			}
			if len(ws) == 0 {
				delete(s.waiters, d)
			} else {
				s.waiters[d] = ws
			}
		}
		s.mu.Unlock()
		conn.Close()
	}()
	r := bufio.NewReader(conn)
	var lenBuf [4]byte
	var data []byte
	for {
		if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
			return
		}
		n := int(binary.LittleEndian.Uint32(lenBuf[:]))
		if n == 0 || n > s.maxPayload {
			fmt.Fprintf(conn, "error payload of %d bytes outside (0, %d]\n", n, s.maxPayload)
			return
		}
		if cap(data) < n {
			data = make([]byte, n)
		}
		data = data[:n]
		if _, err := io.ReadFull(r, data); err != nil {
			return
		}
		b, err := s.nd.pool.Copy(data)
		if err != nil {
			fmt.Fprintf(conn, "error %v\n", err)
			return
		}
		d := broadcast.DigestOf(b)
		s.mu.Lock()
		s.waiters[d] = append(s.waiters[d], replies)
		s.mu.Unlock()
		if err := s.nd.runner.Submit(s.ctx, b); err != nil {
			return
		}
	}
}

// delivered answers the clients waiting for d's payload.
func (s *apiServer) delivered(d broadcast.Delivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.waiters) == 0 {
		return
	}
	ws, ok := s.waiters[d.Digest]
	if !ok {
		dg := broadcast.DigestOf(d.Payload)
		if ws, ok = s.waiters[dg]; !ok {
			return
		}
		d.Digest = dg
	}
	line := fmt.Sprintf("delivered %v %d %s\n", d.Instance, d.Index, hex.EncodeToString(d.Digest[:]))
	select {
	case ws[0] <- line:
	default:
		s.logger.Warn("client too slow: delivery notice dropped", "digest", d.Digest)
	}
	if len(ws) == 1 {
		delete(s.waiters, d.Digest)
	} else {
		s.waiters[d.Digest] = ws[1:]
	}
}

func (s *apiServer) close() {
	s.cancel()
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.stopper.Stop()
}
