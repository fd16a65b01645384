// Command duptable prints the payload duplication and wire factors of
// Bracha in full and digest mode, as the markdown table of docs/RESULTS.md:
//
//	go run ./bracha/internal/duptable
//
// Each cell is one run on netio/mem with MAC authenticators: node 0, a
// correct origin, broadcasts -k payloads of the given size; the figures are
// the mean over the n−1 receivers of payload bytes received ÷ payload bytes
// delivered (payload factor) and all bytes received, headers and
// authenticators included, ÷ payload bytes delivered (wire factor).
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/onecast/onecast/bracha"
	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
	"github.com/onecast/onecast/netio/mem"
)

type cell struct {
	payload, wire, min, max float64
}

func measure(n, size, k int, mode broadcast.Mode) (cell, error) {
	f := (n - 1) / 3
	pool := bufpool.MustNew(bufpool.Config{FrameSize: 16 << 10, Frames: 8 * k * (size/(16<<10) + 1), Name: "duptable"})
	rings, err := broadcast.GenerateKeyrings(n, rand.NewChaCha8([32]byte{1}))
	if err != nil {
		return cell{}, err
	}
	nodes := make([]broadcast.Protocol, n)
	auths := make([]broadcast.Authenticator, n)
	for i := range n {
		nd, err := bracha.New(bracha.Config{N: n, F: f, Self: broadcast.NodeID(i), Mode: mode, Keys: rings[i], Pool: pool})
		if err != nil {
			return cell{}, err
		}
		defer nd.Close()
		nodes[i] = nd
		if auths[i], err = broadcast.NewMAC(rings[i]); err != nil {
			return cell{}, err
		}
	}
	c := mem.NewCluster(mem.NewNetwork(n), nodes)
	c.Auth = auths
	defer c.Close()
	r := rand.New(rand.NewPCG(uint64(n), uint64(size)))
	data := make([]byte, size)
	for range k {
		for i := range data {
			data[i] = byte(r.Uint32())
		}
		b, err := pool.Copy(data)
		if err != nil {
			return cell{}, err
		}
		if err := c.Submit(0, b); err != nil {
			return cell{}, err
		}
	}
	c.Run(time.Hour, 1<<30)
	out := cell{min: 1e9}
	for i := 1; i < n; i++ {
		if got := len(c.Delivered[i]); got != k {
			return cell{}, fmt.Errorf("n=%d size=%d %v: node %d delivered %d of %d", n, size, mode, i, got, k)
		}
		s := c.Metrics[i].Snapshot()
		out.payload += s.PayloadDupFactor()
		out.wire += s.WireFactor()
		out.min = min(out.min, s.PayloadDupFactor())
		out.max = max(out.max, s.PayloadDupFactor())
	}
	out.payload /= float64(n - 1)
	out.wire /= float64(n - 1)
	return out, nil
}

func main() {
	k := flag.Int("k", 8, "payloads broadcast per cell")
	flag.Parse()
	fmt.Println("| n | f | payload | full: payload factor | full: wire factor | digest: payload factor | digest: wire factor |")
	fmt.Println("|---:|---:|---:|---:|---:|---:|---:|")
	for _, n := range []int{4, 7, 10} {
		for _, size := range []int{1 << 10, 16 << 10, 64 << 10} {
			var cells [2]cell
			for j, mode := range []broadcast.Mode{broadcast.ModeFull, broadcast.ModeDigest} {
				c, err := measure(n, size, *k, mode)
				if err != nil {
					fmt.Fprintln(os.Stderr, "duptable:", err)
					os.Exit(1)
				}
				if c.max-c.min > 1e-9 {
					fmt.Fprintf(os.Stderr, "duptable: n=%d size=%d %v: receivers differ (%.4f … %.4f)\n", n, size, mode, c.min, c.max)
				}
				cells[j] = c
			}
			fmt.Printf("| %d | %d | %d KiB | %.2f | %.2f | %.2f | %.2f |\n", n, (n-1)/3, size>>10,
				cells[0].payload, cells[0].wire, cells[1].payload, cells[1].wire)
		}
	}
	fmt.Println()
	fmt.Println("| n | f | payload | Byzantine vouchers | payload factor | wire factor | FETCHes per fetched payload |")
	fmt.Println("|---:|---:|---:|---|---:|---:|---:|")
	for _, n := range []int{4, 7, 10} {
		for _, size := range []int{1 << 10, 64 << 10} {
			for _, junk := range []bool{false, true} {
				p, w, fpf, err := withheld(n, size, *k, junk)
				if err != nil {
					fmt.Fprintln(os.Stderr, "duptable:", err)
					os.Exit(1)
				}
				who := "silent"
				if junk {
					who = "answer junk"
				}
				fmt.Printf("| %d | %d | %d KiB | %s | %.2f | %.2f | %.2f |\n", n, (n-1)/3, size>>10, who, p, w, fpf)
			}
		}
	}
}
