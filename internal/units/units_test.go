package units

import (
	"flag"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseSizeReadsEveryBinaryUnit(t *testing.T) {
	for in, want := range map[string]int64{
		"512": 512, "100B": 100, "16KiB": 16 << 10, "1MiB": 1 << 20, "1GiB": 1 << 30, "2gib": 2 << 30,
		"4k": 4 << 10, "2M": 2 << 20, "3G": 3 << 30, "64 KiB": 64 << 10, " 8KB ": 8 << 10,
	} {
		got, err := ParseSize(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
		back, err := ParseSize(FormatSize(got))
		require.NoError(t, err)
		assert.Equal(t, got, back, "FormatSize round-trips %q", in)
	}
}

func TestParseSizeRejectsNonsenseWithTheFormsItTakes(t *testing.T) {
	for _, bad := range []string{"", "0", "-1KiB", "lots", "1.5KiB", "KiB", "1TiB", "2000GiB"} {
		_, err := ParseSize(bad)
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), "size", bad)
	}
	_, err := ParseSize("lots")
	assert.Contains(t, err.Error(), "GiB", "the error lists the units")
}

func TestFormatSizePicksTheLargestExactUnit(t *testing.T) {
	assert.Equal(t, "1GiB", FormatSize(1<<30))
	assert.Equal(t, "1536MiB", FormatSize(1536<<20))
	assert.Equal(t, "16KiB", FormatSize(16<<10))
	assert.Equal(t, "1000B", FormatSize(1000))
}

func TestSizeIsAFlag(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	s := Size(1024)
	fs.Var(&s, "payload", "")
	require.NoError(t, fs.Parse([]string{"--payload", "1GiB"}))
	assert.Equal(t, Size(1<<30), s)
	assert.Equal(t, "1GiB", s.String())
	assert.Error(t, fs.Parse([]string{"--payload", "big"}))
}
