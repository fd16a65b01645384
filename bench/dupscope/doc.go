// Package dupscope measures duplicated content in a packet capture of any
// system's traffic: onecast, etcd, ZooKeeper or anything else that speaks
// TCP or UDP in the clear.
//
// Why: the textbook fault-tolerant primitives carry one payload many times,
// within a round (the same value reaching one node from several peers) and
// between rounds (the value carried again by a later round). Protocol
// counters show this for onecast's own code; for a system whose code we do
// not instrument, the wire is the only neutral witness. dupscope reads the
// capture, rebuilds what the applications wrote (TCP streams reassembled per
// direction, UDP datagram payloads), fingerprints the content and reports
// which bytes repeat bytes seen before.
//
// Two fingerprints:
//   - content-defined chunks (FastCDC, github.com/jotfs/fastcdc-go): a chunk
//     boundary depends on the bytes around it, not on their offset, so a
//     value embedded in different framings (a gRPC request, then a raft
//     append) still yields the same interior chunks. A chunk whose SHA-256
//     was seen earlier in the capture is a repeat; its bytes are duplicate
//     bytes. Payloads shorter than the minimum chunk size are not seen by
//     this fingerprint.
//   - exact occurrences of known values (Options.Known): every occurrence of
//     each given byte string, found with a rolling hash over every stream.
//     This catches small values too, and tells how many copies of each
//     value the system put on the wire.
//
// Usage:
//
//	f, _ := os.Open("trace.pcapng")
//	rep, err := dupscope.Analyse(f, dupscope.Options{Known: values, Name: names})
//	rep.WriteText(os.Stdout)
//
// Reading needs no libpcap: pcap and pcapng are parsed by gopacket's pcapgo,
// packets decoded by gopacket's layers (Ethernet, Linux cooked v1/v2, raw IP,
// BSD loopback), TCP reassembled by gopacket's reassembly (retransmitted and
// overlapping segments are counted once). A malformed capture is an error,
// never a panic; a malformed packet inside it is counted and skipped.
package dupscope
