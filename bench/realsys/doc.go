// Package realsys finds, starts and measures real replicated systems on
// loopback addresses: a 3-member etcd cluster (Debian etcd-server) and a
// 3-server ZooKeeper ensemble (Debian zookeeper), for the characterization's
// "how much do production systems duplicate?" section.
//
// One experiment (Run) does, in order: check the programs (Layout.Check:
// etcd on PATH; ZooKeeper where Debian's package puts it or under
// $ZOOKEEPER_HOME, with a java from $JAVA_HOME, ZooKeeper's environment
// file, PATH or /usr/lib/jvm; dumpcap) — a system with something missing is
// skipped, with the apt-get command that installs it, and nothing is ever
// installed —, start the servers with data directories under a fresh temp
// directory, wait for a leader, start dumpcap on the loopback interface
// filtered to the servers' ports, write a set of random values of known
// sizes with the system's Go client (go.etcd.io/etcd/client/v3 or
// github.com/go-zookeeper/zk) to the leader, record which process owns which
// socket (/proc/<pid>/fd and /proc/net/tcp) and each server's I/O counters
// (/proc/<pid>/io) around the workload, stop the capture and run dupscope
// over it with the values as known payloads.
//
// Every endpoint in the capture is named after its owner (etcd-1, zk-2,
// client) and its port's role (client, peer, quorum, election), so the
// report can say which traffic carries the repeats: client → leader,
// leader → follower appends, follower → leader forwards.
//
// Cleanup is unconditional: servers are started in their own process group
// with a parent-death signal, stopped with SIGTERM then SIGKILL, and the temp
// directory is removed, on success, on error and on context cancellation
// (Ctrl-C). Traffic stays on 127.0.0.0/8.
package realsys
