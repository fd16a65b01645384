package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/lni/goutils/leaktest"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/bench/h2h"
)

func TestJSONOutputIsOneResultPerSystem(t *testing.T) {
	defer leaktest.AfterTest(t)()
	var out, errOut bytes.Buffer
	require.NoError(t, run([]string{"-systems", "raft,onecast-digest", "-payload", "128", "-inflight", "4",
		"-duration", "200ms", "-warmup", "50ms", "-json"}, &out, &errOut))
	var res []h2h.Result
	require.NoError(t, json.Unmarshal(out.Bytes(), &res))
	require.Len(t, res, 2)
	require.Equal(t, "raft", res[0].System)
	require.Equal(t, "onecast-digest", res[1].System)
	for _, r := range res {
		require.Empty(t, r.Error)
		require.Equal(t, 128, r.PayloadBytes)
		require.Equal(t, 4, r.Inflight)
		require.Positive(t, r.Requests)
	}
}

func TestTableReportsAnUnknownSystemAsARowError(t *testing.T) {
	var out, errOut bytes.Buffer
	require.NoError(t, run([]string{"-systems", "nosuch", "-duration", "10ms"}, &out, &errOut))
	require.Contains(t, out.String(), "unknown system")
	require.True(t, strings.HasPrefix(strings.TrimSpace(out.String()), "system"))
	require.Error(t, run([]string{"-bogus"}, &out, &errOut))
}
