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
	"github.com/onecast/onecast/dolevstrong"
	"github.com/onecast/onecast/netio/config"
	"github.com/onecast/onecast/netio/node"
	"github.com/onecast/onecast/pbft"
	"github.com/onecast/onecast/sim/toyrb"
)

func nodeCommand() command {
	return command{
		name:    "node",
		summary: "run one node of a cluster over UDP or AF_XDP (config from keygen)",
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
	// transport, iface, queue and fallback override the configuration's
	// transport section ("": keep it; queue -1: keep it).
	transport, iface, fallback string
	queue                      int
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
	fs.StringVar(&o.transport, "transport", "", "udp or xdp (default: the node's transport section in the config, else udp)")
	fs.StringVar(&o.iface, "iface", "", "with --transport xdp: the interface AF_XDP binds to")
	fs.IntVar(&o.queue, "queue", -1, "with --transport xdp: the interface's receive queue (default: the config's, else 0)")
	fs.StringVar(&o.fallback, "fallback", "", "with --transport xdp: udp to run over kernel UDP where AF_XDP cannot be used, none to refuse")
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

// clusterNode is one running node (netio/node) with the command's
// extras: the client API, the bench control port, the deliveries file and
// the stats log line.
type clusterNode struct {
	node    *node.Node
	logger  *slog.Logger
	api     *apiServer
	control *bench.ControlServer
	stopper *syncutil.Stopper

	// protos and free feed the bench's resource-budget counters.
	protos bench.ProtocolCounters
	free   *bench.FreeSampler

	delivered atomic.Uint64
	outMu     sync.Mutex
	out       *bufio.Writer
	outFile   *os.File
}

func startClusterNode(c *config.Cluster, o nodeOptions, logger *slog.Logger) (nd *clusterNode, err error) {
	spec, err := broadcast.FindSpec(nodeSpecs(), c.Protocol)
	if err != nil {
		return nil, fmt.Errorf("config protocol: %w", err)
	}
	tr, err := o.transportOf(c)
	if err != nil {
		return nil, err
	}
	nd = &clusterNode{logger: logger.With("node", o.id), stopper: syncutil.NewStopper()}
	defer func() {
		if err != nil {
			_ = nd.close()
		}
	}()
	if o.deliveries != "" {
		nd.outFile, err = os.OpenFile(o.deliveries, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nd, fmt.Errorf("--deliveries: %w", err)
		}
		nd.out = bufio.NewWriter(nd.outFile)
	}
	nd.node, err = node.Start(node.Config{Cluster: c, ID: o.id, Spec: bench.CountingSpec(spec, &nd.protos), Transport: tr, Frames: o.frames,
		Window: o.window, Verifiers: 2, OnDeliver: nd.onDeliver, Logger: logger}) // the node adds "node"
	logger = nd.logger
	if err != nil {
		return nd, err
	}
	params := nd.node.Params()
	nd.free = bench.NewFreeSampler(func() int { return bench.ReceiveFree(nd.node.Metrics()) })
	if entry, _ := c.Node(o.id); o.control == "" {
		o.control = entry.Control
	}
	if o.control != "" {
		nd.control, err = bench.NewControlServer(bench.ControlConfig{
			Addr: o.control, Submit: nd.node.Submit, Counters: nd.counters, Pool: nd.node.SendPool(), MaxPayload: o.payloadSize,
			Info: bench.NodeInfo{ID: o.id, Protocol: spec.Name, Mode: params.Mode.String(), N: params.N, F: params.F,
				Transport: nd.node.Metrics().Transport},
			Logger: logger,
		})
		if err != nil {
			return nd, err
		}
	}
	if entry, _ := c.Node(o.id); entry.API != "" {
		nd.api, err = startAPI(entry.API, nd, o.payloadSize, logger)
		if err != nil {
			return nd, err
		}
	}
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
	return nd, nil
}

// transportOf is the node's transport: its configuration entry's, or the
// one --transport and --iface name.
func (o nodeOptions) transportOf(c *config.Cluster) (*config.Transport, error) {
	tr := c.Nodes[o.id].Transport
	switch o.transport {
	case "":
		if o.iface != "" {
			return nil, fmt.Errorf("%w: --iface needs --transport xdp", errUsage)
		}
		return tr, nil
	case config.TransportUDP:
		return nil, nil
	case config.TransportXDP:
		t := config.Transport{}
		if tr != nil && tr.KindOrDefault() == config.TransportXDP {
			t = *tr
		}
		t.Kind = config.TransportXDP
		if o.iface != "" {
			t.Iface = o.iface
		}
		if o.queue >= 0 {
			t.Queue = o.queue
		}
		if o.fallback != "" {
			t.Fallback = o.fallback
		}
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("%w: --transport xdp: %v", errUsage, err)
		}
		return &t, nil
	}
	return nil, fmt.Errorf("%w: --transport %q (want udp or xdp)", errUsage, o.transport)
}

// onDeliver runs on the node's loop goroutine; it takes d's reference.
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
	m := nd.node.Metrics()
	return bench.NodeCounters{Metrics: m.Broadcast, CopiedBytes: m.Pool.CopiedBytes + m.UMEM.CopiedBytes, // the link's receive copies are in m.Broadcast
		SendCopiedBytes: m.Conduit.SendCopiedBytes, KernelCopiedBytes: bench.KernelCopiedPayload(m.Broadcast, m.Conduit),
		SendCopyFallback: m.XDP.SendCopyFallback,
		Retransmissions:  m.Link.Retransmits, Refusals: bench.NodeRefusals(m, &nd.protos, nd.free.Min()),
		Health: bench.NodeHealth(m)}
}

