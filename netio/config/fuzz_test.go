package config_test

import (
	"testing"

	"github.com/onecast/onecast/netio/config"
)

// FuzzParse feeds arbitrary bytes to the configuration decoder: it may
// refuse them, never panic, and what it accepts validates.
func FuzzParse(f *testing.F) {
	f.Add([]byte("protocol: bracha\nmode: digest\nf: 0\nauth: mac\nnodes:\n  - id: 0\n    addr: 127.0.0.1:7000\n"))
	f.Add([]byte("protocol: [\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := config.Parse(b)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted a configuration that does not validate: %v", err)
		}
		_ = c.Addrs()
		_ = c.PublicKeys()
	})
}
