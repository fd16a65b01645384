package netio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lni/goutils/syncutil"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/bufpool"
)

// Flusher is implemented by transports that queue what Send hands them
// (the reliable link): Flush pushes it to the wire. The runner flushes once
// per batch of work, so that one system call carries many messages.
type Flusher interface {
	Flush() error
}

// Congestion is implemented by transports that can say when they hold
// more than they can send soon (the reliable link's queues): the runner
// takes no new submissions while Congested is true.
type Congestion interface {
	Congested() bool
}

// RunnerConfig configures a Runner.
type RunnerConfig struct {
	// Self is this node; N the number of nodes.
	Self broadcast.NodeID
	N    int
	// Protocol is the instance the runner drives. The runner's loop
	// goroutine is its only caller from Start to the end of Stop.
	Protocol broadcast.Protocol
	// Transport moves the messages. The runner does not close it.
	Transport Transport
	// Auth authenticates what the node sends and verifies what it receives.
	// Required; broadcast.NoAuth is refused unless AllowNoAuth is set.
	Auth broadcast.Authenticator
	// AllowNoAuth permits broadcast.NoAuth, for in-process transports whose
	// links are authentic by construction (mem). Never on a network.
	AllowNoAuth bool
	// Metrics receives the node's counters (default: a fresh one).
	Metrics *broadcast.Metrics
	// OnDeliver is called on the loop goroutine for each delivery, in
	// order. It takes the delivery's payload reference. When nil, payloads
	// are released.
	OnDeliver func(broadcast.Delivery)
	// Origin names the node a delivered instance came from, for the
	// remote-delivery figure (default Instance.Origin).
	Origin func(broadcast.Instance) broadcast.NodeID
	// RecvBuffer is the number of verified messages waiting for the loop
	// (default 1024).
	RecvBuffer int
	// Verifiers is the number of goroutines that check senders and verify
	// authenticators, off the protocol loop (default 1).
	Verifiers int
	// Logger receives the runner's logs (default slog.Default()).
	Logger *slog.Logger
	// Epoch is the origin of the protocol's clock: Tick(now) passes the
	// time since Epoch. Nodes whose protocol runs in synchronous rounds
	// (Dolev–Strong) must share it so that their rounds line up; across
	// hosts, a wall-clock epoch (the Unix epoch) with synchronized clocks
	// does. Zero: the runner's start. The clock the protocol sees never
	// goes backwards, even if the wall clock does.
	Epoch time.Time
}

// RunnerStats count what the runner did beyond broadcast.Metrics.
type RunnerStats struct {
	// Received counts messages taken from the transport; Stepped those
	// that passed verification and went to the protocol.
	Received, Stepped uint64
	// SenderMismatch counts messages whose header sender is not the node
	// the link got them from; AuthFailures those whose authenticator did
	// not verify; StepErrors those the protocol rejected.
	SenderMismatch, AuthFailures, StepErrors uint64
	// Sent counts messages handed to the transport (once per destination);
	// SendErrors the ones it refused (a full queue to a silent peer).
	Sent, SendErrors uint64
	// Submitted counts application payloads handed to the protocol.
	Submitted, SubmitErrors uint64
	// Delivered counts deliveries.
	Delivered uint64
	// Ticks counts protocol ticks.
	Ticks uint64
	// Congested counts the turns on which submissions waited for the
	// transport's queues to drain.
	Congested uint64
}

