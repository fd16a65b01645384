package realsys

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
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

// fakeTree builds files under a temporary root: executables where the
// name ends in "*" (the star dropped), plain files otherwise.
func fakeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, "*") {
			name, mode = strings.TrimSuffix(name, "*"), 0o755
		}
		p := filepath.Join(root, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), mode))
	}
	return root
}

// TestCheckFindsDebiansZooKeeper lays out what Debian's zookeeper package
// installs — the jar in /usr/share/java, the conf directory, the JAVA= line
// of its environment file, a JVM under /usr/lib/jvm and no java on PATH —
// and checks that ZooKeeper is found there, with only dumpcap missing.
func TestCheckFindsDebiansZooKeeper(t *testing.T) {
	root := fakeTree(t, map[string]string{
		"/usr/share/java/zookeeper.jar":                "jar",
		"/etc/zookeeper/conf/zoo.cfg":                  "",
		"/etc/zookeeper/conf/environment":              "JAVA=/usr/lib/jvm/java-17-openjdk-amd64/bin/java\n",
		"/usr/lib/jvm/java-17-openjdk-amd64/bin/java*": "",
		"/usr/share/zookeeper/bin/zkServer.sh*":        "",
	})
	l := Layout{Path: filepath.Join(root, "bin"), Root: root, Getenv: func(string) string { return "" }}
	zk, missing := l.FindZooKeeper()
	assert.Empty(t, missing)
	assert.Equal(t, filepath.Join(root, "/usr/lib/jvm/java-17-openjdk-amd64/bin/java"), zk.Java)
	assert.Equal(t, filepath.Join(root, "/etc/zookeeper/conf")+":"+filepath.Join(root, "/usr/share/java/zookeeper.jar"), zk.Classpath)

	missing, err := l.Check("zookeeper")
	require.NoError(t, err)
	require.Len(t, missing, 1)
	assert.Equal(t, "dumpcap", missing[0].What)
	assert.Equal(t, "apt-get install tshark", InstallCommand(missing))
}

// TestCheckNamesWhatIsMissingAndTheInstallCommand checks an empty host: each
// system lists its missing programs and one apt-get command, and nothing
// is run to install them.
func TestCheckNamesWhatIsMissingAndTheInstallCommand(t *testing.T) {
	root := fakeTree(t, map[string]string{"/bin/dumpcap*": ""})
	l := Layout{Path: filepath.Join(root, "bin"), Root: root, Getenv: func(string) string { return "" }}
	missing, err := l.Check("etcd")
	require.NoError(t, err)
	assert.Equal(t, "apt-get install etcd-server", InstallCommand(missing))
	missing, err = l.Check("zookeeper")
	require.NoError(t, err)
	assert.Equal(t, "apt-get install zookeeper", InstallCommand(missing))
	assert.Contains(t, SkipReason(missing), "ZooKeeper's server jar (looked in /usr/share/java/zookeeper.jar")
	assert.Contains(t, SkipReason(missing), "java (looked in $JAVA_HOME")
	_, err = l.Check("redis")
	assert.Error(t, err)
}

// TestCheckFindsAnUpstreamZooKeeper finds a tarball under $ZOOKEEPER_HOME
// and java under $JAVA_HOME.
func TestCheckFindsAnUpstreamZooKeeper(t *testing.T) {
	root := fakeTree(t, map[string]string{
		"/srv/zk/lib/zookeeper-3.9.2.jar":      "jar",
		"/srv/zk/lib/zookeeper-jute-3.9.2.jar": "jar",
		"/srv/zk/conf/zoo.cfg":                 "",
		"/srv/jdk/bin/java*":                   "",
	})
	env := map[string]string{"ZOOKEEPER_HOME": filepath.Join(root, "/srv/zk"), "JAVA_HOME": filepath.Join(root, "/srv/jdk")}
	l := Layout{Root: root, Getenv: func(k string) string { return env[k] }}
	zk, missing := l.FindZooKeeper()
	assert.Empty(t, missing)
	assert.Equal(t, filepath.Join(root, "/srv/jdk/bin/java"), zk.Java)
	assert.Contains(t, zk.Classpath, filepath.Join(root, "/srv/zk/lib/zookeeper-3.9.2.jar"))
	assert.True(t, strings.HasPrefix(zk.Classpath, filepath.Join(root, "/srv/zk/conf")+":"))
}

// realRun runs one system end to end when what it needs is installed.
func realRun(t *testing.T, system string, viaFollower bool) {
	if testing.Short() {
		env.OptIn(t, "real servers: not in -short")
	}
	missing, err := HostLayout().Check(system)
	require.NoError(t, err)
	env.Need(t, len(missing) == 0, system+": "+SkipReason(missing))
	defer leaktest.AfterTest(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := Run(ctx, system, Options{Sizes: []int{64, 4096}, PerSize: 5, ViaFollower: viaFollower, KeepCapture: os.Getenv("ONECAST_KEEP_CAPTURE")})
	require.NoError(t, err)
	env.Need(t, res.Skipped == "", system+": "+res.Skipped) // e.g. no permission to capture
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

func TestEtcdClusterDuplication(t *testing.T)       { realRun(t, "etcd", false) }
func TestZooKeeperEnsembleDuplication(t *testing.T) { realRun(t, "zookeeper", false) }

func TestEtcdViaFollowerForwardsToLeader(t *testing.T)      { realRun(t, "etcd", true) }
func TestZooKeeperViaFollowerForwardsToLeader(t *testing.T) { realRun(t, "zookeeper", true) }
