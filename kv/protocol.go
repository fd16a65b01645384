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
	// KindGat is "gat <exptime> <key>*": get and touch.
	KindGat
	// KindGats is "gats <exptime> <key>*": gets and touch.
	KindGats
	// KindMetaGet is "mg <key> <flag>*".
	KindMetaGet
	// KindMetaSet is "ms <key> <datalen> <flag>*" and a data block.
	KindMetaSet
	// KindMetaDelete is "md <key> <flag>*".
	KindMetaDelete
	// KindMetaArith is "ma <key> <flag>*".
	KindMetaArith
	// KindMetaDebug is "me <key> [b]".
	KindMetaDebug
	// KindMetaNoop is "mn": answered MN, locally.
	KindMetaNoop
	kindCount
)

// The kinds' numbers are written into ops, logs and snapshots: new kinds are
// added at the end.

var kindNames = [...]string{"invalid", "get", "gets", "set", "add", "replace", "append", "prepend",
	"cas", "delete", "incr", "decr", "touch", "flush_all", "version", "stats", "verbosity", "quit", "op",
	"gat", "gats", "mg", "ms", "md", "ma", "me", "mn"}

// String returns the command word.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// IsStorage reports whether k carries a data block.
func (k Kind) IsStorage() bool { return k >= KindSet && k <= KindCas }

// IsRead reports whether k only reads the store: get, gets and me. These
// may be answered from local state (ServerConfig.FastReads) and are not
// written to a single node's log.
func (k Kind) IsRead() bool { return k == KindGet || k == KindGets || k == KindMetaDebug }

// IsMeta reports whether k is a meta command whose op carries its flag
// tokens (mg, ms, md, ma, me).
func (k Kind) IsMeta() bool { return k >= KindMetaGet && k <= KindMetaDebug }

// Replicated reports whether k is executed by the replicated state machine
// (the others — version, stats, verbosity, quit, mn — are answered locally).
func (k Kind) Replicated() bool {
	return (k >= KindGet && k <= KindFlushAll) || (k >= KindGat && k <= KindMetaDebug)
}

