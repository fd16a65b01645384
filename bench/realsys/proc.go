package realsys

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// IO are a process's I/O counters from /proc/<pid>/io.
type IO struct {
	// RChar and WChar count bytes passed to read and write calls (any file,
	// socket or pipe); ReadBytes and WriteBytes the bytes the process caused
	// to be fetched from or sent to the storage layer.
	RChar, WChar, ReadBytes, WriteBytes, SyscW int64
}

// Sub returns io − o.
func (io IO) Sub(o IO) IO {
	return IO{RChar: io.RChar - o.RChar, WChar: io.WChar - o.WChar, ReadBytes: io.ReadBytes - o.ReadBytes,
		WriteBytes: io.WriteBytes - o.WriteBytes, SyscW: io.SyscW - o.SyscW}
}

// ReadIO reads /proc/<pid>/io.
func ReadIO(pid int) (IO, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return IO{}, fmt.Errorf("read io of %d: %w", pid, err)
	}
	defer f.Close()
	var io IO
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		switch k {
		case "rchar":
			io.RChar = n
		case "wchar":
			io.WChar = n
		case "read_bytes":
			io.ReadBytes = n
		case "write_bytes":
			io.WriteBytes = n
		case "syscw":
			io.SyscW = n
		}
	}
	return io, sc.Err()
}

// RSSKiB returns a process's resident set size and its peak (VmRSS and
// VmHWM of /proc/<pid>/status), in KiB.
func RSSKiB(pid int) (rss, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("read status of %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = n
		case "VmHWM:":
			peak = n
		}
	}
	return rss, peak, nil
}

// SocketOwners maps the local address of every TCP socket that one of the
// given processes holds to that process's name.
func SocketOwners(pids map[int]string) (map[netip.AddrPort]string, error) {
	return socketOwners(pids, "/proc/net/tcp", "/proc/net/tcp6")
}

// UDPSocketOwners is SocketOwners for UDP sockets.
func UDPSocketOwners(pids map[int]string) (map[netip.AddrPort]string, error) {
	return socketOwners(pids, "/proc/net/udp", "/proc/net/udp6")
}

func socketOwners(pids map[int]string, tables ...string) (map[netip.AddrPort]string, error) {
	inodes := map[string]string{} // socket inode → name
	for pid, name := range pids {
		dir := fmt.Sprintf("/proc/%d/fd", pid)
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue // the process is gone
		}
		for _, e := range ents {
			l, err := os.Readlink(filepath.Join(dir, e.Name()))
			if err == nil && strings.HasPrefix(l, "socket:[") {
				inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = name
			}
		}
	}
	out := map[netip.AddrPort]string{}
	for _, file := range tables {
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 {
				continue
			}
			name, ok := inodes[f[9]]
			if !ok {
				continue
			}
			if a, err := parseProcAddr(f[1]); err == nil {
				out[a] = name
			}
		}
	}
	return out, nil
}

// parseProcAddr parses /proc/net/tcp's "0100007F:0929" (address in host
// byte order words, port in hex).
func parseProcAddr(s string) (netip.AddrPort, error) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", s)
	}
	raw, err := hex.DecodeString(h)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", s)
	}
	for i := 0; i < len(raw); i += 4 { // each 32-bit word is little-endian
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad port %q", s)
	}
	a, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(a.Unmap(), uint16(port)), nil
}
