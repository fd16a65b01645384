package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/onecast/onecast/netio/netns"
	"github.com/onecast/onecast/netio/xdp"
)

// remoteXDPRunsEnv, set to a number of runs, turns
// TestBenchRemoteOverXDPInNamespaces into the comparison of issue 22:
// that many `bench --cluster remote` runs against the node processes,
// interleaved with as many `bench --cluster netns --transport xdp` runs of
// the same point, each of the bench's default length, and a table of the
// medians (scripts/remote-xdp.sh).
const remoteXDPRunsEnv = "ONECAST_REMOTE_XDP_RUNS"

// remoteXDPOutEnv names a directory where the comparison writes each
// run's JSON result.
const remoteXDPOutEnv = "ONECAST_REMOTE_XDP_OUT"

// remoteXDPPoint is the point both clusters run: Bracha, digest mode,
// n = 4, 16 KiB payloads, MAC authenticators (the bench's default).
var remoteXDPPoint = []string{"--protocol", "bracha", "--mode", "digest", "--n", "4", "--payload", "16KiB", "--auth", "mac"}

// remoteXDP is four `onecast node --transport xdp` processes (this test
// binary acting as the CLI), each in its own named network namespace, as
// DEPLOY.md starts them on four hosts, and a hub namespace whose bridge
// carries an address of the nodes' subnet, from which a bench reaches
// every node's control port.
type remoteXDP struct {
	topo  *netns.Topology
	cfg   string // cluster.yaml, from keygen --addrs
	hub   string // the hub namespace's name
	procs []*exec.Cmd
	logs  []string
}

// benchHubAddr is the bench host's address on the namespaces' bridge.
const benchHubAddr = "10.77.0.254/24"

