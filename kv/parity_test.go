package kv

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// exchange sends req on a fresh connection, then "version", and returns
// everything read before the version line (and whether the connection
// stayed open).
func exchange(t *testing.T, addr, req string) (string, bool) {
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = io.WriteString(c, req+"version\r\n")
	require.NoError(t, err)
	var got bytes.Buffer
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		got.Write(buf[:n])
		if i := strings.Index(got.String(), "VERSION "); i >= 0 && strings.HasSuffix(got.String(), "\r\n") {
			return got.String()[:i], true
		}
		if err != nil {
			return got.String(), false
		}
	}
}

// TestRepliesMatchRealMemcached sends the same requests to a real memcached
// (Debian's, if installed) and to this server and requires the same bytes
// back, CAS uniques aside, and the same decision to keep or close the
// connection.
func TestRepliesMatchRealMemcached(t *testing.T) {
	bin, err := exec.LookPath("memcached")
	if err != nil {
		t.Skip("memcached not installed (apt-get install -y memcached): skipping the parity test")
	}
	defer leaktest.AfterTest(t)()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "-u", "root", "-l", "127.0.0.1", "-p", fmt.Sprint(port), "-U", "0")
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	real := fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", real); err == nil {
			c.Close()
			break
		}
		require.Less(t, i, 100, "memcached did not start")
		time.Sleep(20 * time.Millisecond)
	}
	pool := newPool(t)
	n := startNode(t, "", pool, false)
	defer func() { n.stop(t); require.NoError(t, pool.CheckLeaks()) }()

	long := strings.Repeat("k", 251)
	reqs := []string{
		"bogus\r\n", "\r\n", "get\r\n", "gets\r\n", "set k 0 0\r\n", "set k 0 0 abc\r\n", "set k 0 0 -1\r\n",
		"set k 4294967297 0 1\r\nx\r\nget k\r\n", "set k 4294967295 0 1\r\nx\r\nget k\r\n",
		"set k 18446744073709551616 0 1\r\n",
		"set " + long + " 0 0 1\r\nx\r\n", "get " + long + "\r\n", "get a b c\r\n",
		"set k 0 0 3\r\nabcde\r\n", "set k 0 0 2000000\r\n" + strings.Repeat("v", 2000000) + "\r\n",
		"set q 5 0 2 noreply\r\nhi\r\nget q\r\n", "add q 0 0 1\r\nx\r\n", "replace nope 0 0 1\r\nx\r\n",
		"append q 0 0 2\r\n!!\r\nprepend q 0 0 2\r\n<<\r\nget q\r\n", "append nope 0 0 1\r\nx\r\n",
		"incr k abc\r\n", "incr nope 1\r\n", "set n 0 0 2\r\n10\r\nincr n 5\r\ndecr n 100\r\n",
		"set s 0 0 3\r\nabc\r\nincr s 1\r\n", "set w 0 0 20\r\n18446744073709551615\r\nincr w 2\r\n",
		"delete k 5\r\n", "delete nope\r\n", "set z 0 0 1\r\nz\r\ndelete z 0\r\ndelete z\r\n",
		"touch k x\r\n", "touch nope 10\r\n", "set t 0 0 1\r\nt\r\ntouch t 10\r\n",
		"cas k 0 0 1 x\r\n", "cas nokey 0 0 1 1\r\nx\r\n", "set neg 0 -1 1\r\nx\r\nget neg\r\n",
		"flush_all\r\n", "flush_all noreply\r\n", "flush_all 0\r\n", "verbosity 1\r\n", "verbosity\r\n",
		"stats nosuch\r\n", "incr\r\n", "delete\r\n", "touch k\r\n", "set k 0 0 1 noreply extra\r\nx\r\n",
		"set " + strings.Repeat("x", 3000) + " 0 0 1\r\n", "set " + strings.Repeat("x", 9000) + " 0 0 1\r\n",
		"set " + strings.Repeat("x", 20000) + " 0 0 1\r\n", "set " + strings.Repeat("x", 16300) + " 0 0 1\r\n",
		"set " + strings.Repeat("x", 16400) + " 0 0 1\r\n", "set " + strings.Repeat("x", 70000) + " 0 0 1\r\n", "get a\x01b\r\n", "get a\tb\r\n",
		"get" + strings.Repeat(" key", 400) + "\r\n", "set k 0 0 1 noreply\r\nxyz\r\n", "incr k abc noreply\r\n",
		"set big 0 0 30\r\n123456789012345678901234567890\r\nincr big 1\r\n", "set d 0 0 3\r\nabc\r\ndecr d 1\r\n",
		"verbosity 1 noreply\r\n", "stats reset\r\n", "delete k noreply\r\n", "delete k 0 noreply\r\n",
		"set sp 0 0 3\r\n12 \r\nincr sp 1\r\n", "set  k2   0 0 1\r\nx\r\nget   k2  \r\n", "GET k\r\n",
		"set k 0 0 1\nx\r\n", "set p 0 0 3\r\n100\r\ndecr p 1\r\nget p\r\n", "set p 7 0 2\r\n99\r\nincr p 1\r\nget p\r\n", "set k 0 0 1\r\nx\n\r\n",
	}
	for _, req := range reqs {
		name := req
		if len(name) > 60 {
			name = name[:60]
		}
		t.Run(fmt.Sprintf("%q", name), func(t *testing.T) {
			want, wantOpen := exchange(t, real, req)
			got, gotOpen := exchange(t, n.addr, req)
			assert.Equal(t, want, got)
			assert.Equal(t, wantOpen, gotOpen, "connection kept")
		})
	}
}
