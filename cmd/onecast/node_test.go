package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/internal/testenv"
	"github.com/onecast/onecast/netio/config"
)

// runMainEnv makes the test binary act as the onecast CLI, so that a test
// can start real node processes without building the command separately.
const runMainEnv = "ONECAST_TEST_RUN_MAIN"

// crashNodeEnv makes the node whose --id it names, in a test binary acting
// as the CLI, crash 1.5 s after it starts (a test of what bench does when a
// node of a local cluster dies).
const crashNodeEnv = "ONECAST_TEST_CRASH_NODE"

// copyConfigEnv makes a node started by a test binary acting as the CLI
// copy its --config file into the directory it names, as node<id>.yaml
// (a test of what configuration bench gave a local cluster's nodes).
const copyConfigEnv = "ONECAST_TEST_COPY_CONFIG"

// copyNodeConfig copies the --config file of a `node` command line into
// dir; it does nothing for other commands.
func copyNodeConfig(dir string, args []string) {
	i := slices.Index(args, "--config")
	j := slices.Index(args, "--id")
	if !slices.Contains(args, "node") || i < 0 || i+1 >= len(args) || j < 0 || j+1 >= len(args) {
		return
	}
	if data, err := os.ReadFile(args[i+1]); err == nil {
		_ = os.WriteFile(filepath.Join(dir, "node"+args[j+1]+".yaml"), data, 0o600)
	}
}

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		if id := os.Getenv(crashNodeEnv); id != "" && slices.Contains(os.Args, "node") && slices.Contains(os.Args, id) {
			time.AfterFunc(1500*time.Millisecond, func() {
				fmt.Fprintln(os.Stderr, "simulated crash of node", id)
				os.Exit(3)
			})
		}
		if dir := os.Getenv(copyConfigEnv); dir != "" {
			copyNodeConfig(dir, os.Args)
		}
		main()
		return
	}
	env.Main(m)
}

// env reports the tests that did not run here, and why, in one line of
// `go test ./...` output (testenv's package doc).
var env = testenv.New("onecast/cmd/onecast")

// freeBasePort finds a free port layout for n nodes (config.FreeBasePort).
func freeBasePort(t *testing.T, n int) int {
	t.Helper()
	base, err := config.FreeBasePort(n)
	require.NoError(t, err)
	return base
}