// startRemoteXDP builds the namespaces, writes the configuration with
// keygen, starts the nodes and waits for their control ports. Everything
// is torn down when the test ends, however it ends: the nodes get SIGTERM
// (SIGKILL with this process), the namespaces are deleted.
func startRemoteXDP(t *testing.T) *remoteXDP {
	t.Helper()
	ok, why := netns.Available()
	env.Need(t, ok, "netns: "+why)
	ipPath := env.NeedBinary(t, "ip", "iproute2")
	topo, err := netns.New(netns.Config{Nodes: 4, Bridge: true, MTU: xdp.MaxVethMTU, Named: true})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, topo.Close()) })
	rx := &remoteXDP{topo: topo, hub: strings.TrimSuffix(topo.Nodes[0].Name, "0") + "hub"}

	h, err := netlink.NewHandleAt(topo.Hub())
	require.NoError(t, err)
	br, err := h.LinkByName("br0")
	require.NoError(t, err)
	addr, err := netlink.ParseAddr(benchHubAddr)
	require.NoError(t, err)
	require.NoError(t, h.AddrAdd(br, addr), "the bench host's address on the bridge")
	h.Close()

	dir := t.TempDir()
	var addrs []string
	for _, n := range topo.Nodes {
		addrs = append(addrs, netip.AddrPortFrom(n.Addr, 7700).String())
	}
	var out, errb bytes.Buffer
	require.Equal(t, 0, run(context.Background(), []string{"keygen", "--addrs", strings.Join(addrs, ","),
		"--auth", "mac", "--out", dir}, &out, &errb), errb.String())
	rx.cfg = filepath.Join(dir, "cluster.yaml")

	for i, n := range topo.Nodes {
		logPath := filepath.Join(dir, fmt.Sprintf("node%d.log", i))
		logf, err := os.Create(logPath)
		require.NoError(t, err)
		// Each node from its own host's bundle, as on real hosts.
		cmd := exec.Command(ipPath, "netns", "exec", n.Name, os.Args[0], "node",
			"--config", filepath.Join(dir, fmt.Sprintf("host%d", i), "cluster.yaml"), "--id", strconv.Itoa(i),
			"--transport", "xdp", "--iface", netns.IfName, "--stats", "0")
		cmd.Env = append(os.Environ(), runMainEnv+"=1")
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		require.NoError(t, cmd.Start())
		logf.Close()
		rx.procs, rx.logs = append(rx.procs, cmd), append(rx.logs, logPath)
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				assert.NoError(t, err, "node %d stops cleanly on SIGTERM:\n%s", i, rx.log(i))
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
				t.Errorf("node %d did not stop within 10 s of SIGTERM:\n%s", i, rx.log(i))
			}
		})
	}
	// The control ports, dialled from the bench's namespace.
	deadline := time.Now().Add(15 * time.Second)
	for i, n := range topo.Nodes {
		for {
			err := netns.DoIn(topo.Hub(), func() error {
				c, err := net.DialTimeout("tcp4", netip.AddrPortFrom(n.Addr, 7900).String(), time.Second)
				if err == nil {
					c.Close()
				}
				return err
			})
			if err == nil {
				break
			}
			if rx.procs[i].ProcessState != nil || time.Now().After(deadline) {
				t.Fatalf("node %d's control port: %v\n%s", i, err, rx.log(i))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return rx
}

func (rx *remoteXDP) log(i int) string {
	b, _ := os.ReadFile(rx.logs[i])
	return string(b)
}

// bench runs `onecast bench` with args (and --format json) in namespace ns
// ("" for this process's) and returns its one result.
func benchJSON(t *testing.T, ns string, args ...string) map[string]any {
	t.Helper()
	argv := append([]string{os.Args[0], "bench"}, append(args, "--format", "json")...)
	if ns != "" {
		argv = append([]string{"ip", "netns", "exec", ns}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, cmd.Run(), "%s\n%s", strings.Join(argv[1:], " "), errb.String())
	var results []map[string]any
	require.NoError(t, json.Unmarshal(out.Bytes(), &results), out.String())
	require.Len(t, results, 1)
	r := results[0]
	require.Empty(t, r["error"], "bench %s", strings.Join(args, " "))
	return r
}

// TestBenchRemoteOverXDPInNamespaces is issue 22's multi-host run on one
// machine: four `onecast node --transport xdp --iface oc0` processes, one
// per network namespace ("host"), each started from its host's bundle of
// `onecast keygen --addrs`, driven by `onecast bench --cluster remote`
// from a fifth namespace on the same bridge. Every payload is delivered
// everywhere, the nodes run over AF_XDP, and no received payload byte is
// copied in user space. Root only; run under flock
// /tmp/onecast-netns.lock. With ONECAST_REMOTE_XDP_RUNS=k it compares the
// figures with `--cluster netns --transport xdp` (scripts/remote-xdp.sh).
func TestBenchRemoteOverXDPInNamespaces(t *testing.T) {
	rx := startRemoteXDP(t)
	remote := append([]string{"--cluster", "remote", "--config", rx.cfg, "--transport", "xdp"}, remoteXDPPoint...)
	runs, _ := strconv.Atoi(os.Getenv(remoteXDPRunsEnv))
	if runs <= 0 {
		r := benchJSON(t, rx.hub, append(remote, "--duration", "1500ms", "--warmup", "300ms")...)
		checkRemoteXDP(t, r)
		t.Logf("remote xdp: %.0f deliveries/s, p50 %.2f ms, copies/B %.2f, tx copies/B %.2f",
			r["deliveries_per_sec"], r["latency_p50_ms"], r["copies_per_payload_byte"], r["send_copies_per_payload_byte"])
		return
	}
	netnsArgs := append([]string{"--cluster", "netns", "--transport", "xdp"}, remoteXDPPoint...)
	outDir := os.Getenv(remoteXDPOutEnv)
	figures := map[string]map[string][]float64{"remote": {}, "netns": {}}
	keys := []string{"deliveries_per_sec", "payload_mb_per_sec", "latency_p50_ms", "latency_p99_ms",
		"cpu_us_per_delivery", "copies_per_payload_byte", "send_copies_per_payload_byte", "incomplete_payloads"}
	for k := range runs {
		for _, kind := range []string{"remote", "netns"} {
			var r map[string]any
			if kind == "remote" {
				r = benchJSON(t, rx.hub, remote...)
				checkRemoteXDP(t, r)
			} else {
				r = benchJSON(t, "", netnsArgs...)
			}
			for _, key := range keys {
				v, _ := r[key].(float64)
				figures[kind][key] = append(figures[kind][key], v)
			}
			if outDir != "" {
				b, _ := json.MarshalIndent(r, "", "  ")
				require.NoError(t, os.WriteFile(filepath.Join(outDir, fmt.Sprintf("%s-%d.json", kind, k+1)), b, 0o644))
			}
		}
	}
	var table strings.Builder
	fmt.Fprintf(&table, "%-30s %-28s %-28s %s\n", "median (min–max) of "+strconv.Itoa(runs), "remote (4 processes)", "netns (1 process)", "remote/netns")
	for _, key := range keys {
		rm, rlo, rhi := medianSpread(figures["remote"][key])
		nm, nlo, nhi := medianSpread(figures["netns"][key])
		ratio := "—"
		if nm != 0 {
			ratio = fmt.Sprintf("%.2f", rm/nm)
		}
		fmt.Fprintf(&table, "%-30s %-28s %-28s %s\n", key, fmt.Sprintf("%.2f (%.2f–%.2f)", rm, rlo, rhi),
			fmt.Sprintf("%.2f (%.2f–%.2f)", nm, nlo, nhi), ratio)
	}
	t.Logf("bench %s\n%s", strings.Join(remoteXDPPoint, " "), table.String())
	if outDir != "" {
		require.NoError(t, os.WriteFile(filepath.Join(outDir, "summary.txt"), []byte(table.String()), 0o644))
	}
}

// checkRemoteXDP asserts issue 22's acceptance on one remote result.
func checkRemoteXDP(t *testing.T, r map[string]any) {
	t.Helper()
	assert.Equal(t, "remote", r["cluster"])
	assert.Equal(t, "xdp", r["transport"], "the bench checked that every node runs over AF_XDP")
	assert.Greater(t, r["deliveries"].(float64), 0.0)
	assert.Equal(t, 0.0, r["incomplete_payloads"], "every payload delivered by every node")
	assert.Equal(t, 0.0, r["copies_per_payload_byte"], "no received payload byte copied in user space")
}

// medianSpread returns the median, minimum and maximum of vs.
func medianSpread(vs []float64) (med, lo, hi float64) {
	if len(vs) == 0 {
		return 0, 0, 0
	}
	s := slices.Sorted(slices.Values(vs))
	med = s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return med, s[0], s[len(s)-1]
}
