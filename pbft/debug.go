package pbft

import "fmt"

// DebugString summarizes the replica's state, for tests and traces.
func (nd *Node) DebugString() string {
	s := fmt.Sprintf("%v view=%d changing=%v target=%d lastExec=%d low=%d next=%d timer=%v queue=%d", nd.self, nd.view, nd.changing, nd.target, nd.lastExec, nd.low, nd.nextSeq, nd.timer, len(nd.queue))
	for c := range nd.clients {
		rec := &nd.clients[c]
		for _, r := range rec.slots {
			if r.state == reqPending {
				s += fmt.Sprintf(" pending[c%d ts%d assigned=%d relayed=%d checked=%v base=%d]", c, r.ts, r.assigned, r.relayed, r.checked, rec.base)
			}
		}
	}
	for _, seq := range nd.sortedSlots() {
		sl := nd.slots[seq]
		if seq > nd.lastExec {
			s += fmt.Sprintf("\n   slot %d view=%d digest=%v acc=%v parked=%v prep=%v commit=%v enc=%v entries=%d", seq, sl.view, sl.digest, sl.accepted, sl.parked, sl.prepared, sl.commit, sl.enc != nil, len(sl.entries))
			for _, e := range sl.entries {
				s += fmt.Sprintf(" [c%d ts%d %v has=%v]", e.Client, e.Timestamp, e.Op, nd.store.Has(e.Op))
			}
			if sl.cert != nil {
				s += fmt.Sprintf(" cert(view %d %v)", sl.cert.View, sl.cert.Digest)
			}
		}
	}
	for i, rs := range nd.vcs {
		for _, r := range rs {
			s += fmt.Sprintf("\n   vc from n%d view %d digest %v stable %d certs %d", i, r.view, r.digest, r.content.StableSeq, len(r.content.Prepared))
		}
	}
	if nv := nd.newView; nv != nil {
		s += fmt.Sprintf("\n   newView view %d done %v refs %d", nv.view, nv.done, len(nv.refs))
	}
	for d := range nd.wanted {
		s += fmt.Sprintf("\n   wanted %v has=%v", d, nd.store.Has(d))
	}
	return s
}
