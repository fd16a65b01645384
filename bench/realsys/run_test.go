package realsys

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseProcAddr(t *testing.T) {
	a, err := parseProcAddr("0B00007F:3057")
	require.NoError(t, err)
	assert.Equal(t, netip.MustParseAddrPort("127.0.0.11:12375"), a)
	_, err = parseProcAddr("zz:1")
	assert.Error(t, err)
}

func TestSocketOwnersFindsOwnListener(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	owners, err := SocketOwners(map[int]string{os.Getpid(): "me"})
	require.NoError(t, err)
	assert.Equal(t, "me", owners[netip.MustParseAddrPort(l.Addr().String())])
}

func TestUDPSocketOwnersFindsOwnSocket(t *testing.T) {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	owners, err := UDPSocketOwners(map[int]string{os.Getpid(): "me"})
	require.NoError(t, err)
	assert.Equal(t, "me", owners[netip.MustParseAddrPort(c.LocalAddr().String())])
}

func TestReadIOCountsOwnWrites(t *testing.T) {
	before, err := ReadIO(os.Getpid())
	require.NoError(t, err)
	f, err := os.CreateTemp(t.TempDir(), "io")
	require.NoError(t, err)
	_, err = f.Write(make([]byte, 100_000))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	after, err := ReadIO(os.Getpid())
	require.NoError(t, err)
	assert.GreaterOrEqual(t, after.Sub(before).WChar, int64(100_000))
}

func TestMakeValuesAreDistinctAndSized(t *testing.T) {
	v := makeValues([]int{64, 1024}, 3, 1)
	require.Len(t, v, 6)
	seen := map[string]bool{}
	for i, x := range v {
		assert.Len(t, x, []int{64, 1024}[i/3])
		assert.False(t, seen[string(x)])
		seen[string(x)] = true
	}
}

func TestEnsureSkipsWithoutInstall(t *testing.T) {
	err := Ensure(context.Background(), slog.New(slog.DiscardHandler), false, []string{"no-such-binary-onecast"}, "no-such-package")
	assert.ErrorIs(t, err, ErrUnavailable)
}

// realRun runs one system end to end when its binaries are installed.
func realRun(t *testing.T, system string, viaFollower bool, bins ...string) {
	if testing.Short() {
		t.Skip("real servers: not in -short")
	}
	for _, b := range append(bins, "dumpcap") {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s not installed (apt-get install etcd-server zookeeper tshark): %v", b, err)
		}
	}
	defer leaktest.AfterTest(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := Run(ctx, system, Options{Sizes: []int{64, 4096}, PerSize: 5, ViaFollower: viaFollower, KeepCapture: os.Getenv("ONECAST_KEEP_CAPTURE")})
	require.NoError(t, err)
	if res.Skipped != "" {
		t.Skip(res.Skipped) // e.g. no permission to capture
	}
	assert.Equal(t, 10, res.Values)
	// Every value crosses the wire at least client → leader and leader →
	// each of the two followers.
	assert.GreaterOrEqual(t, res.WireFactor, 3.0, "value bytes on the wire ÷ written")
	for _, k := range res.Report.Known {
		assert.GreaterOrEqual(t, k.Copies, 3, "value %d", k.Index)
	}
	var leaderToFollower int
	for _, c := range res.Classes {
		if c.Name == "leader → follower (peer port)" || c.Name == "leader → follower (quorum port)" || c.Name == "leader → follower (other port)" {
			leaderToFollower += c.ValueCopies
		}
	}
	assert.GreaterOrEqual(t, leaderToFollower, 2*res.Values, "leader → follower appends carry each value to both followers: %+v", res.Classes)
	if viaFollower {
		// The follower forwards each write to the leader: a fourth copy.
		assert.GreaterOrEqual(t, res.WireFactor, 4.0)
		var forwarded int
		for _, c := range res.Classes {
			if strings.HasPrefix(c.Name, "follower → leader") {
				forwarded += c.ValueCopies
			}
		}
		assert.GreaterOrEqual(t, forwarded, res.Values, "follower → leader forwards: %+v", res.Classes)
	}
}

func TestEtcdClusterDuplication(t *testing.T)       { realRun(t, "etcd", false, "etcd") }
func TestZooKeeperEnsembleDuplication(t *testing.T) { realRun(t, "zookeeper", false, "java") }

func TestEtcdViaFollowerForwardsToLeader(t *testing.T) { realRun(t, "etcd", true, "etcd") }
func TestZooKeeperViaFollowerForwardsToLeader(t *testing.T) {
	realRun(t, "zookeeper", true, "java")
}
