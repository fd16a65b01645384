// Package evaluate is the project's third phase as one command (onecast
// evaluate): it measures what each of onecast's techniques buys, on every
// primitive, and writes docs/EVALUATION.md with tables, plots and, beside
// each, the command that regenerates it.
//
// # What it runs
//
//   - Matrix: each primitive (Bracha, PBFT, Dolev–Strong) in four
//     configurations — full mode over kernel UDP (the conventional
//     baseline), digest mode over UDP, digest mode over AF_XDP passing
//     payloads by reference, and digest mode over AF_XDP with the in-kernel
//     strip — in network-namespace clusters (one namespace and veth per
//     node), across n and payload sizes, and with a Byzantine (silent)
//     node. Figures: throughput, latency percentiles, duplication and wire
//     factors, copies, CPU and memory per delivery (bench.Result). The
//     Byzantine behaviours that lie (equivocation, flooding, replay) run
//     in the deterministic simulator, both modes, with exact counts
//     (characterize.RunOwn).
//   - Ablation: each technique switched on alone against its baseline —
//     digest-only rounds (full → digest), reference passing (AF_XDP copying
//     out of UMEM → passing references), the in-kernel strip (off → on) and
//     batching (1 → 16 payloads per instance).
//   - Scaling: message bytes per broadcast against n in process (where n
//     can grow past what namespaces hold), with a least-squares fit a·n² +
//     b·n + c per mode (quadratic in full mode, linear in digest mode), and
//     throughput against n in namespaces, with a per-delivery cost model
//     fitted to it and extrapolated to larger n.
//   - Head-to-head: onecast's pbft against SmartBFT and etcd raft on one
//     in-memory network (the separate module bench/h2h, run with `go run`
//     so that the library's own dependencies stay small).
//
// Without root the namespace parts are replaced by in-process clusters over
// loopback UDP and the AF_XDP configurations are left out, and the report
// says so. The quick profile (Options.Quick) keeps every section with fewer
// points and shorter windows: under 10 minutes on 2 cores. Options.Repeat
// runs every point and the head-to-head several times (3 for headline
// figures, in 3× the time): each figure is then the median of the runs,
// the summary gives each ratio the range of the runs' own ratios, and the
// report states the load average at the start and the end.
//
// Usage:
//
//	ev, err := evaluate.Run(ctx, os.Args[1:], evaluate.Options{Quick: true, Specs: specs, Clusters: factories, H2HDir: "bench/h2h"})
//	files, err := ev.Write("docs/EVALUATION.md") // plots in docs/evaluation/
package evaluate
