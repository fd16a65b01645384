package realsys

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"
)

// ZooKeeper ports, on 127.0.0.21–23.
const (
	zkClientPort   = 12181
	zkQuorumPort   = 12888
	zkElectionPort = 13888
)

type zkEnsemble struct {
	n      int
	ms     []Member
	addrs  []netip.Addr
	client *zk.Conn
}

func newZooKeeper(n int) *zkEnsemble {
	c := &zkEnsemble{n: n}
	for i := range n {
		c.addrs = append(c.addrs, netip.AddrFrom4([4]byte{127, 0, 0, byte(21 + i)}))
	}
	return c
}

func (c *zkEnsemble) clientAddr(i int) string {
	return netip.AddrPortFrom(c.addrs[i], zkClientPort).String()
}

func (c *zkEnsemble) start(ctx context.Context, dir string) error {
	zk, missing := HostLayout().FindZooKeeper()
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s", ErrUnavailable, SkipReason(missing))
	}
	var servers []string
	for i := range c.n {
		servers = append(servers, fmt.Sprintf("server.%d=%s:%d:%d", i+1, c.addrs[i], zkQuorumPort, zkElectionPort))
	}
	for i := range c.n {
		name := fmt.Sprintf("zk-%d", i+1)
		data := filepath.Join(dir, name)
		if err := os.MkdirAll(data, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(data, "myid"), []byte(fmt.Sprintf("%d\n", i+1)), 0o644); err != nil {
			return err
		}
		cfg := strings.Join(append([]string{
			"tickTime=200", "initLimit=50", "syncLimit=25",
			"dataDir=" + data,
			fmt.Sprintf("clientPort=%d", zkClientPort), "clientPortAddress=" + c.addrs[i].String(),
			"admin.enableServer=false", "4lw.commands.whitelist=srvr",
			"quorumListenOnAllIPs=false",
		}, servers...), "\n") + "\n"
		cfgPath := filepath.Join(dir, name+".cfg")
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
			return err
		}
		p, err := Start(name, dir, nil, zk.Java, "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
			"-Dzookeeper.preAllocSize=1024", "-Dzookeeper.log.dir="+dir, "-Dzookeeper.root.logger=WARN,CONSOLE",
			"-cp", zk.Classpath, "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfgPath)
		if err != nil {
			return err
		}
		c.ms = append(c.ms, Member{Name: name, Proc: p, Ports: map[netip.AddrPort]string{
			netip.AddrPortFrom(c.addrs[i], zkClientPort):   "client",
			netip.AddrPortFrom(c.addrs[i], zkQuorumPort):   "quorum",
			netip.AddrPortFrom(c.addrs[i], zkElectionPort): "election",
		}})
	}
	return waitFor(ctx, 90*time.Second, "a ZooKeeper leader and followers", func() bool {
		for _, m := range c.ms {
			if m.Proc.Exited() {
				return true
			}
		}
		modes := 0
		for i := range c.n {
			if m := c.mode(i); m == "leader" || m == "follower" {
				modes++
			}
		}
		return modes == c.n
	})
}

// mode asks server i for its mode with the srvr four-letter word.
func (c *zkEnsemble) mode(i int) string {
	conn, err := net.DialTimeout("tcp", c.clientAddr(i), time.Second)
	if err != nil {
		return ""
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("srvr")); err != nil {
		return ""
	}
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Mode: "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func (c *zkEnsemble) members() []Member { return c.ms }

func (c *zkEnsemble) leader(context.Context) (int, error) {
	for i := range c.n {
		if c.ms[i].Proc.Exited() {
			return -1, fmt.Errorf("%s exited: %s", c.ms[i].Name, c.ms[i].Proc.Output())
		}
		if c.mode(i) == "leader" {
			return i, nil
		}
	}
	return -1, fmt.Errorf("no ZooKeeper leader")
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}

func (c *zkEnsemble) write(ctx context.Context, to int, values [][]byte) error {
	conn, events, err := zk.Connect([]string{c.clientAddr(to)}, 10*time.Second, zk.WithLogger(nopLogger{}))
	if err != nil {
		return fmt.Errorf("zookeeper client: %w", err)
	}
	c.client = conn
	if err := waitFor(ctx, 15*time.Second, "a ZooKeeper session", func() bool {
		for {
			select {
			case ev := <-events:
				if ev.State == zk.StateHasSession {
					return true
				}
			default:
				return conn.State() == zk.StateHasSession
			}
		}
	}); err != nil {
		return err
	}
	go func() { // drain later events so the client never blocks
		for range events {
		}
	}()
	for i, v := range values {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if _, err := conn.Create(fmt.Sprintf("/onecast-characterize-%d-%06d", len(v), i), v, 0, zk.WorldACL(zk.PermAll)); err != nil {
			return fmt.Errorf("zookeeper create %d: %w", i, err)
		}
	}
	return nil
}

func (c *zkEnsemble) settle(ctx context.Context) {
	if c.client == nil {
		return
	}
	// A sync makes the connected server catch up with the leader; the
	// followers apply a COMMIT within a tick or so.
	done := make(chan struct{})
	go func() { _, _ = c.client.Sync("/"); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	case <-ctx.Done():
	}
	time.Sleep(500 * time.Millisecond)
}

func (c *zkEnsemble) closeClient() {
	if c.client != nil {
		c.client.Close()
		c.client = nil
	}
}

func (c *zkEnsemble) stop() {
	c.closeClient()
	for _, m := range c.ms {
		m.Proc.Stop(5 * time.Second)
	}
}

func (c *zkEnsemble) version() string { return "ZooKeeper 3.8 (Debian zookeeper package)" }