// TestNodeProcessesBroadcastAndStopCleanly generates a 4-node loopback
// configuration with keygen, starts 4 `onecast node` processes, broadcasts
// payloads through node 0 with the client (which waits for node 0 to
// deliver each), stops the nodes with SIGTERM, and checks that each exited
// cleanly after delivering the same payloads.
func TestNodeProcessesBroadcastAndStopCleanly(t *testing.T) {
	const n, count = 4, 200
	dir := t.TempDir()
	base := freeBasePort(t, n)
	var out, errb bytes.Buffer
	require.Equal(t, 0, run(context.Background(), []string{"keygen", "--n", "4", "--out", dir, "--port", fmt.Sprint(base)}, &out, &errb), errb.String())
	cfg := filepath.Join(dir, "cluster.yaml")

	procs := make([]*exec.Cmd, n)
	logs := make([]*bytes.Buffer, n)
	for i := range n {
		logs[i] = &bytes.Buffer{}
		cmd := exec.Command(os.Args[0], "node", "--config", cfg, "--id", fmt.Sprint(i),
			"--deliveries", filepath.Join(dir, fmt.Sprintf("deliveries%d.txt", i)), "--stats", "0", "--frames", "8192")
		cmd.Env = append(os.Environ(), runMainEnv+"=1")
		cmd.Stderr = logs[i]
		require.NoError(t, cmd.Start())
		procs[i] = cmd
	}
	defer func() {
		for _, p := range procs {
			if p.ProcessState == nil {
				_ = p.Process.Kill()
				_ = p.Wait()
			}
		}
	}()
	// Wait for node 0's client API.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", base+100))
		if err == nil {
			c.Close()
			break
		}
		require.True(t, time.Now().Before(deadline), "node 0's API did not come up: %s", logs[0])
		time.Sleep(20 * time.Millisecond)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out.Reset()
	errb.Reset()
	code := run(ctx, []string{"client", "--config", cfg, "--id", "0", "--count", fmt.Sprint(count), "--size", "4096", "--quiet"}, &out, &errb)
	require.Equal(t, 0, code, "client: %s %s", out.String(), errb.String())
	assert.Contains(t, out.String(), fmt.Sprintf("%d of %d payloads delivered at node 0", count, count))
	// Payloads from a file, one per line, through node 2.
	lines := filepath.Join(dir, "payloads.txt")
	require.NoError(t, os.WriteFile(lines, []byte("alpha\nbeta\ngamma\n"), 0o644))
	out.Reset()
	errb.Reset()
	code = run(ctx, []string{"client", "--config", cfg, "--id", "2", "--file", lines, "--lines"}, &out, &errb)
	require.Equal(t, 0, code, "client: %s %s", out.String(), errb.String())
	assert.Contains(t, out.String(), "3 of 3 payloads delivered at node 2")
	assert.Equal(t, 3, strings.Count(out.String(), "delivered n2/"), "one line per payload: %s", out.String())
	const total = count + 3
	time.Sleep(300 * time.Millisecond) // let the other nodes finish delivering

	for i, p := range procs {
		require.NoError(t, p.Process.Signal(syscall.SIGTERM))
		done := make(chan error, 1)
		go func() { done <- p.Wait() }()
		select {
		case err := <-done:
			require.NoError(t, err, "node %d exit: %s", i, logs[i])
		case <-time.After(10 * time.Second):
			t.Fatalf("node %d did not stop on SIGTERM: %s", i, logs[i])
		}
	}
	var first []string
	for i := range n {
		log := logs[i].String()
		assert.Contains(t, log, "node started")
		assert.Contains(t, log, "node stopped")
		assert.Contains(t, log, fmt.Sprintf("deliveries=%d", total), "node %d: %s", i, log)
		f, err := os.Open(filepath.Join(dir, fmt.Sprintf("deliveries%d.txt", i)))
		require.NoError(t, err)
		var digests []string
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			require.Len(t, fields, 4)
			digests = append(digests, fields[2])
		}
		f.Close()
		assert.Len(t, digests, total, "node %d", i)
		set := map[string]bool{}
		for _, d := range digests {
			set[d] = true
		}
		assert.Len(t, set, total, "node %d delivered each payload once", i)
		if i == 0 {
			first = digests
		} else {
			assert.ElementsMatch(t, first, digests, "node %d delivered what node 0 did", i)
		}
	}
}

// TestNodeRejectsBadConfigNamingTheField checks that a node refuses a
// broken configuration with an error that names the field, and a missing
// --id with a usage error.
func TestNodeRejectsBadConfigNamingTheField(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	require.Equal(t, 0, run(context.Background(), []string{"keygen", "--n", "4", "--out", dir, "--port", "29000"}, &out, &errb), errb.String())
	cfg := filepath.Join(dir, "cluster.yaml")
	data, err := os.ReadFile(cfg)
	require.NoError(t, err)
	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte(strings.Replace(string(data), "127.0.0.2:29001", "127.0.0.2:http", 1)), 0o644))
	errb.Reset()
	assert.Equal(t, 1, run(context.Background(), []string{"node", "--config", bad, "--id", "0"}, &out, &errb))
	assert.Contains(t, errb.String(), "nodes[1].addr")
	errb.Reset()
	assert.Equal(t, 2, run(context.Background(), []string{"node", "--config", cfg}, &out, &errb))
	assert.Contains(t, errb.String(), "--id")
}

// TestNodeTransportFlags checks --transport and --iface: AF_XDP on an
// interface that does not exist is one error naming it (or, with
// --fallback udp, a node over UDP that says so), and --iface alone is a
// usage error.
func TestNodeTransportFlags(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	require.Equal(t, 0, run(context.Background(), []string{"keygen", "--n", "4", "--out", dir, "--port", "29050"}, &out, &errb), errb.String())
	cfg := filepath.Join(dir, "cluster.yaml")
	errb.Reset()
	assert.Equal(t, 2, run(context.Background(), []string{"node", "--config", cfg, "--id", "0", "--iface", "eth0"}, &out, &errb))
	assert.Contains(t, errb.String(), "--iface needs --transport xdp")
	errb.Reset()
	assert.Equal(t, 1, run(context.Background(), []string{"node", "--config", cfg, "--id", "0", "--transport", "xdp", "--iface", "nosuch0"}, &out, &errb))
	assert.Regexp(t, `^onecast node: node 0: AF_XDP on nosuch0 queue 0: (no such interface|AF_XDP not permitted)`, errb.String())
	assert.Equal(t, 1, strings.Count(errb.String(), "\n"), "one line:\n%s", errb.String())

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	var logs safeBuffer
	go func() {
		done <- run(ctx, []string{"node", "--config", cfg, "--id", "0", "--transport", "xdp", "--iface", "nosuch0",
			"--fallback", "udp", "--stats", "0"}, &out, &logs)
	}()
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "node started") }, 10*time.Second, 20*time.Millisecond)
	cancel()
	require.Equal(t, 0, <-done, logs.String())
	assert.Contains(t, logs.String(), "running over kernel UDP")
	assert.Contains(t, logs.String(), "transport=udp")
}

