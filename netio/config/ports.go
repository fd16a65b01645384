package config

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
)

// FreeBasePort finds a BasePort for Generate whose whole layout is free on
// this host for n nodes: UDP BasePort+i on 127.0.0.(1+i), and TCP
// BasePort+100+i (API) and BasePort+200+i (control) on 127.0.0.1. Another
// process may still take a port between this check and its use; callers
// that start nodes retry on a bind error.
func FreeBasePort(n int) (int, error) {
	for range 50 {
		base := 20000 + rand.IntN(40000)
		if layoutFree(base, n) {
			return base, nil
		}
	}
	return 0, errors.New("config: no free range of loopback ports found")
}

func layoutFree(base, n int) bool {
	var closers []func() error
	defer func() {
		for _, c := range closers {
			_ = c()
		}
	}()
	for i := range n {
		u, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.0.%d:%d", 1+i, base+i))
		if err != nil {
			return false
		}
		closers = append(closers, u.Close)
		for _, off := range []int{100, 200} {
			l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", base+off+i))
			if err != nil {
				return false
			}
			closers = append(closers, l.Close)
		}
	}
	return true
}
