package testenv

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// fakeTB records what Need and OptIn do to a test.
type fakeTB struct {
	testing.TB
	name            string
	skipped, failed bool
	msg             string
}

func (f *fakeTB) Helper()                        {}
func (f *fakeTB) Name() string                   { return f.name }
func (f *fakeTB) Skip(args ...any)               { f.skipped = true; f.msg = args[0].(string) }
func (f *fakeTB) Fatalf(format string, a ...any) { f.failed = true }

func TestSummaryCountsTestsPerReason(t *testing.T) {
	t.Setenv(RequireAllEnv, "")
	e := New("bench/realsys")
	assert.Empty(t, e.Summary(), "nothing skipped, nothing said")
	for _, name := range []string{"TestA", "TestB"} {
		tb := &fakeTB{name: name}
		e.Need(tb, false, "etcd not installed (apt-get install etcd-server)")
		assert.True(t, tb.skipped)
		assert.False(t, tb.failed)
	}
	assert.Equal(t, "bench/realsys: skipped 2 tests: etcd not installed (apt-get install etcd-server)", e.Summary())
	tb := &fakeTB{name: "TestC"}
	e.Need(tb, true, "never said")
	assert.False(t, tb.skipped, "a met requirement runs the test")
	e.OptIn(&fakeTB{name: "TestD"}, "set X=1 to regenerate")
	assert.Equal(t, "bench/realsys: skipped 3 tests — 2 tests: etcd not installed (apt-get install etcd-server); 1 test: set X=1 to regenerate", e.Summary())
}

func TestRequireAllTurnsAMissingRequirementIntoAFailure(t *testing.T) {
	t.Setenv(RequireAllEnv, "1")
	e := New("p")
	tb := &fakeTB{name: "TestA"}
	e.Need(tb, false, "memcached not installed (apt-get install memcached)")
	assert.True(t, tb.failed)
	tb = &fakeTB{name: "TestB"}
	e.OptIn(tb, "set X=1")
	assert.True(t, tb.skipped, "an opt-in test stays skipped")
	assert.False(t, tb.failed)
	assert.Equal(t, "p: skipped 1 test: set X=1", e.Summary(), "the failure is not reported as a skip")
}

func TestNeedBinaryFindsWhatIsOnPath(t *testing.T) {
	t.Setenv(RequireAllEnv, "")
	e := New("p")
	tb := &fakeTB{name: "TestSh"}
	assert.NotEmpty(t, e.NeedBinary(tb, "sh", "dash"))
	assert.False(t, tb.skipped)
	tb = &fakeTB{name: "TestNone"}
	e.NeedBinary(tb, "no-such-binary-onecast", "no-such-package")
	assert.True(t, tb.skipped)
	assert.Equal(t, "no-such-binary-onecast not installed (apt-get install no-such-package)", tb.msg)
}