func (nd *clusterNode) logStats(msg string) {
	m := nd.node.Metrics()
	tot := m.Broadcast.Totals()
	attrs := []any{"deliveries", nd.delivered.Load(), "delivered_bytes", m.Broadcast.DeliveredBytes,
		"msgs_sent", tot.SentMessages, "msgs_received", tot.RecvMessages,
		"payload_dup_factor", fmt.Sprintf("%.3f", m.Broadcast.PayloadDupFactor()),
		"copied_bytes", m.Broadcast.CopiedBytes, "rejects", m.Broadcast.Rejects,
		"send_errors", m.Runner.SendErrors, "auth_failures", m.Runner.AuthFailures, "step_errors", m.Runner.StepErrors,
		"frames_sent", m.Link.FramesSent, "retransmits", m.Link.Retransmits, "duplicates", m.Link.Duplicates,
		"restarts", m.Link.Restarts,
		"transport", m.Transport, "wire_bytes_sent", m.Conduit.BytesSent, "wire_bytes_received", m.Conduit.BytesReceived,
		"recv_copied_bytes", m.Conduit.RecvCopiedBytes, "recv_no_frame", m.UDP.NoFrame, "send_refused", m.UDP.SendErrors}
	if m.Fallback != "" {
		attrs = append(attrs, "fallback", m.Fallback)
	}
	nd.logger.Info(msg, attrs...)
}

// close stops everything in order: the API, the node; then logs the
// totals.
func (nd *clusterNode) close() error {
	if nd.control != nil {
		_ = nd.control.Close()
	}
	if nd.api != nil {
		nd.api.close()
	}
	nd.stopper.Stop()
	nd.free.Stop()
	var errs []error
	if nd.node != nil {
		errs = append(errs, nd.node.Close())
	}
	if nd.out != nil {
		nd.outMu.Lock()
		errs = append(errs, nd.out.Flush(), nd.outFile.Close())
		nd.outMu.Unlock()
	}
	if nd.node != nil {
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
		b, err := s.nd.node.Pool().Copy(data)
		if err != nil {
			fmt.Fprintf(conn, "error %v\n", err)
			return
		}
		d := broadcast.DigestOf(b)
		s.mu.Lock()
		s.waiters[d] = append(s.waiters[d], replies)
		s.mu.Unlock()
		if err := s.nd.node.Submit(s.ctx, b); err != nil {
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
