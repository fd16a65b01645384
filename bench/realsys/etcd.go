package realsys

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// etcd ports, on 127.0.0.11–13.
const (
	etcdClientPort = 12379
	etcdPeerPort   = 12380
)

type etcdCluster struct {
	n      int
	ms     []Member
	addrs  []netip.Addr
	client *clientv3.Client
}

func newEtcd(n int) *etcdCluster {
	c := &etcdCluster{n: n}
	for i := range n {
		c.addrs = append(c.addrs, netip.AddrFrom4([4]byte{127, 0, 0, byte(11 + i)}))
	}
	return c
}

func (c *etcdCluster) url(i, port int) string { return fmt.Sprintf("http://%s:%d", c.addrs[i], port) }

func (c *etcdCluster) start(ctx context.Context, dir string) error {
	var initial []string
	for i := range c.n {
		initial = append(initial, fmt.Sprintf("etcd-%d=%s", i+1, c.url(i, etcdPeerPort)))
	}
	for i := range c.n {
		name := fmt.Sprintf("etcd-%d", i+1)
		p, err := Start(name, dir, nil, "etcd",
			"--name", name, "--data-dir", filepath.Join(dir, name),
			"--listen-client-urls", c.url(i, etcdClientPort), "--advertise-client-urls", c.url(i, etcdClientPort),
			"--listen-peer-urls", c.url(i, etcdPeerPort), "--initial-advertise-peer-urls", c.url(i, etcdPeerPort),
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", "onecast-characterize", "--logger", "zap", "--log-level", "warn")
		if err != nil {
			return err
		}
		c.ms = append(c.ms, Member{Name: name, Proc: p, Ports: map[netip.AddrPort]string{
			netip.AddrPortFrom(c.addrs[i], etcdClientPort): "client",
			netip.AddrPortFrom(c.addrs[i], etcdPeerPort):   "peer",
		}})
	}
	return waitFor(ctx, 60*time.Second, "an etcd leader", func() bool {
		for _, m := range c.ms {
			if m.Proc.Exited() {
				return true
			}
		}
		_, err := c.leader(ctx)
		return err == nil
	})
}

func (c *etcdCluster) members() []Member { return c.ms }

func (c *etcdCluster) leader(ctx context.Context) (int, error) {
	for _, m := range c.ms {
		if m.Proc.Exited() {
			return -1, fmt.Errorf("%s exited: %s", m.Name, m.Proc.Output())
		}
	}
	var eps []string
	for i := range c.n {
		eps = append(eps, c.url(i, etcdClientPort))
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return -1, err
	}
	defer cli.Close()
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for i, ep := range eps {
		st, err := cli.Status(cctx, ep)
		if err != nil {
			return -1, err
		}
		if st.Leader != 0 && st.Leader == st.Header.MemberId {
			return i, nil
		}
	}
	return -1, fmt.Errorf("no etcd leader yet")
}

func (c *etcdCluster) write(ctx context.Context, to int, values [][]byte) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{c.url(to, etcdClientPort)}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return fmt.Errorf("etcd client: %w", err)
	}
	c.client = cli
	for i, v := range values {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := cli.Put(wctx, fmt.Sprintf("/onecast/characterize/%d/%06d", len(v), i), string(v))
		cancel()
		if err != nil {
			return fmt.Errorf("etcd put %d: %w", i, err)
		}
	}
	return nil
}

func (c *etcdCluster) settle(ctx context.Context) {
	if c.client == nil {
		return
	}
	_ = waitFor(ctx, 10*time.Second, "etcd followers to apply", func() bool {
		var idx []uint64
		for i := range c.n {
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			st, err := c.client.Status(cctx, c.url(i, etcdClientPort))
			cancel()
			if err != nil {
				return false
			}
			idx = append(idx, st.RaftAppliedIndex)
		}
		for _, x := range idx {
			if x != idx[0] {
				return false
			}
		}
		return true
	})
}

func (c *etcdCluster) closeClient() {
	if c.client != nil {
		c.client.Close()
		c.client = nil
	}
}

func (c *etcdCluster) stop() {
	c.closeClient()
	for _, m := range c.ms {
		m.Proc.Stop(5 * time.Second)
	}
}

func (c *etcdCluster) version() string {
	out, err := exec.Command("etcd", "--version").Output()
	if err != nil {
		return "etcd"
	}
	return strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0]
}
