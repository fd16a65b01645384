package broadcast

import (
	"errors"
	"fmt"
	"sync/atomic"
)

// Reason classifies why a frame or message was rejected. Every rejection is
// counted under its reason (see [RejectCounters]).
type Reason uint8

// Rejection reasons.
const (
	ReasonTruncated      Reason = iota + 1 // shorter than its header says
	ReasonMagic                            // not a onecast frame
	ReasonVersion                          // a wire version this code does not speak
	ReasonProtocol                         // unknown protocol number
	ReasonType                             // a type the protocol does not know
	ReasonFlags                            // unknown or contradictory flags
	ReasonLength                           // a length field that does not fit the frame or the limits
	ReasonAuth                             // authenticator missing or wrong
	ReasonDigestMismatch                   // payload bytes do not hash to the digest
	ReasonSender                           // sender field disagrees with the link, or out of range
	ReasonBody                             // a protocol body that does not parse
	ReasonQuota                            // a sender's storage quota is used up
	numReasons
)

var reasonNames = [numReasons]string{
	ReasonTruncated:      "truncated",
	ReasonMagic:          "bad magic",
	ReasonVersion:        "bad version",
	ReasonProtocol:       "unknown protocol",
	ReasonType:           "unknown type",
	ReasonFlags:          "bad flags",
	ReasonLength:         "bad length",
	ReasonAuth:           "bad authenticator",
	ReasonDigestMismatch: "digest mismatch",
	ReasonSender:         "bad sender",
	ReasonBody:           "bad body",
	ReasonQuota:          "quota exceeded",
}

func (r Reason) String() string {
	if r > 0 && r < numReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason%d", uint8(r))
}

// Sentinel errors, one per reason, for errors.Is.
var (
	ErrTruncated      = errors.New("truncated frame")
	ErrMagic          = errors.New("bad magic")
	ErrVersion        = errors.New("unsupported version")
	ErrProtocol       = errors.New("unknown protocol")
	ErrType           = errors.New("unknown message type")
	ErrFlags          = errors.New("bad flags")
	ErrLength         = errors.New("bad length")
	ErrAuth           = errors.New("authenticator rejected")
	ErrDigestMismatch = errors.New("payload does not match digest")
	ErrSender         = errors.New("bad sender")
	ErrBody           = errors.New("bad message body")
	ErrQuota          = errors.New("sender quota exceeded")
)

var reasonErrs = [numReasons]error{
	ReasonTruncated:      ErrTruncated,
	ReasonMagic:          ErrMagic,
	ReasonVersion:        ErrVersion,
	ReasonProtocol:       ErrProtocol,
	ReasonType:           ErrType,
	ReasonFlags:          ErrFlags,
	ReasonLength:         ErrLength,
	ReasonAuth:           ErrAuth,
	ReasonDigestMismatch: ErrDigestMismatch,
	ReasonSender:         ErrSender,
	ReasonBody:           ErrBody,
	ReasonQuota:          ErrQuota,
}

// RejectError is a typed rejection of untrusted input. errors.Is matches it
// against the sentinel of its reason.
type RejectError struct {
	Reason Reason
	Detail string
}

func (e *RejectError) Error() string { return e.Reason.String() + ": " + e.Detail }

// Unwrap returns the sentinel error of the reason.
func (e *RejectError) Unwrap() error {
	if e.Reason > 0 && e.Reason < numReasons {
		return reasonErrs[e.Reason]
	}
	return nil
}

func decodeErr(r Reason, format string, args ...any) error {
	return &RejectError{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// Reject builds a RejectError; protocols use it for bodies and types they
// refuse, so that their rejections are counted like the codec's.
func Reject(r Reason, format string, args ...any) error { return decodeErr(r, format, args...) }

// ReasonOf returns the reason of a RejectError in err's chain, or 0.
func ReasonOf(err error) Reason {
	var re *RejectError
	if errors.As(err, &re) {
		return re.Reason
	}
	return 0
}

// RejectCounters counts rejected input by reason. The zero value is ready.
type RejectCounters struct {
	byReason [numReasons]atomic.Uint64
}

// Count records err if it is a RejectError (others are counted as 0) and
// returns its reason.
func (c *RejectCounters) Count(err error) Reason {
	r := ReasonOf(err)
	if r < numReasons {
		c.byReason[r].Add(1)
	}
	return r
}

// Get returns the count for one reason.
func (c *RejectCounters) Get(r Reason) uint64 {
	if r >= numReasons {
		return 0
	}
	return c.byReason[r].Load()
}

// Total returns the number of rejections of every reason.
func (c *RejectCounters) Total() uint64 {
	var t uint64
	for i := range c.byReason {
		t += c.byReason[i].Load()
	}
	return t
}

// Snapshot returns the non-zero counts by reason name.
func (c *RejectCounters) Snapshot() map[string]uint64 {
	out := map[string]uint64{}
	for i := range c.byReason {
		if v := c.byReason[i].Load(); v > 0 {
			name := Reason(i).String()
			if i == 0 {
				name = "other"
			}
			out[name] = v
		}
	}
	return out
}
