package kv

import (
	"bytes"
	"strconv"
)

// Limits of the memcached text protocol, as memcached 1.6 applies them.
const (
	// MaxKeyLen is the longest key memcached accepts (KEY_MAX_LENGTH).
	MaxKeyLen = 250
	// DefaultMaxItemSize is memcached's default item size limit (-I 1m).
	DefaultMaxItemSize = 1 << 20
	// ItemOverhead is what memcached counts on top of key and value when it
	// checks an item against the item size limit (item header, suffix, CAS
	// and the trailing CRLF), so that the same sets fail here as there.
	ItemOverhead = 56
	// MaxLineLen is the longest command line accepted before the connection
	// is closed without a reply, except for get/gets whose key lists may be
	// longer: memcached 1.6 reads a command into a 16 KiB buffer and closes
	// the connection on a longer line that is not a retrieval.
	MaxLineLen = 16384
	// MaxGetLineLen bounds a get/gets line.
	MaxGetLineLen = 64 << 10
	// RelativeExptimeMax is the largest exptime taken as relative (30 days);
	// larger values are absolute unix times.
	RelativeExptimeMax = 60 * 60 * 24 * 30
)

// Kind is a memcached command.
type Kind uint8

// The commands of the text protocol this package serves.
const (
	KindInvalid Kind = iota
	KindGet
	KindGets
	KindSet
	KindAdd
	KindReplace
	KindAppend
	KindPrepend
	KindCas
	KindDelete
	KindIncr
	KindDecr
	KindTouch
	KindFlushAll
	KindVersion
	KindStats
	KindVerbosity
	KindQuit
	// KindOp is onecast's extension for BFT clients: "op <bytes>" followed
	// by an encoded op (see Stamp); the reply is "RESULT <bytes>" and the
	// state machine's reply bytes.
	KindOp
	kindCount
)

var kindNames = [...]string{"invalid", "get", "gets", "set", "add", "replace", "append", "prepend",
	"cas", "delete", "incr", "decr", "touch", "flush_all", "version", "stats", "verbosity", "quit", "op"}

// String returns the command word.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// IsStorage reports whether k carries a data block.
func (k Kind) IsStorage() bool { return k >= KindSet && k <= KindCas }

// IsRead reports whether k only reads the store.
func (k Kind) IsRead() bool { return k == KindGet || k == KindGets }

// Replicated reports whether k is executed by the replicated state machine
// (the others — version, stats, verbosity, quit — are answered locally).
func (k Kind) Replicated() bool { return k >= KindGet && k <= KindFlushAll }

// Command is one parsed command line. Keys alias the line it was parsed
// from; the data block of a storage command is read separately (ValueLen
// bytes plus CRLF).
type Command struct {
	Kind    Kind
	Keys    [][]byte // get/gets: every key; others: one key
	Flags   uint32
	Exptime int64 // as sent: 0 never, <0 expired, ≤30 days relative, else absolute
	Cas     uint64
	Delta   uint64
	// ValueLen is the data block's length for storage commands.
	ValueLen int
	Noreply  bool
	// Delay is flush_all's optional delay (an exptime).
	Delay int64
	// Args holds the arguments of stats and verbosity.
	Args [][]byte
}

// Key returns the command's (first) key.
func (c *Command) Key() []byte {
	if len(c.Keys) == 0 {
		return nil
	}
	return c.Keys[0]
}

// Reply texts, worded exactly as memcached words them.
const (
	ReplyError          = "ERROR\r\n"
	ReplyBadFormat      = "CLIENT_ERROR bad command line format\r\n"
	ReplyBadChunk       = "CLIENT_ERROR bad data chunk\r\n"
	ReplyTooLarge       = "SERVER_ERROR object too large for cache\r\n"
	ReplyBadDelta       = "CLIENT_ERROR invalid numeric delta argument\r\n"
	ReplyNonNumeric     = "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
	ReplyDeleteUsage    = "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
	ReplyStored         = "STORED\r\n"
	ReplyNotStored      = "NOT_STORED\r\n"
	ReplyExists         = "EXISTS\r\n"
	ReplyNotFound       = "NOT_FOUND\r\n"
	ReplyDeleted        = "DELETED\r\n"
	ReplyTouched        = "TOUCHED\r\n"
	ReplyOK             = "OK\r\n"
	ReplyEnd            = "END\r\n"
	ReplyReset          = "RESET\r\n"
	ReplyBadOp          = "SERVER_ERROR malformed operation\r\n"
	ReplyUnavailable    = "SERVER_ERROR replication unavailable\r\n"
	Version             = "1.6.38-onecast"
	replyVersionLine    = "VERSION " + Version + "\r\n"
	maxTokens           = 24 // memcached's MAX_TOKENS: a get line is read in pieces of 24
	maxIncrValueDigits  = 20
	maxStatsArgs        = 2
	replyVerbosityUsage = ReplyError
)

// ParseError is a command line memcached refuses. Reply is the exact line
// memcached answers; Swallow is the number of bytes (the data block and its
// CRLF) that follow the line and must be read and discarded; Close says
// memcached closes the connection instead of answering.
type ParseError struct {
	Reply   string
	Swallow int
	Close   bool
	// Noreply is set when the line asked for noreply: memcached then
	// suppresses the error reply too.
	Noreply bool
}

