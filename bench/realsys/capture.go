package realsys

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Capture is a running dumpcap on the loopback interface.
type Capture struct {
	Path string
	proc *Proc
}

// StartCapture starts dumpcap on lo writing pcapng to path, keeping TCP
// traffic to or from the given ports only, and waits until it captures.
func StartCapture(ctx context.Context, path string, ports []int) (*Capture, error) {
	var f []string
	for _, p := range ports {
		f = append(f, fmt.Sprintf("port %d", p))
	}
	return StartCaptureFilter(ctx, path, "tcp and ("+strings.Join(f, " or ")+")")
}

// StartCaptureFilter starts dumpcap on lo writing pcapng to path with a
// capture filter (pcap-filter syntax), and waits until it captures.
func StartCaptureFilter(ctx context.Context, path, filter string) (*Capture, error) {
	p, err := Start("dumpcap", filepath.Dir(path), nil, "dumpcap", "-i", "lo", "-q", "-s", "0", "-B", "64", "-f", filter, "-w", path)
	if err != nil {
		return nil, err
	}
	c := &Capture{Path: path, proc: p}
	if err := waitFor(ctx, 15*time.Second, "dumpcap to start", func() bool {
		return p.Exited() || strings.Contains(p.Output(), "Capturing on")
	}); err != nil || p.Exited() {
		p.Stop(time.Second)
		return nil, fmt.Errorf("dumpcap: %v: %s", err, p.Output())
	}
	return c, nil
}

// WaitLive makes TCP connections to probe (a filtered address) until the
// capture file grows: dumpcap says "Capturing on" before its socket sees
// traffic, and a short workload would otherwise be missed.
func (c *Capture) WaitLive(ctx context.Context, probe string) error {
	size := func() int64 {
		st, err := os.Stat(c.Path)
		if err != nil {
			return 0
		}
		return st.Size()
	}
	base := size()
	return waitFor(ctx, 20*time.Second, "the capture to see traffic", func() bool {
		if conn, err := net.DialTimeout("tcp", probe, time.Second); err == nil {
			conn.Close()
		}
		time.Sleep(50 * time.Millisecond)
		return size() > base
	})
}

// Stop ends the capture (SIGINT, so dumpcap flushes its file) and reports
// the file's size.
func (c *Capture) Stop() (int64, error) {
	if !c.proc.Exited() {
		time.Sleep(500 * time.Millisecond) // let the last packets reach the ring
		c.proc.Signal(syscall.SIGINT)
		select {
		case <-c.proc.done:
		case <-time.After(10 * time.Second):
			c.proc.Stop(time.Second)
		}
	}
	st, err := os.Stat(c.Path)
	if err != nil {
		return 0, fmt.Errorf("capture file: %w (dumpcap said: %s)", err, c.proc.Output())
	}
	return st.Size(), nil
}