// Runner drives one broadcast.Protocol over a Transport with a real clock.
//
// Goroutines: verifiers take messages from the transport, check that the
// header's sender is the node the transport got the message from, verify
// the authenticator over broadcast.SigningDigest (rejecting and counting
// what fails), and pass the message on; one loop goroutine owns the
// protocol: it steps each verified message, ticks the protocol when the
// clock passes the NextWake it asked for, takes the application's
// submissions, and carries out Ready — stamping Sender, authenticating
// (once, or per recipient for MACs), fanning Everyone out to every other
// node, releasing the payload references it was handed, and passing
// deliveries to OnDeliver.
//
// Shutdown: Stop (or the end of Run's context) stops the goroutines
// (syncutil.Stopper) and releases every reference the runner holds.
type Runner struct {
	cfg        RunnerConfig
	log        *slog.Logger
	metrics    *broadcast.Metrics
	flusher    Flusher
	congestion Congestion

	recvC    chan Inbound
	submitC  chan bufpool.Buf
	stopper  *syncutil.Stopper
	ctx      context.Context
	cancel   context.CancelFunc
	start    time.Time
	started  atomic.Bool
	stopOnce sync.Once
	stopped  chan struct{}

	// Loop goroutine scratch: the message being stepped, the signing
	// digest being authenticated (fields, so that they do not escape per
	// message).
	cur     Inbound
	sd      broadcast.Digest
	authBuf []byte

	received, stepped, senderMismatch, authFailures, stepErrors atomic.Uint64
	sent, sendErrors, submitted, submitErrors, delivered, ticks atomic.Uint64
	congested                                                   atomic.Uint64
}