// carriesValue reports whether k's op ends with a value.
func (k Kind) carriesValue() bool { return k.IsStorage() || k == KindMetaSet }

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
	// Meta holds a meta command's flag tokens, as sent (they travel in the
	// op and the state machine interprets them, see meta.go).
	Meta [][]byte
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
	ReplyError            = "ERROR\r\n"
	ReplyBadFormat        = "CLIENT_ERROR bad command line format\r\n"
	ReplyBadChunk         = "CLIENT_ERROR bad data chunk\r\n"
	ReplyTooLarge         = "SERVER_ERROR object too large for cache\r\n"
	ReplyBadDelta         = "CLIENT_ERROR invalid numeric delta argument\r\n"
	ReplyBadExptime       = "CLIENT_ERROR invalid exptime argument\r\n"
	replyShutdownDisabled = "ERROR: shutdown not enabled\r\n"
	ReplyNonNumeric       = "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
	ReplyDeleteUsage      = "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
	ReplyStored           = "STORED\r\n"
	ReplyNotStored        = "NOT_STORED\r\n"
	ReplyExists           = "EXISTS\r\n"
	ReplyNotFound         = "NOT_FOUND\r\n"
	ReplyDeleted          = "DELETED\r\n"
	ReplyTouched          = "TOUCHED\r\n"
	ReplyOK               = "OK\r\n"
	ReplyEnd              = "END\r\n"
	ReplyReset            = "RESET\r\n"
	ReplyBadOp            = "SERVER_ERROR malformed operation\r\n"
	ReplyUnavailable      = "SERVER_ERROR replication unavailable\r\n"
	Version               = "1.6.38-onecast"
	replyVersionLine      = "VERSION " + Version + "\r\n"
	maxTokens             = 24 // memcached's MAX_TOKENS: a get line is read in pieces of 24
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
	// DropKey, if set, is a key whose item memcached unlinks as it refuses
	// the line (a value too large for set or ms).
	DropKey []byte
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
//
// The dispatch follows memcached 1.6's process_command_ascii: a command
// word shorter than two bytes is an ERROR, two-byte words starting with 'm'
// are meta commands, and a line of an unknown command whose last token
// starts with "HTTP/" closes the connection without a reply.
func ParseCommand(line []byte, maxItem int) (Command, *ParseError) {
	var tokBuf [maxTokens + 1][]byte
	toks := tokenize(line, tokBuf[:0], maxTokens+1)
	var c Command
	if len(toks) == 0 || len(toks[0]) < 2 {
		return c, refuse(ReplyError)
	}
	if w := toks[0]; w[0] == 'm' && len(w) == 2 {
		switch w[1] {
		case 'g':
			return parseMeta(KindMetaGet, toks, maxItem)
		case 's':
			return parseMeta(KindMetaSet, toks, maxItem)
		case 'd':
			return parseMeta(KindMetaDelete, toks, maxItem)
		case 'a':
			return parseMeta(KindMetaArith, toks, maxItem)
		case 'e':
			return parseMeta(KindMetaDebug, toks, maxItem)
		case 'n':
			return Command{Kind: KindMetaNoop}, nil
		}
		return c, refuse(ReplyError)
	}
	switch string(toks[0]) {
	case "get", "gets", "gat", "gats", "bget":
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
		// memcached ignores any argument of version.
		return Command{Kind: KindVersion}, nil
	case "stats":
		return Command{Kind: KindStats, Args: append([][]byte(nil), toks[1:]...)}, nil
	case "verbosity":
		// verbosity <level> [noreply]; any second argument is ignored.
		if len(toks) != 2 && len(toks) != 3 {
			return c, refuse(ReplyError)
		}
		c = Command{Kind: KindVerbosity, Args: [][]byte{toks[1]}, Noreply: lastIsNoreply(toks)}
		if _, ok := parseUint32(toks[1]); !ok {
			return c, &ParseError{Reply: ReplyBadFormat, Noreply: c.Noreply}
		}
		return c, nil
	case "quit":
		return Command{Kind: KindQuit}, nil
	case "shutdown":
		// As memcached started without -A: this service never lets a
		// client stop it.
		return c, refuse(replyShutdownDisabled)
	case "op":
		if len(toks) != 2 {
			return c, refuse(ReplyError)
		}
		n, ok := parseInt(toks[1])
		if !ok || n < opHeaderLen || n > int64(maxItem)+maxOpKeys*(1+MaxKeyLen)+opHeaderLen+2+MaxLineLen {
			return c, refuse(ReplyBadFormat)
		}
		return Command{Kind: KindOp, ValueLen: int(n)}, nil
	}
	// memcached dispatches on the first byte before it compares words: only
	// a line whose word starts with none of these is checked for HTTP.
	if !bytes.ContainsRune([]byte("gsacidt"), rune(toks[0][0])) &&
		bytes.HasPrefix(toks[min(len(toks), maxTokens-1)-1], []byte("HTTP/")) {
		return c, &ParseError{Close: true}
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

// ParseRetrievalLine parses a get, gets, gat, gats (or bget, memcached's
// ancient alias of get) line of any length: memcached reads such a line in
// pieces, so its key count is bounded only by the line limit. A gat/gats
// line may name no key at all (memcached answers END).
func ParseRetrievalLine(line []byte) (Command, *ParseError) {
	toks := tokenize(line, nil, len(line))
	if len(toks) == 0 {
		return Command{}, refuse(ReplyError)
	}
	var kind Kind
	switch string(toks[0]) {
	case "get", "bget":
		kind = KindGet
	case "gets":
		kind = KindGets
	case "gat":
		kind = KindGat
	case "gats":
		kind = KindGats
	default:
		return Command{}, refuse(ReplyError)
	}
	if len(toks) < 2 {
		return Command{}, refuse(ReplyError)
	}
	c := Command{Kind: kind, Keys: toks[1:]}
	if kind == KindGat || kind == KindGats {
		exp, ok := parseInt32(toks[1])
		if !ok {
			return Command{}, refuse(ReplyBadExptime)
		}
		c.Exptime, c.Keys = exp, toks[2:]
	}
	for _, k := range c.Keys {
		if !validKey(k) {
			return Command{}, refuse(ReplyBadFormat)
		}
	}
	return c, nil
}

// lastIsNoreply is memcached's set_noreply_maybe: a command asks for
// noreply when its last token is "noreply", whatever the token stands for.
func lastIsNoreply(toks [][]byte) bool {
	return len(toks) > 1 && string(toks[min(len(toks), maxTokens-1)-1]) == "noreply"
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
	c := Command{Kind: kind, Keys: [][]byte{toks[1]}, Noreply: lastIsNoreply(toks)}
	bad := func() *ParseError { return &ParseError{Reply: ReplyBadFormat, Noreply: c.Noreply} }
	if !validKey(toks[1]) {
		return Command{}, bad()
	}
	// memcached parses flags with strtoul and keeps the low 32 bits, and
	// exptime and bytes with strtol into an int32: larger values are
	// accepted and truncated, as there.
	flags, ok1 := parseUint32(toks[2])
	exp, ok2 := parseInt32(toks[3])
	vlen, ok3 := parseInt32(toks[4])
	if !ok1 || !ok2 || !ok3 {
		return Command{}, bad()
	}
	if kind == KindCas {
		cas, ok := parseUint(toks[5])
		if !ok {
			return Command{}, bad()
		}
		c.Cas = cas
	}
	if vlen < 0 || vlen > 1<<31-3 {
		return Command{}, bad()
	}
	c.Flags, c.Exptime, c.ValueLen = flags, exp, int(vlen)
	if len(toks[1])+c.ValueLen+ItemOverhead > maxItem {
		pe := &ParseError{Reply: ReplyTooLarge, Swallow: c.ValueLen + 2, Noreply: c.Noreply}
		if kind == KindSet {
			pe.DropKey = toks[1]
		}
		return Command{}, pe
	}
	return c, nil
}

func parseDelete(toks [][]byte) (Command, *ParseError) {
	// delete <key> [0] [noreply]
	if len(toks) < 2 || len(toks) > 4 {
		return Command{}, refuse(ReplyError)
	}
	c := Command{Kind: KindDelete, Keys: [][]byte{toks[1]}}
	if len(toks) > 2 {
		zero := string(toks[2]) == "0"
		c.Noreply = lastIsNoreply(toks)
		if !(len(toks) == 3 && (zero || c.Noreply)) && !(len(toks) == 4 && zero && c.Noreply) {
			return Command{}, &ParseError{Reply: ReplyDeleteUsage, Noreply: c.Noreply}
		}
	}
	if !validKey(toks[1]) {
		return Command{}, &ParseError{Reply: ReplyBadFormat, Noreply: c.Noreply}
	}
	return c, nil
}

func parseArith(kind Kind, toks [][]byte) (Command, *ParseError) {
	// incr|decr <key> <value> [noreply]
	if len(toks) != 3 && len(toks) != 4 {
		return Command{}, refuse(ReplyError)
	}
	c := Command{Kind: kind, Keys: [][]byte{toks[1]}, Noreply: lastIsNoreply(toks)}
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
	c := Command{Kind: KindTouch, Keys: [][]byte{toks[1]}, Noreply: lastIsNoreply(toks)}
	if !validKey(toks[1]) {
		return Command{}, &ParseError{Reply: ReplyBadFormat, Noreply: c.Noreply}
	}
	exp, ok := parseInt32(toks[2])
	if !ok {
		return Command{}, &ParseError{Reply: ReplyBadExptime, Noreply: c.Noreply}
	}
	c.Exptime = exp
	return c, nil
}

func parseFlush(toks [][]byte) (Command, *ParseError) {
	// flush_all [delay] [noreply]: as memcached, the delay is the first
	// argument unless the only argument is noreply; a third token is
	// ignored.
	if len(toks) > 3 {
		return Command{}, refuse(ReplyError)
	}
	c := Command{Kind: KindFlushAll, Noreply: lastIsNoreply(toks)}
	plain := 1
	if c.Noreply {
		plain = 2
	}
	if len(toks) != plain {
		d, ok := parseInt32(toks[1])
		if !ok {
			return Command{}, &ParseError{Reply: ReplyBadExptime, Noreply: c.Noreply}
		}
		c.Delay = d
	}
	return c, nil
}

// cSpace reports whether c is white space for C's isspace.
func cSpace(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') }

// scanNumber splits b as strtol and strtoull read it, the way memcached's
// safe_strto* functions accept it: leading white space, an optional sign,
// at least one decimal digit, and then white space or the end (memcached's
// strings end at the token's end or the value's CRLF).
func scanNumber(b []byte) (neg bool, digits []byte, ok bool) {
	i := 0
	for i < len(b) && cSpace(b[i]) {
		i++
	}
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	j := i
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	if j == i || (j < len(b) && !cSpace(b[j])) {
		return false, nil, false
	}
	return neg, b[i:j], true
}

// parseInt32 parses a number as memcached's safe_strtol: strtol into a
// long (overflow refused), then kept in an int32 — larger values wrap, as
// there.
func parseInt32(b []byte) (int64, bool) {
	neg, digits, ok := scanNumber(b)
	if !ok {
		return 0, false
	}
	u, err := strconv.ParseUint(string(digits), 10, 64)
	if err != nil || u > 1<<63 || (u == 1<<63 && !neg) {
		return 0, false
	}
	v := int64(u)
	if neg {
		v = -v
	}
	return int64(int32(v)), true
}

// parseUint32 parses a number as memcached's safe_strtoul: a uint64, kept
// in a uint32 (higher bits dropped).
func parseUint32(b []byte) (uint32, bool) {
	v, ok := parseUint(b)
	return uint32(v), ok
}

// parseUint parses a number as memcached's safe_strtoull: strtoull (which
// negates a number after a minus sign), refused on overflow, and refused
// when a minus sign made it negative as a signed number.
func parseUint(b []byte) (uint64, bool) {
	neg, digits, ok := scanNumber(b)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseUint(string(digits), 10, 64)
	if err != nil {
		return 0, false
	}
	if neg {
		v = -v
		if int64(v) < 0 {
			return 0, false
		}
	}
	return v, true
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
