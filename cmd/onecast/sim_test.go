package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSimPassesCorrectProtocol(t *testing.T) {
	var out, errOut bytes.Buffer
	err := runSim(context.Background(), []string{"--protocol", "toyrb", "--n", "7", "--byzantine", "2:any", "--seeds", "50"}, &out, &errOut)
	require.NoError(t, err, out.String())
	assert.Contains(t, out.String(), "PASS: 50 runs, 0 with violations")
	assert.Contains(t, out.String(), "payload duplication factor")
}

func TestSimReportsViolationWithReplayCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	trace := filepath.Join(t.TempDir(), "fail.trace")
	args := []string{"--protocol", "toyrb", "--n", "4", "--byzantine", "1:equivocate", "--seeds", "200", "--unsafe-echo-quorum", "2", "--trace", trace}
	err := runSim(context.Background(), args, &out, &errOut)
	require.Error(t, err)
	assert.True(t, errors.Is(err, errViolation))
	assert.Contains(t, out.String(), "first failing seed")
	assert.Contains(t, out.String(), "replay: onecast sim ")
	assert.Contains(t, out.String(), "--unsafe-echo-quorum=2")
	assert.FileExists(t, trace)

	code := run(context.Background(), append([]string{"sim"}, args...), &out, &errOut)
	assert.Equal(t, 1, code, "a violation exits 1")
}

func TestSimRejectsBadFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	for _, args := range [][]string{
		{"--protocol", "nosuch"},
		{"--byzantine", "1:nosuch"},
		{"--n", "4", "--byzantine", "2:crash"},
		{"--mode", "half"},
	} {
		code := run(context.Background(), append([]string{"sim"}, args...), &out, &errOut)
		assert.Equal(t, 2, code, "%v", args)
	}
}