// Error returns the reply text without its CRLF.
func (e *ParseError) Error() string {
	return "kv: memcached command refused: " + string(bytes.TrimRight([]byte(e.Reply), "\r\n"))
}

func refuse(reply string) *ParseError { return &ParseError{Reply: reply} }

// ParseCommand parses one command line (without its CRLF or LF) with the
// item size limit maxItem. It never panics on any input; a refused line is
// a *ParseError carrying memcached's answer. The returned Command's keys and
// arguments alias line.
func ParseCommand(line []byte, maxItem int) (Command, *ParseError) {
	var tokBuf [maxTokens + 1][]byte
	toks := tokenize(line, tokBuf[:0], maxTokens+1)
	var c Command
	if len(toks) == 0 {
		return c, refuse(ReplyError)
	}
	switch string(toks[0]) {
	case "get", "gets":
		return ParseRetrievalLine(line)
	case "set":
		return parseStorage(KindSet, toks, maxItem)
	case "add":
		return parseStorage(KindAdd, toks, maxItem)
	case "replace":
		return parseStorage(KindReplace, toks, maxItem)
	case "append":
		return parseStorage(KindAppend, toks, maxItem)
	case "prepend":
		return parseStorage(KindPrepend, toks, maxItem)
	case "cas":
		return parseStorage(KindCas, toks, maxItem)
	case "delete":
		return parseDelete(toks)
	case "incr":
		return parseArith(KindIncr, toks)
	case "decr":
		return parseArith(KindDecr, toks)
	case "touch":
		return parseTouch(toks)
	case "flush_all":
		return parseFlush(toks)
	case "version":
		if len(toks) != 1 {
			return c, refuse(ReplyError)
		}
		return Command{Kind: KindVersion}, nil
	case "stats":
		if len(toks) > 1+maxStatsArgs {
			return c, refuse(ReplyError)
		}
		return Command{Kind: KindStats, Args: append([][]byte(nil), toks[1:]...)}, nil
	case "verbosity":
		if len(toks) < 2 || len(toks) > 3 {
			return c, refuse(replyVerbosityUsage)
		}
		c = Command{Kind: KindVerbosity, Args: [][]byte{toks[1]}}
		c.Noreply = len(toks) == 3 && string(toks[2]) == "noreply"
		return c, nil
	case "quit":
		return Command{Kind: KindQuit}, nil
	case "op":
		if len(toks) != 2 {
			return c, refuse(ReplyError)
		}
		n, ok := parseInt(toks[1])
		if !ok || n < opHeaderLen || n > int64(maxItem)+maxOpKeys*(1+MaxKeyLen)+opHeaderLen {
			return c, refuse(ReplyBadFormat)
		}
		return Command{Kind: KindOp, ValueLen: int(n)}, nil
	}
	return c, refuse(ReplyError)
}

// tokenize splits on spaces as memcached does (only ' ' separates; runs of
// spaces are one separator). At most maxTokens+1 tokens are returned: a
// longer line gives maxTokens+1 tokens, which every command but get/gets
// rejects; get/gets re-tokenize their whole line themselves.
func tokenize(line []byte, dst [][]byte, limit int) [][]byte {
	for len(line) > 0 {
		for len(line) > 0 && line[0] == ' ' {
			line = line[1:]
		}
		if len(line) == 0 {
			break
		}
		i := bytes.IndexByte(line, ' ')
		if i < 0 {
			i = len(line)
		}
		if len(dst) == limit {
			return dst
		}
		dst = append(dst, line[:i])
		line = line[i:]
	}
	return dst
}

// validKey reports whether k is a key memcached stores: 1 to 250 bytes.
// The text protocol cannot carry a space or a newline in a key; memcached
// accepts any other byte, control characters included (the brief asked to
// refuse them, real memcached 1.6 does not — TestRepliesMatchRealMemcached).
func validKey(k []byte) bool {
	return len(k) > 0 && len(k) <= MaxKeyLen
}

func noreplyToken(toks [][]byte, at int) bool {
	return len(toks) > at && string(toks[at]) == "noreply"
}

// ParseRetrievalLine parses a get/gets line of any length: memcached reads
// such a line in pieces, so its key count is bounded only by the line limit.
func ParseRetrievalLine(line []byte) (Command, *ParseError) {
	toks := tokenize(line, nil, len(line))
	if len(toks) == 0 {
		return Command{}, refuse(ReplyError)
	}
	var kind Kind
	switch string(toks[0]) {
	case "get":
		kind = KindGet
	case "gets":
		kind = KindGets
	default:
		return Command{}, refuse(ReplyError)
	}
	if len(toks) < 2 {
		return Command{}, refuse(ReplyError)
	}
	for _, k := range toks[1:] {
		if !validKey(k) {
			return Command{}, refuse(ReplyBadFormat)
		}
	}
	return Command{Kind: kind, Keys: toks[1:]}, nil
}

