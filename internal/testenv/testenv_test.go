package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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

// TestOpenForAppendReadsTheDescriptorsFlags checks the O_APPEND test that
// decides whether the summary may be added to the go command's output file.
func TestOpenForAppendReadsTheDescriptorsFlags(t *testing.T) {
	dir := t.TempDir()
	app, err := os.OpenFile(filepath.Join(dir, "a"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(t, err)
	defer app.Close()
	trunc, err := os.OpenFile(filepath.Join(dir, "b"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	require.NoError(t, err)
	defer trunc.Close()
	assert.True(t, openForAppend(os.Getpid(), int(app.Fd())))
	assert.False(t, openForAppend(os.Getpid(), int(trunc.Fd())))
	assert.False(t, openForAppend(os.Getpid(), 1<<20), "no such descriptor")
}

// TestGoTestShowsTheSkipLine runs `go test` on a fixture package (in
// testdata, so `go test ./...` does not run it) whose one test skips for
// a missing program: the package's "ok" comes with the line saying so, in
// the plain package-list output that hides everything else a passing
// package prints; with ONECAST_REQUIRE_ALL=1 the package fails.
func TestGoTestShowsTheSkipLine(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a test binary (-short)")
	}
	goBin, err := exec.LookPath("go")
	require.NoError(t, err)
	run := func(env ...string) (string, error) {
		cmd := exec.Command(goBin, "test", "-count=1", "./testdata/skipper")
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.Output() // stdout is a pipe, as in `go test ./... | cat` or CI
		return string(out), err
	}
	out, err := run(RequireAllEnv + "=")
	require.NoError(t, err, out)
	assert.Contains(t, out, "skipper: skipped 1 test: no-such-binary-onecast not installed (apt-get install no-such-package)\n")
	assert.Contains(t, out, "ok  \tgithub.com/onecast/onecast/internal/testenv/testdata/skipper")

	out, err = run(RequireAllEnv + "=1")
	require.Error(t, err, "a missing requirement fails under %s", RequireAllEnv)
	assert.Contains(t, out, "--- FAIL: TestNeedsAProgram")
}
