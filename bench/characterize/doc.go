// Package characterize is the brief's phase 1 as one call: it measures how
// much payload duplication onecast's primitives cause in their textbook
// (full) form, and how much real replicated systems (etcd, ZooKeeper) put on
// the wire, and writes docs/CHARACTERIZATION.md with tables and PNG plots.
//
// Three sources, each the right witness for its question:
//
//   - Own primitives, application level (own.go, record.go): every point of
//     an OwnSweep (protocol × n × payload, then batch, load and Byzantine
//     behaviour one at a time) is one deterministic simulator run (package
//     sim) on a network without loss or duplication. Each node's protocol
//     is wrapped by a recorder that sees every Step and Submit; the
//     submitted values are located by content in every payload (also inside
//     batches), and each copy a correct node receives is classified as its
//     first copy, a within-round duplicate (another copy in the same
//     message type — or, for Dolev–Strong, the same signature-chain length)
//     or a between-round duplicate (the first copy in a later round). The
//     per-type counts are checked against the simulator's own counters
//     (broadcast.Metrics), and the report says whether they agree.
//   - Own primitives, system level: bench's in-process clusters over kernel
//     UDP on loopback (wire bytes, allocations, RSS).
//   - Real systems (package bench/realsys): 3-member etcd and ZooKeeper
//     clusters on loopback, a client writing known values to the leader and
//     then to a follower, a dumpcap capture analysed by bench/dupscope, and
//     the servers' /proc/<pid>/io.
//
// Usage:
//
//	c, err := characterize.Run(ctx, os.Args[1:], characterize.Options{Quick: true, RealOwn: true})
//	files, err := c.Write("docs/CHARACTERIZATION.md") // + docs/characterization/*.png
//
// Nothing is installed: a real system whose programs are missing
// (realsys.Layout.Check; Missing lists them with the apt-get command) is
// skipped with the reason in the report; the rest runs.
package characterize
