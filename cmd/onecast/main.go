// Command onecast is the project's one CLI: the cluster benchmark, the
// simulator, the characterization and evaluation reports, a node, the
// key-value replica and the capture analyser.
//
// Each subcommand lives in its own file and is listed in commands below.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	// run executes the command with its arguments (the command name
	// excluded). ctx ends on SIGINT or SIGTERM.
	run func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands lists every subcommand. Add one line per command file.
func commands() []command {
	return []command{
		benchCommand(),
		simCommand(),
		keygenCommand(),
		nodeCommand(),
		clientCommand(),
		dupscopeCommand(),
		characterizeCommand(),
		evaluateCommand(),
		kvCommand(),
		mutateCommand(),
	}
}

// errUsage marks an error whose message is a usage complaint: exit code 2,
// the message, then the command's usage.
var errUsage = errors.New("usage")

// errUsageShown marks a usage error the flag package already printed, with
// the usage: exit code 2 and nothing more.
var errUsageShown = errors.New("usage shown")

// parseFlags parses args into fs. A malformed or unknown flag (which fs has
// already reported, with its usage) comes back as errUsageShown, -h as
// flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return fmt.Errorf("%w: %w", errUsageShown, err)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches to a subcommand and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].name < cmds[j].name })
	usage := func() {
		fmt.Fprintln(stderr, "usage: onecast <command> [flags]\n\ncommands:")
		for _, c := range cmds {
			fmt.Fprintf(stderr, "  %-13s %s\n", c.name, c.summary)
		}
		fmt.Fprintln(stderr, "\nRun 'onecast <command> -h' for a command's flags.")
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage()
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range cmds {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsageShown):
			return 2
		case errors.Is(err, errInterrupted):
			return 130 // the shell's code for a run ended by SIGINT
		case errors.Is(err, errUsage):
			fmt.Fprintf(stderr, "onecast %s: %s\n\n", c.name, strings.TrimPrefix(err.Error(), errUsage.Error()+": "))
			// -h prints the command's usage and stops before the command
			// does anything.
			_ = c.run(ctx, []string{"-h"}, io.Discard, stderr)
			return 2
		case errors.Is(err, errViolation):
			fmt.Fprintf(stderr, "onecast %s: %v\n", c.name, err)
			return 1
		default:
			fmt.Fprintf(stderr, "onecast %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "onecast: unknown command %q\n\n", args[0])
	usage()
	return 2
}

// errInterrupted marks a run that SIGINT or SIGTERM ended early, after it
// reported what finished: exit code 130, nothing more printed.
var errInterrupted = errors.New("interrupted")

// errViolation marks a run that found a protocol property violated (exit 1).
var errViolation = errors.New("property violated")
