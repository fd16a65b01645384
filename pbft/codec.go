package pbft

import (
	"crypto/sha256"
	"encoding/binary"

	"github.com/onecast/onecast/broadcast"
)

// This file is the one place where PBFT's protocol bodies are encoded and
// decoded. Every decoder bounds-checks every length against the input and
// against the caller's limits, and returns a *broadcast.RejectError
// (ReasonBody) on anything malformed; none panics (see fuzz_test.go).

// Entry names one request inside a batch: who asked, its timestamp, and the
// digest and length of the operation's bytes. The batch digest covers the
// entries, so agreeing on a batch digest is agreeing on who asked for what.
type Entry struct {
	Client    broadcast.NodeID
	Timestamp uint64
	Op        broadcast.Digest
	Len       uint32
	// Sig is the client's authenticator of (Timestamp, Op) — its signature,
	// or its vector of one MAC per replica (Config.RequestAuth) — which lets
	// a replica that did not receive the request from the client itself (or
	// received a different one: the client equivocated) accept it from the
	// primary.
	Sig []byte
}

// minEntrySize is an entry's size without its authenticator.
const minEntrySize = 4 + 8 + 32 + 4 + 2

// maxSig bounds a signature inside a body (Ed25519: 64 bytes).
const maxSig = 128

// maxReqAuth bounds a request's authenticator in a cluster of n: a
// signature, or a vector of n MACs.
func maxReqAuth(n int) int { return max(maxSig, n*broadcast.MACSize) }

// appendReqAuth encodes a request authenticator: a 16-bit length, then it.
func appendReqAuth(dst, a []byte) []byte {
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(a)))
	return append(dst, a...)
}

func (d *decoder) reqAuth(n int, what string) []byte {
	l := int(d.u16(what))
	if l > maxReqAuth(n) {
		d.fail(what)
		return nil
	}
	return d.take(l, what)
}

// appendEntries encodes a batch: a count, then the entries.
func appendEntries(dst []byte, es []Entry) []byte {
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(es)))
	for _, e := range es {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(e.Client))
		dst = binary.LittleEndian.AppendUint64(dst, e.Timestamp)
		dst = append(dst, e.Op[:]...)
		dst = binary.LittleEndian.AppendUint32(dst, e.Len)
		dst = appendReqAuth(dst, e.Sig)
	}
	return dst
}

// batchDigest names a batch: SHA-256 of its entries' encoding, which is also
// what a replica stores and serves under that digest.
func batchDigest(enc []byte) broadcast.Digest { return sha256.Sum256(enc) }

// nullBatch is the encoding of the empty batch a new primary orders in a gap.
var nullBatch = appendEntries(nil, nil)

// decoder reads a body with bounds checks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = broadcast.Reject(broadcast.ReasonBody, "pbft: %s truncated or malformed", what)
	}
}