// NewRunner validates cfg and builds a runner; Start runs it.
func NewRunner(cfg RunnerConfig) (*Runner, error) {
	switch {
	case cfg.Protocol == nil:
		return nil, errors.New("netio: RunnerConfig.Protocol is required")
	case cfg.Transport == nil:
		return nil, errors.New("netio: RunnerConfig.Transport is required")
	case cfg.Auth == nil:
		return nil, errors.New("netio: RunnerConfig.Auth is required")
	case cfg.Auth.Scheme() == broadcast.SchemeNone && !cfg.AllowNoAuth:
		return nil, errors.New("netio: RunnerConfig.Auth is NoAuth, which authenticates nothing: refused on a real transport")
	case cfg.N <= 0 || int(cfg.Self) >= cfg.N:
		return nil, fmt.Errorf("netio: RunnerConfig.Self %d outside a cluster of N = %d", cfg.Self, cfg.N)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = &broadcast.Metrics{}
	}
	if cfg.RecvBuffer <= 0 {
		cfg.RecvBuffer = 1024
	}
	if cfg.Verifiers <= 0 {
		cfg.Verifiers = 1
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Origin == nil {
		cfg.Origin = func(i broadcast.Instance) broadcast.NodeID { return i.Origin }
	}
	r := &Runner{cfg: cfg, metrics: cfg.Metrics, log: cfg.Logger.With("node", cfg.Self),
		recvC: make(chan Inbound, cfg.RecvBuffer), submitC: make(chan bufpool.Buf, 64),
		stopper: syncutil.NewStopper(), stopped: make(chan struct{})}
	r.flusher, _ = cfg.Transport.(Flusher)
	r.congestion, _ = cfg.Transport.(Congestion)
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r, nil
}

// Metrics returns the node's application-level counters.
func (r *Runner) Metrics() *broadcast.Metrics { return r.metrics }

// Stats returns the runner's counters.
func (r *Runner) Stats() RunnerStats {
	return RunnerStats{Received: r.received.Load(), Stepped: r.stepped.Load(),
		SenderMismatch: r.senderMismatch.Load(), AuthFailures: r.authFailures.Load(), StepErrors: r.stepErrors.Load(),
		Sent: r.sent.Load(), SendErrors: r.sendErrors.Load(), Submitted: r.submitted.Load(),
		SubmitErrors: r.submitErrors.Load(), Delivered: r.delivered.Load(), Ticks: r.ticks.Load(),
		Congested: r.congested.Load()}
}

// Start launches the runner's goroutines.
func (r *Runner) Start() {
	if r.started.Swap(true) {
		return
	}
	r.start = r.cfg.Epoch
	if r.start.IsZero() {
		r.start = time.Now()
	}
	for range r.cfg.Verifiers {
		r.stopper.RunWorker(r.verifyLoop)
	}
	r.stopper.RunWorker(r.loop)
}

// Run starts the runner and blocks until ctx ends, then stops it.
func (r *Runner) Run(ctx context.Context) error {
	r.Start()
	select {
	case <-ctx.Done():
	case <-r.stopped:
	}
	r.Stop()
	return nil
}

// Stop stops the goroutines and waits for them, releasing every message
// and submission still queued. It is safe to call more than once.
func (r *Runner) Stop() {
	r.stopOnce.Do(func() {
		r.cancel()
		close(r.stopped)
		r.stopper.Stop()
		for {
			select {
			case in := <-r.recvC:
				in.Release()
				continue
			case p := <-r.submitC:
				p.Release()
				continue
			default:
			}
			break
		}
	})
}

// Submit hands the protocol one application payload. It takes p's
// reference, also on error. It blocks while the loop is busy, until ctx
// ends or the runner stops.
func (r *Runner) Submit(ctx context.Context, p bufpool.Buf) error {
	select {
	case <-r.stopped:
		p.Release()
		return ErrClosed
	default:
	}
	select {
	case r.submitC <- p:
		return nil
	case <-ctx.Done():
		p.Release()
		return ctx.Err()
	case <-r.stopped:
		p.Release()
		return ErrClosed
	}
}

// verifyLoop takes messages from the transport, checks and verifies them.
func (r *Runner) verifyLoop() {
	var sd broadcast.Digest // one per goroutine: it escapes into Verify
	for {
		in, err := r.cfg.Transport.Recv(r.ctx)
		if err != nil {
			if r.ctx.Err() != nil || errors.Is(err, ErrClosed) {
				return
			}
			r.log.Warn("transport receive failed", "err", err)
			select {
			case <-time.After(10 * time.Millisecond):
				continue
			case <-r.ctx.Done():
				return
			}
		}
		r.received.Add(1)
		r.metrics.CountReceived(&in.Msg)
		if err := r.verify(&in, &sd); err != nil {
			r.metrics.Rejects.Count(err)
			r.log.Debug("message rejected", "from", in.From, "err", err)
			in.Release()
			continue
		}
		select {
		case r.recvC <- in:
		case <-r.ctx.Done():
			in.Release()
			return
		}
	}
}

// verify checks that the message's sender is the node it came from and
// that its authenticator holds.
func (r *Runner) verify(in *Inbound, sd *broadcast.Digest) error {
	m := &in.Msg
	if in.From != m.Sender || int(m.Sender) >= r.cfg.N {
		r.senderMismatch.Add(1)
		return broadcast.Reject(broadcast.ReasonSender, "message from %v claims sender %v", in.From, m.Sender)
	}
	*sd = broadcast.SigningDigest(&m.Header, m.Body)
	if err := r.cfg.Auth.Verify(m.Sender, sd, m.Auth); err != nil {
		r.authFailures.Add(1)
		return fmt.Errorf("message from %v: %w", in.From, err)
	}
	return nil
}

// loop owns the protocol.
func (r *Runner) loop() {
	p := r.cfg.Protocol
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var wake, lastTick time.Duration
	// While the transport is congested, submissions wait; a short timer
	// looks again.
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer func() {
		retry.Stop()
		timer.Stop()
		rd := p.Ready()
		rd.Release()
	}()
	for {
		submitC := r.submitC
		if r.congestion != nil && len(submitC) > 0 && r.congestion.Congested() {
			submitC = nil
			r.congested.Add(1)
			retry.Reset(time.Millisecond)
		}
		select {
		case <-r.ctx.Done():
			return
		case <-retry.C:
		case in := <-r.recvC:
			r.step(in)
			// Take what else is waiting, then act once for the batch.
			for k := 0; k < 64; k++ {
				select {
				case in := <-r.recvC:
					r.step(in)
					continue
				default:
				}
				break
			}
		case b := <-submitC:
			r.submitted.Add(1)
			if err := p.Submit(b); err != nil {
				r.submitErrors.Add(1)
				r.log.Warn("submit refused", "err", err)
			}
		case <-timer.C:
			wake = 0
		}
		// Tick on every turn: the protocol's clock follows real time, and a
		// timeout it asked for fires no later than the timer below.
		r.ticks.Add(1)
		now := max(time.Since(r.start), lastTick)
		lastTick = now
		p.Tick(now)
		rd := p.Ready()
		r.carryOut(&rd)
		if rd.NextWake > 0 && rd.NextWake != wake {
			wake = rd.NextWake
			timer.Reset(max(wake-time.Since(r.start), 0))
		}
	}
}

// step hands one verified message to the protocol and releases it.
func (r *Runner) step(in Inbound) {
	r.stepped.Add(1)
	// The message is handed over from a field, not the argument: a pointer
	// into the argument would move every Inbound to the heap.
	r.cur = in
	m := &r.cur.Msg
	if err := r.cfg.Protocol.Step(r.cur.From, m); err != nil {
		r.stepErrors.Add(1)
		r.metrics.Rejects.Count(err)
		r.log.Debug("step rejected a message", "from", r.cur.From, "type", m.Type, "err", err)
	}
	r.cur.Release()
	r.cur = Inbound{}
}

// carryOut sends rd's messages and hands out its deliveries.
func (r *Runner) carryOut(rd *broadcast.Ready) {
	for i := range rd.Messages {
		ob := &rd.Messages[i]
		r.send(ob)
		ob.Msg.Payload.Release()
		ob.Msg.Payload = bufpool.Buf{}
	}
	if len(rd.Messages) > 0 && r.flusher != nil {
		if err := r.flusher.Flush(); err != nil {
			r.log.Debug("flush failed", "err", err)
		}
	}
	for i := range rd.Deliveries {
		d := rd.Deliveries[i]
		r.delivered.Add(1)
		r.metrics.CountDelivery(d.Payload.Len(), r.cfg.Origin(d.Instance) != r.cfg.Self)
		if r.cfg.OnDeliver != nil {
			r.cfg.OnDeliver(d)
		} else {
			d.Payload.Release()
		}
	}
}

// send authenticates one outbound message and sends it to its
// destination(s). It borrows ob.
func (r *Runner) send(ob *broadcast.Outbound) {
	m := &ob.Msg
	m.Sender = r.cfg.Self
	m.BodyLen = uint16(len(m.Body))
	r.sd = broadcast.SigningDigest(&m.Header, m.Body)
	if !r.cfg.Auth.PerRecipient() {
		r.authBuf = r.cfg.Auth.Authenticate(r.authBuf[:0], ob.To, &r.sd)
		m.Auth = r.authBuf
	}
	if ob.To != broadcast.Everyone {
		if ob.To == r.cfg.Self || int(ob.To) >= r.cfg.N {
			r.log.Warn("protocol addressed a message to itself or outside the cluster", "to", ob.To, "type", m.Type)
			return
		}
		r.sendTo(ob.To, m)
		return
	}
	for j := range r.cfg.N {
		if broadcast.NodeID(j) != r.cfg.Self {
			r.sendTo(broadcast.NodeID(j), m)
		}
	}
}

// sendTo sends m, whose signing digest is r.sd, to one node.
func (r *Runner) sendTo(dst broadcast.NodeID, m *broadcast.Message) {
	if r.cfg.Auth.PerRecipient() {
		r.authBuf = r.cfg.Auth.Authenticate(r.authBuf[:0], dst, &r.sd)
		m.Auth = r.authBuf
	}
	if err := r.cfg.Transport.Send(dst, m); err != nil {
		r.sendErrors.Add(1)
		r.log.Debug("send failed", "to", dst, "type", m.Type, "err", err)
		return
	}
	r.sent.Add(1)
	r.metrics.CountSent(m)
}
