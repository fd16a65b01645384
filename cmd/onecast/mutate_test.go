package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onecast/onecast/internal/mutant/mutcheck"
)

func TestMutateReportsFirstCatchingSeed(t *testing.T) {
	var out, errOut bytes.Buffer
	table := filepath.Join(t.TempDir(), "mutants.json")
	err := runMutate(context.Background(), []string{"--only", "bracha-echo-quorum,ds-rounds-f", "--budget", "50", "--record", table}, &out, &errOut)
	require.NoError(t, err, out.String())
	assert.Regexp(t, `bracha-echo-quorum\s+bracha\s+seed \d+`, out.String())
	assert.Regexp(t, `ds-rounds-f\s+dolevstrong\s+seed \d+`, out.String())
	assert.Contains(t, out.String(), "caught 2 of 2")
	recs, err := mutcheck.LoadTable(table)
	require.NoError(t, err)
	require.Len(t, recs, 2)
	assert.Equal(t, "bracha-echo-quorum", recs[0].Mutant)
	assert.NotZero(t, recs[0].Seed)
}

func TestMutateNotCaughtExitsOne(t *testing.T) {
	var out, errOut bytes.Buffer
	// Seed 1 alone does not catch a Bracha SEND accepted from a non-origin.
	args := []string{"mutate", "--only", "bracha-send-from-anyone", "--budget", "1"}
	code := run(context.Background(), args, &out, &errOut)
	assert.Equal(t, 1, code)
	assert.Contains(t, out.String(), "NOT CAUGHT")
	assert.Contains(t, out.String(), "runs reaching: equivocating SEND")
	assert.Contains(t, errOut.String(), "bracha-send-from-anyone")

	err := runMutate(context.Background(), args[1:], &out, &errOut)
	assert.True(t, errors.Is(err, errViolation))
}

func TestMutateJSON(t *testing.T) {
	var out, errOut bytes.Buffer
	err := runMutate(context.Background(), []string{"--only", "pbft-prepare-quorum", "--budget", "20", "--format", "json"}, &out, &errOut)
	require.NoError(t, err)
	var rows []mutateRow
	require.NoError(t, json.Unmarshal(out.Bytes(), &rows), out.String())
	require.Len(t, rows, 1)
	r := rows[0]
	assert.Equal(t, "pbft-prepare-quorum", r.Mutant)
	assert.Equal(t, "pbft", r.Protocol)
	assert.True(t, r.Caught)
	assert.Equal(t, int(r.Seed), r.Runs, "seeds start at 1")
	assert.NotEmpty(t, r.Properties)
	assert.NotEmpty(t, r.Violation)
	assert.Equal(t, "pbft/normal.go checkSlot", r.Location)
	assert.Contains(t, r.Coverage, "new view entered")
}

func TestMutateListAndBadFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	require.NoError(t, runMutate(context.Background(), []string{"--list", "--only", "dolevstrong"}, &out, &errOut))
	assert.Contains(t, out.String(), "ds-short-chain")
	assert.NotContains(t, out.String(), "pbft-")
	for _, args := range [][]string{
		{"--only", "nosuch"},
		{"--budget", "0"},
		{"--format", "xml"},
		{"extra"},
	} {
		code := run(context.Background(), append([]string{"mutate"}, args...), &out, &errOut)
		assert.Equal(t, 2, code, "%v", args)
	}
}
