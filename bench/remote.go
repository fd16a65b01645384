package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

// NodeInfo is what a node's control port says about its configuration, so
// that the bench can refuse a point that does not match the running nodes.
type NodeInfo struct {
	ID        int    `json:"id"`
	Protocol  string `json:"protocol"`
	Mode      string `json:"mode"`
	N         int    `json:"n"`
	F         int    `json:"f"`
	Transport string `json:"transport"`
}

// Remote returns the factory of clusters whose nodes already run
// (`onecast node --control ADDR`), on this host or others; controls[i] is
// node i's control address (host:port). The nodes' protocol, mode, n and f
// are their configuration's: a point that asks for others is refused. A
// node whose control port does not answer is treated as faulty only if the
// point declares that many Byzantine nodes.
func Remote(controls []string, logger *slog.Logger) ClusterFactory {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return func(ctx context.Context, pt Point, spec broadcast.Spec, sink Sink) (Cluster, Load, error) {
		c, err := dialRemote(ctx, pt, controls, nil, logger)
		if err != nil {
			return nil, Load{}, err
		}
		if err := c.follow(sink.Record, logger); err != nil {
			_ = c.Close()
			return nil, Load{}, err
		}
		return c, Load{}, nil
	}
}

type remoteCluster struct {
	clients []*controlClient // nil for a node not reached
	correct []broadcast.NodeID
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	onClose func() error

	mu   sync.Mutex
	last []controlCounters
}

// recordFunc receives delivery records from the nodes' streams.
type recordFunc func(seq uint64, sent, at time.Time)

// dialRemote connects to every control port and checks the nodes'
// configuration against pt.
func dialRemote(ctx context.Context, pt Point, controls []string, onClose func() error, logger *slog.Logger) (*remoteCluster, error) {
	if len(controls) != pt.N {
		return nil, fmt.Errorf("the point has n = %d but %d control addresses are configured", pt.N, len(controls))
	}
	c := &remoteCluster{clients: make([]*controlClient, pt.N), onClose: onClose, last: make([]controlCounters, pt.N)}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var unreachable []string
	for i, addr := range controls {
		base := addr
		if !strings.Contains(base, "://") {
			base = "http://" + base
		}
		cl := &controlClient{base: strings.TrimSuffix(base, "/"), hc: hc}
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		cc, err := cl.counters(cctx)
		cancel()
		if err != nil {
			unreachable = append(unreachable, fmt.Sprintf("node %d (%s): %v", i, addr, err))
			continue
		}
		if err := checkInfo(pt, i, cc.Info); err != nil {
			return nil, err
		}
		c.clients[i] = cl
		c.correct = append(c.correct, broadcast.NodeID(i))
	}
	if len(unreachable) > pt.Faulty() {
		return nil, fmt.Errorf("%d nodes do not answer on their control port, and the point declares %d faulty: %s",
			len(unreachable), pt.Faulty(), strings.Join(unreachable, "; "))
	}
	for _, u := range unreachable {
		logger.Warn("node not reached; counted as faulty", "node", u)
	}
	return c, nil
}

func checkInfo(pt Point, id int, info NodeInfo) error {
	var diffs []string
	if info.ID != id {
		diffs = append(diffs, fmt.Sprintf("id %d", info.ID))
	}
	if info.Protocol != pt.Protocol {
		diffs = append(diffs, "protocol "+info.Protocol)
	}
	if info.Mode != pt.Mode.String() {
		diffs = append(diffs, "mode "+info.Mode)
	}
	if info.N != pt.N || info.F != pt.F {
		diffs = append(diffs, fmt.Sprintf("n = %d, f = %d", info.N, info.F))
	}
	if pt.Transport != "" && info.Transport != "" && info.Transport != pt.Transport {
		diffs = append(diffs, "transport "+info.Transport)
	}
	if len(diffs) > 0 {
		return fmt.Errorf("node %d runs %s, but the point asks for %s %s %s n = %d f = %d", id, strings.Join(diffs, ", "),
			pt.Protocol, pt.Mode, pt.Transport, pt.N, pt.F)
	}
	return nil
}

// follow starts reading every node's delivery stream into rec, and returns
// once every stream is open: a payload submitted after follow returns is
// seen delivered wherever it is. (Submitting before the streams open loses
// the first deliveries, which then count as payloads never delivered
// everywhere.)
func (c *remoteCluster) follow(rec recordFunc, logger *slog.Logger) error {
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	opened := make(chan error, len(c.correct))
	for _, id := range c.correct {
		cl := c.clients[id]
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			var once sync.Once
			report := func(err error) {
				once.Do(func() {
					if err != nil {
						err = fmt.Errorf("node %d's delivery stream: %w", id, err)
					}
					opened <- err
				})
			}
			if err := cl.follow(ctx, rec, report); err != nil {
				logger.Warn("delivery stream ended", "node", id, "err", err)
			}
			report(errors.New("ended before it opened"))
		}()
	}
	timeout := time.After(10 * time.Second)
	for range c.correct {
		select {
		case err := <-opened:
			if err != nil {
				return err
			}
		case <-timeout:
			return errors.New("the nodes' delivery streams did not open within 10 s")
		}
	}
	return nil
}

func (c *remoteCluster) Submit(id broadcast.NodeID, p bufpool.Buf) error {
	cl := c.clients[id]
	if cl == nil {
		p.Release()
		return fmt.Errorf("node %v is not reached", id)
	}
	return cl.submit(context.Background(), p)
}

// ConcurrentSubmit tells the load that Submit is an HTTP round trip to a
// node's process (on this host or another): the window's payloads are
// offered concurrently, or that round trip, not the cluster, would bound
// the throughput (one payload in flight at a time).
func (c *remoteCluster) ConcurrentSubmit() bool { return true }

func (c *remoteCluster) Correct() []broadcast.NodeID { return c.correct }

func (c *remoteCluster) Counters(id broadcast.NodeID) NodeCounters {
	cl := c.clients[id]
	if cl == nil {
		return NodeCounters{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cc, err := cl.counters(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		c.last[id] = cc
	}
	return c.last[id].NodeCounters
}

func (c *remoteCluster) PeakRSSMB(id broadcast.NodeID) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last[id].PeakRSSMB
}

func (c *remoteCluster) Close() error {
	if c.cancel != nil {
		c.cancel()
	}
	c.wg.Wait()
	if c.onClose != nil {
		return c.onClose()
	}
	return nil
}