func (d *decoder) take(n int, what string) []byte {
	if d.err != nil || n < 0 || len(d.b) < n {
		d.fail(what)
		return nil
	}
	out := d.b[:n:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) u8(what string) uint8 {
	if p := d.take(1, what); p != nil {
		return p[0]
	}
	return 0
}
func (d *decoder) u16(what string) uint16 {
	if p := d.take(2, what); p != nil {
		return binary.LittleEndian.Uint16(p)
	}
	return 0
}
func (d *decoder) u32(what string) uint32 {
	if p := d.take(4, what); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}
func (d *decoder) u64(what string) uint64 {
	if p := d.take(8, what); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}
func (d *decoder) digest(what string) (x broadcast.Digest) {
	if p := d.take(32, what); p != nil {
		copy(x[:], p)
	}
	return x
}
func (d *decoder) sig(what string) []byte {
	n := int(d.u8(what))
	if n > maxSig {
		d.fail(what)
		return nil
	}
	return d.take(n, what)
}
func (d *decoder) node(n int, what string) broadcast.NodeID {
	v := d.u32(what)
	if d.err == nil && int(v) >= n {
		d.err = broadcast.Reject(broadcast.ReasonBody, "pbft: %s names node %d outside a cluster of %d", what, v, n)
	}
	return broadcast.NodeID(v)
}
func (d *decoder) end(what string) error {
	if d.err == nil && len(d.b) != 0 {
		d.err = broadcast.Reject(broadcast.ReasonBody, "pbft: %d trailing bytes after %s", len(d.b), what)
	}
	return d.err
}

func appendSig(dst, sig []byte) []byte {
	dst = append(dst, byte(len(sig)))
	return append(dst, sig...)
}

// decodeEntries decodes a batch encoding of at most maxBatch entries from
// clients 0 … n-1.
func decodeEntries(b []byte, n, maxBatch int) ([]Entry, error) {
	d := decoder{b: b}
	cnt := int(d.u16("batch count"))
	if d.err == nil && (cnt > maxBatch || cnt*minEntrySize > len(d.b)) {
		return nil, broadcast.Reject(broadcast.ReasonBody, "pbft: batch of %d entries in %d bytes (max %d)", cnt, len(d.b), maxBatch)
	}
	es := make([]Entry, cnt)
	for i := range es {
		es[i].Client = d.node(n, "batch entry client")
		es[i].Timestamp = d.u64("batch entry timestamp")
		es[i].Op = d.digest("batch entry digest")
		es[i].Len = d.u32("batch entry length")
		es[i].Sig = d.reqAuth(n, "batch entry authenticator")
	}
	if err := d.end("batch"); err != nil {
		return nil, err
	}
	return es, nil
}

// prePrepareBody is the body of a PRE-PREPARE: the primary's signature over
// (view, seq, batch digest) and the batch's entries.
func appendPrePrepareBody(dst, sig, entries []byte) []byte {
	dst = appendSig(dst, sig)
	return append(dst, entries...)
}

func decodePrePrepareBody(b []byte) (sig, entries []byte, err error) {
	d := decoder{b: b}
	sig = d.sig("pre-prepare signature")
	if d.err != nil {
		return nil, nil, d.err
	}
	return sig, d.b, nil
}

// requestBodyHeader is a REQUEST body's size before its authenticator.
const requestBodyHeader = 4 + 1 + 2

// requestFlagRetransmit marks a client's retransmission: replicas that
// already executed the request resend their reply with the result.
const requestFlagRetransmit = 1

// appendRequestBody encodes a REQUEST body: the client, flags and the
// client's authenticator of (timestamp, op digest).
func appendRequestBody(dst []byte, client broadcast.NodeID, flags uint8, sig []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(client))
	dst = append(dst, flags)
	return appendReqAuth(dst, sig)
}

func decodeRequestBody(b []byte, n int) (broadcast.NodeID, uint8, []byte, error) {
	d := decoder{b: b}
	c := d.node(n, "request client")
	fl := d.u8("request flags")
	sig := d.reqAuth(n, "request authenticator")
	return c, fl, sig, d.end("request")
}

// decodeSigBody decodes a body that is one signature (PREPARE, CHECKPOINT,
// VIEW-CHANGE, NEW-VIEW).
func decodeSigBody(b []byte) ([]byte, error) {
	if len(b) == 0 {
		return nil, nil // COMMIT, or an unsigned deployment
	}
	d := decoder{b: b}
	s := d.sig("signature")
	return s, d.end("signature body")
}

// Statement kinds: what a body signature is over.
const (
	stmtPrePrepare byte = 1
	stmtPrepare    byte = 2
	stmtCheckpoint byte = 3
	stmtViewChange byte = 4
	stmtNewView    byte = 5
	stmtRequest    byte = 6
)

// statement is the digest a certificate signature covers: a domain tag, the
// kind, view, sequence number and digest.
func statement(kind byte, view uint32, seq uint64, d broadcast.Digest) broadcast.Digest {
	var buf [16 + 1 + 4 + 8 + 32]byte
	copy(buf[:], "onecast/pbft/v1\x00")
	buf[16] = kind
	binary.LittleEndian.PutUint32(buf[17:], view)
	binary.LittleEndian.PutUint64(buf[21:], seq)
	copy(buf[29:], d[:])
	return sha256.Sum256(buf[:])
}

// SignedVote is one replica's signature in a certificate.
type SignedVote struct {
	Node broadcast.NodeID
	Sig  []byte
}

// PreparedCert proves that a batch prepared at seq in view: the primary's
// signed PRE-PREPARE and 2f signed PREPAREs, all over the batch digest.
type PreparedCert struct {
	Seq      uint64
	View     uint32
	Digest   broadcast.Digest
	PPSig    []byte
	Prepares []SignedVote
}

// ViewChange is the content of a VIEW-CHANGE message: the sender's last
// stable checkpoint with its proof, and a certificate for every batch that
// prepared at it above that checkpoint. It names batches by digest only.
type ViewChange struct {
	NewView      uint32
	StableSeq    uint64
	StableDigest broadcast.Digest
	StableProof  []SignedVote
	Prepared     []PreparedCert
}

