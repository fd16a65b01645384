package bench

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestWindowIsCappedByBytes: a closed-loop point holds at most WindowBytes
// of payload in flight (at least one payload), so that 8 MiB payloads do
// not run the nodes' default pools dry (32 in flight did over AF_XDP);
// small payloads keep their Inflight window.
func TestWindowIsCappedByBytes(t *testing.T) {
	assert.Equal(t, 32, Point{Inflight: 32, PayloadBytes: 16 << 10}.window())
	assert.Equal(t, 16, Point{Inflight: 32, PayloadBytes: 1 << 20}.window())
	assert.Equal(t, 2, Point{Inflight: 32, PayloadBytes: 8 << 20}.window())
	assert.Equal(t, 1, Point{Inflight: 32, PayloadBytes: 32 << 20}.window())
	assert.Equal(t, 1, Point{Inflight: 1, PayloadBytes: 16 << 10}.window())
}
