package pbft

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/broadcast"
)

// dupRow is one configuration's duplication figures.
type dupRow struct {
	// Request is payload bytes of requests received (REQUEST, PRE-PREPARE,
	// fetched PAYLOAD) ÷ payload bytes of other clients' requests executed,
	// averaged over the backups; Primary is the same at the primary.
	Request, Primary float64
	// All counts every payload received, replies' results included.
	All float64
	// Wire is every byte received (headers, bodies, authenticators and
	// payloads) ÷ the same denominator, averaged over all replicas.
	Wire float64
}

// measureDup runs n replicas whose clients each issue perClient requests of
// size bytes, and returns the duplication factors.
func measureDup(t testing.TB, n int, mode broadcast.Mode, size, batch, perClient int) dupRow {
	f := (n - 1) / 3
	h := newHarness(t, n, f, harnessOpt{mode: mode, batch: batch, k: 64, signer: true})
	defer h.close()
	for r := range perClient {
		for i := range n {
			p := make([]byte, size)
			copy(p, fmt.Sprintf("req %d of %d ", r, i))
			b, err := h.pool.Copy(p)
			require.NoError(t, err)
			require.NoError(t, h.c.Submit(broadcast.NodeID(i), b))
		}
	}
	h.run(time.Minute)
	for i := range n {
		require.Equal(t, perClient*n, len(h.c.Delivered[i]), "replica %d executed everything", i)
	}
	var row dupRow
	for i := range n {
		s := h.c.Metrics[i].Snapshot()
		var req uint64
		for _, r := range s.Types {
			switch r.Type {
			case TypeRequest, TypePrePrepare, broadcast.TypePayload:
				req += r.RecvPayload
			}
		}
		fr := float64(req) / float64(s.RemoteDeliveredBytes)
		if i == 0 {
			row.Primary = fr
		} else {
			row.Request += fr / float64(n-1)
		}
		row.All += s.PayloadDupFactor() / float64(n)
		row.Wire += s.WireFactor() / float64(n)
	}
	return row
}

func TestFullModeDuplicatesRequestsDigestModeDoesNot(t *testing.T) {
	for _, n := range []int{4, 7} {
		full := measureDup(t, n, broadcast.ModeFull, 1024, 8, 16)
		dig := measureDup(t, n, broadcast.ModeDigest, 1024, 8, 16)
		assert.InDelta(t, 1.0, dig.Request, 0.01, "n=%d digest: each request received once", n)
		assert.InDelta(t, 2.0, full.Request, 0.35, "n=%d full: once from the client, once in PRE-PREPARE", n)
		assert.Greater(t, full.All, dig.All)
	}
}

// TestDuplicationTable prints the table of docs/RESULTS.md (## PBFT):
//
//	PBFT_DUP_TABLE=1 go test ./pbft -run DuplicationTable -v
func TestDuplicationTable(t *testing.T) {
	if os.Getenv("PBFT_DUP_TABLE") == "" {
		env.OptIn(t, "set PBFT_DUP_TABLE=1 to print the duplication table")
	}
	var sb strings.Builder
	sb.WriteString("| n | request | batch | full: backups | full: primary | full: all payload | full: wire | digest: backups | digest: primary | digest: all payload | digest: wire |\n")
	sb.WriteString("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, n := range []int{4, 7} {
		for _, size := range []int{128, 4096} {
			for _, batch := range []int{1, 64} {
				per := 128
				full := measureDup(t, n, broadcast.ModeFull, size, batch, per)
				dig := measureDup(t, n, broadcast.ModeDigest, size, batch, per)
				fmt.Fprintf(&sb, "| %d | %d B | %d | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n", n, size, batch,
					full.Request, full.Primary, full.All, full.Wire, dig.Request, dig.Primary, dig.All, dig.Wire)
			}
		}
	}
	t.Log("\n" + sb.String())
}
