// Package units parses and prints the byte sizes the CLI takes: one parser
// for every command, so that "16KiB" means the same to bench, sim and client.
//
// Sizes are binary: B, KiB, MiB, GiB (case-insensitive; K/KB, M/MB, G/GB are
// read as the same binary units). A bare number is bytes.
package units

import (
	"fmt"
	"strconv"
	"strings"
)

// unit is one suffix and its multiplier, longest suffixes first so that
// "kib" is tried before "b".
var suffixes = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
	{"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30},
	{"b", 1},
}

// maxSize bounds what ParseSize accepts (1 TiB): beyond it a size is a typo.
const maxSize = 1 << 40

// ParseSize parses a positive byte size: 512, 100B, 16KiB, 1MiB, 2GiB,
// 64 KiB. Its error names the input and the accepted forms.
func ParseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range suffixes {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSuffix(t, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("size %q: want a positive size in B, KiB, MiB or GiB, such as 512, 16KiB or 1GiB", s)
	}
	if n > maxSize/mult {
		return 0, fmt.Errorf("size %q: larger than 1 TiB", s)
	}
	return n * mult, nil
}

// FormatSize prints a byte size the way ParseSize reads it, in the largest
// unit that divides it exactly: 16KiB, 1GiB, 1000B.
func FormatSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// Size is a flag.Value holding a byte size parsed by ParseSize:
//
//	payload := units.Size(16 << 10)
//	fs.Var(&payload, "payload", "payload size (B, KiB, MiB, GiB)")
type Size int64

// String prints the size as FormatSize does.
func (s *Size) String() string { return FormatSize(int64(*s)) }

// Set parses v with ParseSize.
func (s *Size) Set(v string) error {
	n, err := ParseSize(v)
	if err != nil {
		return err
	}
	*s = Size(n)
	return nil
}
