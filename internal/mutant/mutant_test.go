package mutant

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRegistryListsEveryIDOnce(t *testing.T) {
	ms := All()
	require.Len(t, ms, int(numIDs)-1, "every ID has one entry")
	require.Less(t, int(numIDs), 64, "a Set holds 64 bits")
	names := map[string]bool{}
	for i, m := range ms {
		assert.Equal(t, ID(i+1), m.ID, "entries in ID order")
		assert.False(t, names[m.Name], "name %s twice", m.Name)
		names[m.Name] = true
		assert.True(t, strings.HasPrefix(m.Name, map[string]string{"bracha": "bracha-", "pbft": "pbft-", "dolevstrong": "ds-"}[m.Protocol]), "%s: name prefixed with its protocol %q", m.Name, m.Protocol)
		assert.NotEmpty(t, m.Description)
		got, err := Lookup(m.Name)
		require.NoError(t, err)
		assert.Equal(t, m, got)
	}
	assert.GreaterOrEqual(t, len(ms), 15)
	_, err := Lookup("no-such-mutant")
	assert.ErrorContains(t, err, "pbft-commit-quorum", "the error lists the mutants")
}

// TestEveryHookIsInItsFile: the file a mutant's Location names refers to
// its constant (mutant.Hook), so the registry points at the real hook.
func TestEveryHookIsInItsFile(t *testing.T) {
	root := filepath.Join("..", "..")
	for _, m := range All() {
		file, _, _ := strings.Cut(m.Location, " ")
		src, err := os.ReadFile(filepath.Join(root, file))
		require.NoError(t, err, m.Name)
		pkgDir := filepath.Dir(filepath.Join(root, file))
		helpers, _ := os.ReadFile(filepath.Join(pkgDir, "mutants.go"))
		assert.True(t, strings.Contains(string(src), "mutant."+m.Hook) || strings.Contains(string(helpers), "mutant."+m.Hook),
			"%s: neither %s nor its package's mutants.go mentions mutant.%s", m.Name, file, m.Hook)
	}
}

func TestSet(t *testing.T) {
	var zero Set
	s := Of(PBFTCommitQuorum, DSShortChain)
	for _, m := range All() {
		assert.False(t, zero.Has(m.ID))
		assert.Equal(t, 0, zero.Bit(m.ID))
		want := m.ID == PBFTCommitQuorum || m.ID == DSShortChain
		assert.Equal(t, want, s.Has(m.ID), m.Name)
		assert.Equal(t, map[bool]int{false: 0, true: 1}[want], s.Bit(m.ID), m.Name)
		assert.Equal(t, Of(m.ID), m.Set())
	}
}
