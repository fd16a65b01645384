// Package bench runs onecast clusters under load and reports what the
// duplication costs and what removing it buys.
//
// A [Sweep] expands command-line lists into [Point]s (their cartesian
// product). Each point runs a cluster — in process, one process per node on
// loopback, one network namespace per node, or remote hosts — offers it a
// load (open loop at a rate, or closed loop with a window of payloads in
// flight; offered concurrently to local and remote clusters, whose
// submissions are HTTP round trips to the nodes' control ports, which
// stream each delivery back as it happens), measures after a warm-up, and
// yields a [Result]: throughput,
// latency percentiles from an HdrHistogram, the payload duplication factor
// and wire factor from the nodes' counters, copies per payload byte both
// ways (receive copies into user memory, user-space send copies, and the
// kernel's copies into AF_XDP's UMEM in copy mode), allocations and CPU
// per delivery, peak RSS, retransmissions.
//
// With [Options].Repeat, each point runs several times and [Summarize]
// reports every figure's median with the runs' min–max.
//
// Results print as a table with the ratio digest ÷ full for every figure
// (the point of the exercise), notes derived from each point's [Health]
// counters where they explain a slow or jittery row (frames resent and
// where they were lost, a receive pool run low, AF_XDP in copy mode; see
// [Result.Notes]), and a legend line per column, as JSON or
// CSV, and with an output directory as a Markdown report with PNG plots.
// Every output records the [Environment]: commit, flags, Go version,
// kernel, CPU and cores. Progress goes to [Options].Progress: a bar on a
// terminal, a line every few seconds elsewhere.
//
// Byzantine nodes ([Point].Byzantine, `--byzantine k:behaviour`) are
// silent or crashed nodes (not started), or, on the real transports (udp,
// xdp) of inproc, local and netns clusters, wire-level attackers from
// netio/wireadv: partial-large, fetch-flood, held-spray, future-view,
// garbage, replay, ack-withhold. Such a node uses the cluster's real keys
// and the same transport as the others; a local cluster runs it in the
// bench process, so the correct nodes' processes and figures are their
// own. [Sweep].ByzantineVariants (`--byzantine-sweep none,1:garbage,…`)
// puts the fault-free point and each behaviour's in one run, and the table
// then adds a resource-budget table: deliveries/s against the fault-free
// point, peak RSS, the fewest free receive frames, and each quota's
// refusals ([Refusals]), summed over the correct nodes.
//
// A run ends cleanly on every path: when its context ends (SIGINT), the
// point in progress stops at once and is not reported; a local cluster
// whose node process dies ends the point with "node N exited" and the tail
// of its log; the cluster's processes, namespaces and temporary directory
// go away either way.
package bench
