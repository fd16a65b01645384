package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/onecast/onecast/netio/config"
)

func clientCommand() command {
	return command{
		name:    "client",
		summary: "broadcast / propose payloads through a node (from a file, stdin, or generated)",
		run:     runClient,
	}
}

func runClient(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "cluster configuration file (required)")
	id := fs.Int("id", 0, "the node to submit through")
	file := fs.String("file", "-", "payload source: a file, or - for stdin")
	lines := fs.Bool("lines", false, "one payload per line of the source, instead of the whole source as one")
	count := fs.Int("count", 0, "generate this many random payloads instead of reading --file")
	size := fs.Int("size", 4096, "size of each generated payload")
	timeout := fs.Duration("timeout", 60*time.Second, "give up waiting for deliveries after this long")
	quiet := fs.Bool("quiet", false, "print only the summary line")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *cfgPath == "" {
		return fmt.Errorf("%w: --config is required", errUsage)
	}
	c, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	node, err := c.Node(*id)
	if err != nil {
		return fmt.Errorf("%w: --id: %v", errUsage, err)
	}
	if node.API == "" {
		return fmt.Errorf("config: nodes[%d].api: missing, the node takes no client submissions", *id)
	}
	payloads, err := clientPayloads(*file, *lines, *count, *size)
	if err != nil {
		return err
	}
	if len(payloads) == 0 {
		return fmt.Errorf("%w: no payloads to send", errUsage)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", node.API)
	if err != nil {
		return fmt.Errorf("connect to node %d: %w", *id, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		w := bufio.NewWriter(conn)
		var hdr [4]byte
		for _, p := range payloads {
			binary.LittleEndian.PutUint32(hdr[:], uint32(len(p)))
			w.Write(hdr[:])
			if _, err := w.Write(p); err != nil {
				errc <- err
				return
			}
		}
		errc <- w.Flush()
	}()
	r := bufio.NewScanner(conn)
	got := 0
	for got < len(payloads) && r.Scan() {
		line := r.Text()
		if strings.HasPrefix(line, "error ") {
			return fmt.Errorf("node %d: %s", *id, strings.TrimPrefix(line, "error "))
		}
		got++
		if !*quiet {
			fmt.Fprintln(stdout, line)
		}
	}
	if err := <-errc; err != nil && got < len(payloads) {
		return fmt.Errorf("send to node %d: %w", *id, err)
	}
	el := time.Since(start)
	fmt.Fprintf(stdout, "%d of %d payloads delivered at node %d in %v (%.0f/s)\n", got, len(payloads), *id,
		el.Round(time.Millisecond), float64(got)/el.Seconds())
	if got < len(payloads) {
		return fmt.Errorf("%d payloads not delivered within %v", len(payloads)-got, *timeout)
	}
	return nil
}

// clientPayloads reads or generates the payloads.
func clientPayloads(file string, lines bool, count, size int) ([][]byte, error) {
	if count > 0 {
		if size <= 0 {
			return nil, fmt.Errorf("%w: --size must be positive", errUsage)
		}
		out := make([][]byte, count)
		for i := range out {
			out[i] = make([]byte, size)
			if _, err := rand.Read(out[i]); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	var src io.Reader = os.Stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("--file: %w", err)
		}
		defer f.Close()
		src = f
	}
	data, err := io.ReadAll(src)
	if err != nil {
		return nil, fmt.Errorf("read payloads: %w", err)
	}
	if !lines {
		if len(data) == 0 {
			return nil, errors.New("the payload source is empty")
		}
		return [][]byte{data}, nil
	}
	var out [][]byte
	for _, l := range strings.Split(string(data), "\n") {
		if l != "" {
			out = append(out, []byte(l))
		}
	}
	return out, nil
}
