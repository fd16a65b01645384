package realsys

import (
	"context"
	"net/netip"
)

// Member is one server of a cluster.
type Member struct {
	Name string
	Proc *Proc
	// Ports maps each listening address of the member to its role
	// ("client", "peer", "quorum", "election").
	Ports map[netip.AddrPort]string
}

// cluster is one real system under test.
type cluster interface {
	// start starts the servers with data under dir and waits until they
	// have a leader.
	start(ctx context.Context, dir string) error
	members() []Member
	// leader returns the index of the leader in members.
	leader(ctx context.Context) (int, error)
	// write connects a client to member `to` and writes every value.
	write(ctx context.Context, to int, values [][]byte) error
	// settle waits until every member has applied what the client wrote.
	settle(ctx context.Context)
	// closeClient closes the client's connections.
	closeClient()
	stop()
	version() string
}
