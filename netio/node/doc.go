// Package node is one onecast node on a real network, assembled in one
// place: the buffer pool, the payload store, the protocol (Bracha, PBFT,
// Dolev–Strong, or a caller's own Spec), the conduit (kernel UDP or
// AF_XDP, per node, from the cluster's configuration), the reliable link,
// the authenticator and the runner. `onecast node`, the kv replicas and
// the bench's in-process and namespace clusters all start their nodes
// here, and so can any Go program.
//
// # Usage loop
//
//	c, _ := config.Load("cluster/cluster.yaml")     // onecast keygen
//	nd, err := node.Start(node.Config{Cluster: c, ID: 2,
//		OnDeliver: func(d broadcast.Delivery) {      // on the node's loop
//			use(d.Instance, d.Payload)
//			d.Payload.Release()                       // the callback owns the reference
//		}})
//	defer nd.Close()
//	b, _ := nd.Pool().Copy(data)                     // a buffer of the node's pool
//	err = nd.Submit(ctx, b)                          // takes b's reference
//	m := nd.Metrics()                                // store, link, conduit, runner counters
//
// # Who owns a buffer
//
// Submit takes the reference of the Buf it is given, whether it succeeds or
// not: the caller must not use or release it afterwards (Retain first to
// keep it). Each delivery carries one payload reference, which passes to
// the application: OnDeliver, or the receiver of Config.Deliveries, must
// Release it once, when done with it, and may keep it as long as it likes
// (Retain for more holders). A payload received over AF_XDP is a view on a
// UMEM frame the kernel wrote; holding it keeps that frame from the receive
// ring, which is why the store copies long-held payloads out when free
// frames run low, and why Close leaves the UMEM mapped while the
// application still holds payloads. A payload built in SendPool — over
// AF_XDP, the UMEM — goes out to every peer by reference, not copied into
// TX frames per recipient (onecast node's bench control port builds the
// payloads it is sent there).
//
// # Transports
//
// A node's transport comes from its entry in the configuration
// (config.Transport), or Config.Transport: kernel UDP by default, or
// AF_XDP on one queue of an interface (xdp), with the attach mode (native,
// generic, auto) and the binding (zero-copy, copy, auto). Where AF_XDP
// cannot be used — the process lacks the capabilities, the interface does
// not exist in the node's namespace, the driver refuses the mode, another
// socket holds the queue — Start returns one error that wraps the cause
// (ErrXDPNotPermitted, ErrXDPNoInterface, ErrXDPUnsupported,
// ErrXDPQueueBusy, ErrXDPNoPeerMAC) and the system's error; with
// `fallback: udp` the node runs over kernel UDP instead, logs a warning
// and reports the cause in Metrics.Fallback. UDP and AF_XDP nodes talk to
// each other: the wire format is the same UDP datagram.
//
// Peers' hardware addresses, which an AF_XDP node writes into the frames
// it builds, come from their `mac` field or from the kernel's neighbour
// table (resolved on start); peers are on the node's Ethernet segment.
//
// # Why each choice
//
//   - One assembly: frame sizes (MTU rounded up to 1 KiB, at least 2 KiB),
//     the store watched by the conduit (payloads leave receive frames
//     under a watermark), the AF_XDP program as the store's observer (the
//     kernel strips payloads the node holds), the link's metrics shared
//     with the runner's: each decided here once, not per caller.
//   - The protocol clock starts at the Unix epoch, so synchronous rounds
//     (Dolev–Strong) line up across hosts with synchronized clocks.
//   - Deliveries are callbacks on the protocol loop or a channel the node
//     blocks on: back-pressure reaches the protocol instead of an
//     unbounded queue.
//   - Callers with special needs pass a Spec (kv/replica's PBFT over a
//     durable state machine), a Conduit they opened (the bench's AF_XDP
//     ablations) or an in-process Endpoint (netio/mem), and still get the
//     same store, link and runner.
//
// # What it costs
//
// A node holds its buffer pool (DefaultFrames frames of 2 KiB: 32 MiB of
// address space, touched as used) and, over AF_XDP, a UMEM of
// DefaultXDPFrames frames (64 MiB, pinned). It runs the runner's loop and
// verifier goroutines, the link's receive and timer goroutines, and the
// conduit's receive goroutine. AF_XDP needs CAP_NET_ADMIN and CAP_BPF (or
// root); a node attaches its XDP program to its interface and binds one
// queue, so one node runs per interface, and a node with several queues
// is not supported yet.
package node