// safeBuffer is a bytes.Buffer written by one goroutine and read by another.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestKeygenForHosts checks keygen --addrs: a configuration with the
// hosts' addresses and a bundle per host that a node starts from.
func TestKeygenForHosts(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	require.Equal(t, 0, run(context.Background(), []string{"keygen", "--addrs", "10.1.0.1:7000,10.1.0.2:7000,10.1.0.3:7000,10.1.0.4:7000",
		"--protocol", "pbft", "--out", dir}, &out, &errb), errb.String())
	assert.Contains(t, out.String(), "(n=4 f=1 pbft/digest/ed25519)")
	assert.Contains(t, out.String(), filepath.Join(dir, "host3"))
	c, err := config.Load(filepath.Join(dir, "host2", "cluster.yaml"))
	require.NoError(t, err)
	assert.Equal(t, "10.1.0.3:7100", c.Nodes[2].API)
	_, err = c.Keyring(2)
	require.NoError(t, err)
	errb.Reset()
	assert.Equal(t, 1, run(context.Background(), []string{"keygen", "--n", "3", "--addrs", "10.1.0.1:7000,10.1.0.2:7000",
		"--out", t.TempDir()}, &out, &errb))
	assert.Contains(t, errb.String(), "n is 3 but 2 addresses")
}

// unprivileged returns the command line that runs this test binary, as
// the CLI, without the capabilities AF_XDP needs: as it is for a user
// other than root, and under setpriv with CAP_NET_ADMIN, CAP_BPF and
// CAP_SYS_ADMIN dropped from the bounding set for root.
func unprivileged(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	argv := append([]string{os.Args[0]}, args...)
	if os.Geteuid() == 0 {
		setpriv := env.NeedBinary(t, "setpriv", "util-linux")
		drop := "-net_admin,-bpf,-sys_admin"
		argv = append([]string{setpriv, "--bounding-set", drop, "--inh-caps", drop, "--"}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	return cmd
}

// TestNodeOverXDPWithoutPrivileges starts `onecast node --transport xdp`
// in a process without the capabilities AF_XDP needs: it exits 1 with one
// line naming the cause; with --fallback udp it runs over UDP and says
// why, in its warning and in its stats.
func TestNodeOverXDPWithoutPrivileges(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	base := freeBasePort(t, 4)
	require.Equal(t, 0, run(context.Background(), []string{"keygen", "--n", "4", "--out", dir, "--port", fmt.Sprint(base)}, &out, &errb), errb.String())
	cfg := filepath.Join(dir, "cluster.yaml")

	cmd := unprivileged(t, "node", "--config", cfg, "--id", "0", "--transport", "xdp", "--iface", "lo", "--stats", "0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, stderr.String())
	assert.Equal(t, 1, exit.ExitCode())
	assert.Equal(t, 1, strings.Count(stderr.String(), "\n"), "one line:\n%s", stderr.String())
	assert.Contains(t, stderr.String(), "onecast node: node 0: AF_XDP on lo queue 0: AF_XDP not permitted")

	cmd = unprivileged(t, "node", "--config", cfg, "--id", "0", "--transport", "xdp", "--iface", "lo",
		"--fallback", "udp", "--stats", "0")
	var logs safeBuffer
	cmd.Stderr = &logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "node started") }, 10*time.Second, 20*time.Millisecond, logs.String())
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), logs.String())
	assert.Contains(t, logs.String(), "AF_XDP unavailable: running over kernel UDP")
	assert.Contains(t, logs.String(), "AF_XDP not permitted")
	assert.Regexp(t, `node stopped".*transport=udp .*fallback=".*AF_XDP not permitted`, logs.String())
}
