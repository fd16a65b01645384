package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tinyCharacterize is a characterization small enough for a test: the
// simulator sweep at n = 4 and 1 KiB, no kernel UDP run.
var tinyCharacterize = []string{"characterize", "--quick", "--n", "4", "--payload", "1KiB", "--udp=false"}

// TestCharacterizeInstallsNothingAndSaysWhatIsMissing runs characterize on
// a PATH with no etcd and an apt-get that would leave a mark: etcd is
// skipped with the command that installs it, apt-get is never run, the
// rest runs, and the report goes to a new directory, not docs/.
func TestCharacterizeInstallsNothingAndSaysWhatIsMissing(t *testing.T) {
	cwd := t.TempDir()
	t.Chdir(cwd)
	require.NoError(t, os.MkdirAll("docs", 0o755))
	require.NoError(t, os.WriteFile("docs/CHARACTERIZATION.md", []byte("committed"), 0o644))
	bin := t.TempDir()
	mark := filepath.Join(t.TempDir(), "apt-get-ran")
	require.NoError(t, os.WriteFile(filepath.Join(bin, "apt-get"), []byte("#!/bin/sh\ntouch "+mark+"\n"), 0o755))
	t.Setenv("PATH", bin)

	var out, errb bytes.Buffer
	code := run(context.Background(), append(tinyCharacterize, "--systems", "etcd"), &out, &errb)
	require.Equal(t, 0, code, errb.String())
	assert.Contains(t, errb.String(), "etcd will be skipped: missing etcd (looked in PATH)")
	assert.Contains(t, errb.String(), "apt-get install etcd-server tshark")
	assert.NoFileExists(t, mark, "characterize never installs anything")

	committed, err := os.ReadFile("docs/CHARACTERIZATION.md")
	require.NoError(t, err)
	assert.Equal(t, "committed", string(committed), "docs/ is left alone")
	reports, err := filepath.Glob("characterization-*/CHARACTERIZATION.md")
	require.NoError(t, err)
	require.Len(t, reports, 1, "the report is in a new directory: %s", out.String())
	md, err := os.ReadFile(reports[0])
	require.NoError(t, err)
	assert.Contains(t, string(md), "apt-get install etcd-server", "the report says how to run what was skipped")
}

// TestCharacterizeWritesDocsOnlyWhenAsked checks --out and --write-docs.
func TestCharacterizeWritesDocsOnlyWhenAsked(t *testing.T) {
	t.Chdir(t.TempDir())
	var out, errb bytes.Buffer
	code := run(context.Background(), append(tinyCharacterize, "--systems", "", "--write-docs"), &out, &errb)
	assert.Equal(t, 2, code, "no docs/ here: refused before running")
	assert.Contains(t, errb.String(), "repository's root")

	require.NoError(t, os.MkdirAll("docs", 0o755))
	require.NoError(t, os.WriteFile("docs/CHARACTERIZATION.md", []byte("old"), 0o644))
	errb.Reset()
	code = run(context.Background(), append(tinyCharacterize, "--systems", "", "--write-docs", "--out", "x"), &out, &errb)
	assert.Equal(t, 2, code, "--out and --write-docs contradict each other")

	errb.Reset()
	code = run(context.Background(), append(tinyCharacterize, "--systems", "", "--write-docs"), &out, &errb)
	require.Equal(t, 0, code, errb.String())
	md, err := os.ReadFile("docs/CHARACTERIZATION.md")
	require.NoError(t, err)
	assert.Contains(t, string(md), "# Phase 1: characterization of payload duplication")

	errb.Reset()
	code = run(context.Background(), append(tinyCharacterize, "--systems", "", "--out", "mine"), &out, &errb)
	require.Equal(t, 0, code, errb.String())
	assert.FileExists(t, "mine/CHARACTERIZATION.md")

	errb.Reset()
	code = run(context.Background(), append(tinyCharacterize, "--systems", "redis"), &out, &errb)
	assert.Equal(t, 2, code, "an unknown system is a usage error")
}
