// Package testenv lets a package's tests say why some of them did not run,
// where the user of `go test ./...` sees it.
//
// `go test ./...` prints one "ok" line for a package whose tests pass and
// hides everything else the tests wrote, t.Skip's reasons included: a test
// that needs etcd, ZooKeeper, memcached or root and skipped looks exactly
// like one that ran. A package that uses testenv prints one line instead:
//
//	onecast/bench/realsys: skipped 4 tests: etcd not installed (apt-get install etcd-server)
//
// Usage, in one _test.go file of the package:
//
//	var env = testenv.New("bench/realsys")
//
//	func TestMain(m *testing.M) { env.Main(m) }
//
// and in a test:
//
//	env.NeedBinary(t, "etcd", "etcd-server") // skips, and says so, without etcd
//	env.Need(t, ok, "netns: "+why)           // any other requirement of the host
//	env.OptIn(t, "set X=1 to regenerate the table") // deliberate, never an error
//
// With ONECAST_REQUIRE_ALL=1 (set by .ci/run, which installs every package
// the tests use and runs as root) a missing requirement fails the test
// instead of skipping it: CI cannot pass with tests it should have run
// quietly skipped. Opt-in skips stay skips.
//
// A result go test replays from its cache ("ok … (cached)") comes without
// the line: `go test -count=1 ./...` runs the tests again. Where the line
// goes: when the test binary runs under `go test` without
// -v, its output is discarded for a passing package, so Main writes the
// line to the go command's own standard output (/proc/<go's pid>/fd/1) if
// that is a terminal or a pipe; with -v, -json, or anything else, to the
// test binary's standard output as usual.
package testenv

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// RequireAllEnv is the environment variable that turns a missing
// requirement from a skip into a failure.
const RequireAllEnv = "ONECAST_REQUIRE_ALL"

// Env collects one package's skips. Its methods are safe for parallel tests.
type Env struct {
	pkg string

	mu    sync.Mutex
	skips map[string][]string // reason → tests skipped for it
}

// New returns the Env of the package named pkg (as the report names it).
func New(pkg string) *Env { return &Env{pkg: pkg, skips: map[string][]string{}} }

// requireAll reports whether a missing requirement must fail.
func requireAll() bool {
	v := os.Getenv(RequireAllEnv)
	return v != "" && v != "0" && v != "false"
}

// Need skips t with reason unless ok — or, under ONECAST_REQUIRE_ALL,
// fails it. reason should say what is missing and how to get it.
func (e *Env) Need(t testing.TB, ok bool, reason string) {
	t.Helper()
	if ok {
		return
	}
	if requireAll() {
		t.Fatalf("%s (and %s is set: every requirement must be met)", reason, RequireAllEnv)
		return
	}
	e.record(t, reason)
	t.Skip(reason)
}

// NeedBinary needs the executable name on PATH, which Debian package pkg
// provides.
func (e *Env) NeedBinary(t testing.TB, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	e.Need(t, err == nil, fmt.Sprintf("%s not installed (apt-get install %s)", name, pkg))
	return path
}

// NeedRoot needs the effective user to be root.
func (e *Env) NeedRoot(t testing.TB, what string) {
	t.Helper()
	e.Need(t, os.Geteuid() == 0, what+" needs root")
}

// OptIn skips t for a deliberate reason (an environment variable to set,
// -short): reported, never a failure.
func (e *Env) OptIn(t testing.TB, reason string) {
	t.Helper()
	e.record(t, reason)
	t.Skip(reason)
}

func (e *Env) record(t testing.TB, reason string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.skips[reason] = append(e.skips[reason], t.Name())
}

// Summary is the report line: "pkg: skipped 3 tests: etcd not installed
// (apt-get install etcd-server); 1 test: set X=1 …", or "" when nothing
// was skipped.
func (e *Env) Summary() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.skips) == 0 {
		return ""
	}
	reasons := make([]string, 0, len(e.skips))
	total := 0
	for r, tests := range e.skips {
		reasons = append(reasons, r)
		total += len(tests)
	}
	// Most skipped first, then by reason, so the line is stable.
	sort.Slice(reasons, func(i, j int) bool {
		a, b := len(e.skips[reasons[i]]), len(e.skips[reasons[j]])
		if a != b {
			return a > b
		}
		return reasons[i] < reasons[j]
	})
	parts := make([]string, len(reasons))
	for i, r := range reasons {
		parts[i] = fmt.Sprintf("%s: %s", plural(len(e.skips[r])), r)
	}
	if len(parts) == 1 {
		return fmt.Sprintf("%s: skipped %s", e.pkg, parts[0])
	}
	return fmt.Sprintf("%s: skipped %s — %s", e.pkg, plural(total), strings.Join(parts, "; "))
}

func plural(n int) string {
	if n == 1 {
		return "1 test"
	}
	return strconv.Itoa(n) + " tests"
}

// Main runs the tests, prints the summary line where the user sees it, and
// exits with the tests' code. Use it as the package's TestMain.
func (e *Env) Main(m *testing.M) {
	code := m.Run()
	if s := e.Summary(); s != "" {
		e.report(s)
	}
	os.Exit(code)
}

// report writes line where `go test` shows it (see the package doc).
func (e *Env) report(line string) {
	w, closeW := reportWriter()
	defer closeW()
	fmt.Fprintln(w, line)
}

// reportWriter picks where the summary goes: the go command's standard
// output, else its standard error, when this binary runs under `go test`
// without -v and that output is a terminal, a pipe, or a file opened for
// appending (a file opened otherwise is left alone: a second writer at its
// own offset would overwrite it); this binary's standard output otherwise.
func reportWriter() (io.Writer, func()) {
	own := func() (io.Writer, func()) { return os.Stdout, func() {} }
	if testing.Verbose() {
		return own() // -v and -json show the binary's output (and -json must stay JSON)
	}
	ppid := os.Getppid()
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", ppid))
	if err != nil || !slices.Contains([]string{"go", "go.exe"}, filepath.Base(exe)) {
		return own()
	}
	for _, fd := range []int{1, 2} {
		target := fmt.Sprintf("/proc/%d/fd/%d", ppid, fd)
		st, err := os.Stat(target)
		if err != nil {
			continue
		}
		shared := st.Mode()&(os.ModeNamedPipe|os.ModeCharDevice|os.ModeSocket) != 0
		if !shared && !(st.Mode().IsRegular() && openForAppend(ppid, fd)) {
			continue
		}
		f, err := os.OpenFile(target, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			continue
		}
		return f, func() { f.Close() }
	}
	return own()
}

// openForAppend reports whether process pid's descriptor fd was opened
// with O_APPEND (the "flags:" line of /proc/<pid>/fdinfo/<fd>, octal).
func openForAppend(pid, fd int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%d", pid, fd))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "flags:"); ok {
			flags, err := strconv.ParseUint(strings.TrimSpace(v), 8, 64)
			return err == nil && flags&0o2000 != 0 // O_APPEND
		}
	}
	return false
}