func appendVotes(dst []byte, vs []SignedVote) []byte {
	dst = append(dst, byte(len(vs)))
	for _, v := range vs {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(v.Node))
		dst = appendSig(dst, v.Sig)
	}
	return dst
}

func (d *decoder) votes(n int, what string) []SignedVote {
	cnt := int(d.u8(what))
	if d.err == nil && cnt > n {
		d.fail(what)
		return nil
	}
	vs := make([]SignedVote, 0, cnt)
	for range cnt {
		v := SignedVote{Node: d.node(n, what)}
		v.Sig = d.sig(what)
		if d.err != nil {
			return nil
		}
		vs = append(vs, v)
	}
	return vs
}

// appendViewChange encodes a VIEW-CHANGE's content.
func appendViewChange(dst []byte, vc *ViewChange) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, vc.NewView)
	dst = binary.LittleEndian.AppendUint64(dst, vc.StableSeq)
	dst = append(dst, vc.StableDigest[:]...)
	dst = appendVotes(dst, vc.StableProof)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(vc.Prepared)))
	for _, p := range vc.Prepared {
		dst = binary.LittleEndian.AppendUint64(dst, p.Seq)
		dst = binary.LittleEndian.AppendUint32(dst, p.View)
		dst = append(dst, p.Digest[:]...)
		dst = appendSig(dst, p.PPSig)
		dst = appendVotes(dst, p.Prepares)
	}
	return dst
}

// decodeViewChange decodes a VIEW-CHANGE's content for a cluster of n with a
// watermark window of l sequence numbers.
func decodeViewChange(b []byte, n, l int) (*ViewChange, error) {
	d := decoder{b: b}
	vc := &ViewChange{NewView: d.u32("view-change view"), StableSeq: d.u64("view-change stable seq")}
	vc.StableDigest = d.digest("view-change stable digest")
	vc.StableProof = d.votes(n, "view-change checkpoint proof")
	cnt := int(d.u16("view-change prepared count"))
	if d.err == nil && cnt > l {
		return nil, broadcast.Reject(broadcast.ReasonBody, "pbft: view change with %d prepared certificates (window %d)", cnt, l)
	}
	for range cnt {
		if d.err != nil {
			break
		}
		p := PreparedCert{Seq: d.u64("certificate seq"), View: d.u32("certificate view")}
		p.Digest = d.digest("certificate digest")
		p.PPSig = d.sig("certificate pre-prepare signature")
		p.Prepares = d.votes(n, "certificate prepares")
		vc.Prepared = append(vc.Prepared, p)
	}
	if err := d.end("view change"); err != nil {
		return nil, err
	}
	return vc, nil
}

// NewViewRef names one VIEW-CHANGE a NEW-VIEW is built on, by its sender and
// the digest of its content.
type NewViewRef struct {
	Node   broadcast.NodeID
	Digest broadcast.Digest
	// Sig is Node's signature of the VIEW-CHANGE, so that a replica that
	// fetched the content by digest can check who sent it.
	Sig []byte
}

// appendNewView encodes a NEW-VIEW's content: the view and the 2f+1
// VIEW-CHANGE messages it rests on, by digest. The batches it orders are not
// listed: every replica recomputes them from those view changes.
func appendNewView(dst []byte, view uint32, refs []NewViewRef) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, view)
	dst = append(dst, byte(len(refs)))
	for _, r := range refs {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(r.Node))
		dst = append(dst, r.Digest[:]...)
		dst = appendSig(dst, r.Sig)
	}
	return dst
}

func decodeNewView(b []byte, n int) (uint32, []NewViewRef, error) {
	d := decoder{b: b}
	v := d.u32("new-view view")
	cnt := int(d.u8("new-view count"))
	if d.err == nil && cnt > n {
		return 0, nil, broadcast.Reject(broadcast.ReasonBody, "pbft: new view names %d view changes in a cluster of %d", cnt, n)
	}
	refs := make([]NewViewRef, 0, cnt)
	for range cnt {
		r := NewViewRef{Node: d.node(n, "new-view sender")}
		r.Digest = d.digest("new-view digest")
		r.Sig = d.sig("new-view signature")
		if d.err != nil {
			break
		}
		refs = append(refs, r)
	}
	if err := d.end("new view"); err != nil {
		return 0, nil, err
	}
	return v, refs, nil
}