func parseStorage(kind Kind, toks [][]byte, maxItem int) (Command, *ParseError) {
	// <cmd> <key> <flags> <exptime> <bytes> [noreply]
	// cas   <key> <flags> <exptime> <bytes> <cas unique> [noreply]
	want := 5
	if kind == KindCas {
		want = 6
	}
	if len(toks) != want && len(toks) != want+1 {
		return Command{}, refuse(ReplyError)
	}
	c := Command{Kind: kind, Keys: [][]byte{toks[1]}, Noreply: noreplyToken(toks, want)}
	bad := &ParseError{Reply: ReplyBadFormat, Noreply: c.Noreply}
	if len(toks[1]) > MaxKeyLen || !validKey(toks[1]) {
		return Command{}, bad
	}
	flags, ok1 := parseUint(toks[2])
	exp, ok2 := parseInt(toks[3])
	vlen, ok3 := parseInt(toks[4])
	// memcached parses flags with strtoul and keeps the low 32 bits: a
	// larger value is accepted and truncated, as there.
	if !ok1 || !ok2 || !ok3 {
		return Command{}, bad
	}
	if kind == KindCas {
		cas, ok := parseUint(toks[5])
		if !ok {
			return Command{}, bad
		}
		c.Cas = cas
	}
	if vlen < 0 || vlen > 1<<31-2 {
		return Command{}, bad
	}
	c.Flags, c.Exptime, c.ValueLen = uint32(flags), exp, int(vlen)
	if len(toks[1])+c.ValueLen+ItemOverhead > maxItem {
		return Command{}, &ParseError{Reply: ReplyTooLarge, Swallow: c.ValueLen + 2, Noreply: c.Noreply}
	}
	return c, nil
}

func parseDelete(toks [][]byte) (Command, *ParseError) {
	// delete <key> [0] [noreply]
	if len(toks) < 2 || len(toks) > 4 {
		return Command{}, refuse(ReplyError)
	}
	c := Command{Kind: KindDelete, Keys: [][]byte{toks[1]}}
	if !validKey(toks[1]) {
		return Command{}, refuse(ReplyBadFormat)
	}
	rest := toks[2:]
	if len(rest) > 0 && string(rest[len(rest)-1]) == "noreply" {
		c.Noreply = true
		rest = rest[:len(rest)-1]
	}
	if len(rest) > 1 || (len(rest) == 1 && string(rest[0]) != "0") {
		return Command{}, &ParseError{Reply: ReplyDeleteUsage, Noreply: c.Noreply}
	}
	return c, nil
}

func parseArith(kind Kind, toks [][]byte) (Command, *ParseError) {
	// incr|decr <key> <value> [noreply]
	if len(toks) != 3 && len(toks) != 4 {
		return Command{}, refuse(ReplyError)
	}
	c := Command{Kind: kind, Keys: [][]byte{toks[1]}, Noreply: noreplyToken(toks, 3)}
	if !validKey(toks[1]) {
		return Command{}, &ParseError{Reply: ReplyBadFormat, Noreply: c.Noreply}
	}
	d, ok := parseUint(toks[2])
	if !ok {
		return Command{}, &ParseError{Reply: ReplyBadDelta, Noreply: c.Noreply}
	}
	c.Delta = d
	return c, nil
}

func parseTouch(toks [][]byte) (Command, *ParseError) {
	// touch <key> <exptime> [noreply]
	if len(toks) != 3 && len(toks) != 4 {
		return Command{}, refuse(ReplyError)
	}
	c := Command{Kind: KindTouch, Keys: [][]byte{toks[1]}, Noreply: noreplyToken(toks, 3)}
	if !validKey(toks[1]) {
		return Command{}, &ParseError{Reply: ReplyBadFormat, Noreply: c.Noreply}
	}
	exp, ok := parseInt(toks[2])
	if !ok {
		return Command{}, &ParseError{Reply: "CLIENT_ERROR invalid exptime argument\r\n", Noreply: c.Noreply}
	}
	c.Exptime = exp
	return c, nil
}

func parseFlush(toks [][]byte) (Command, *ParseError) {
	// flush_all [delay] [noreply]
	if len(toks) > 3 {
		return Command{}, refuse(ReplyError)
	}
	c := Command{Kind: KindFlushAll}
	rest := toks[1:]
	if len(rest) > 0 && string(rest[len(rest)-1]) == "noreply" {
		c.Noreply = true
		rest = rest[:len(rest)-1]
	}
	if len(rest) == 1 {
		d, ok := parseInt(rest[0])
		if !ok {
			return Command{}, &ParseError{Reply: ReplyBadFormat, Noreply: c.Noreply}
		}
		c.Delay = d
	} else if len(rest) > 1 {
		return Command{}, refuse(ReplyError)
	}
	return c, nil
}

// parseUint parses a decimal uint64 as strtoull would for memcached's
// safe_strtoull: digits only (no sign), no overflow.
func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b), 10, 64)
	return v, err == nil
}

// parseInt parses a decimal int64 with an optional sign.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 21 {
		return 0, false
	}
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || v < -1<<62 || v > 1<<62 {
		return 0, false
	}
	return v, true
}
