package kv

import (
	"encoding/base64"
	"slices"
	"strconv"
)

// The meta commands (mg, ms, md, ma, me, mn) as memcached 1.6 implements
// them in proto_text.c. The front end checks what memcached checks before
// it touches an item (token counts, key length, the flags' syntax) and
// answers those errors itself; the op then carries the flag tokens as sent,
// and the state machine interprets them with the same parser, in the order
// they were sent, because that order is the order of the reply's tokens and
// of the changes (mg "T30 t" reports the new TTL, "t T30" the old one).

// Limits of the meta commands (proto_text.c).
const (
	// maxMetaTokens is MFLAG_MAX_OPT_LENGTH: a meta line of more tokens
	// (counting memcached's terminal token) is refused.
	maxMetaTokens = 20
	// maxOpaqueLen is MFLAG_MAX_OPAQUE_LENGTH, the longest O token.
	maxOpaqueLen = 32
)

// Meta replies and errors, worded as memcached words them.
const (
	replyMetaNoop           = "MN\r\n"
	replyMetaMiss           = "EN\r\n"
	errMetaBadFormat        = "CLIENT_ERROR bad command line format"
	errMetaDuplicate        = "CLIENT_ERROR duplicate flag"
	errMetaInvalidFlag      = "CLIENT_ERROR invalid flag"
	errMetaBadToken         = "CLIENT_ERROR bad token in command line format"
	errMetaDecodeKey        = "CLIENT_ERROR error decoding key"
	errMetaMLength          = "CLIENT_ERROR incorrect length for M token"
	errMetaInitial          = "CLIENT_ERROR invalid numeric initial value"
	errMetaDelta            = "CLIENT_ERROR invalid numeric delta value"
	errMetaOpaqueLong       = "CLIENT_ERROR opaque token too long"
	errMetaInvalidOrDup     = "CLIENT_ERROR invalid or duplicate flag"
	errMetaGetTooMany       = "CLIENT_ERROR options flags are too long"
	errMetaTooMany          = "CLIENT_ERROR options flags too long"
	errMetaSetMode          = "CLIENT_ERROR invalid mode for ms M token"
	errMetaArithMode        = "CLIENT_ERROR invalid mode for ma M token"
	errMetaTooLarge         = "SERVER_ERROR object too large for cache"
	errMetaNonNumeric       = "CLIENT_ERROR cannot increment or decrement non-numeric value"
	replyMetaDebugBadFormat = errMetaBadFormat + "\r\n"
)

// metaFlags is memcached's struct _meta_flags: what the flag tokens of one
// meta command ask for. Times are exptimes as sent.
type metaFlags struct {
	noReply   bool // q
	noUpdate  bool // u
	value     bool // v
	setStale  bool // I
	hasCas    bool // C
	newTTL    bool // T
	keyBinary bool // b
	vivify    bool // N
	mode      byte // M
	exptime   int64
	autoviv   int64
	recache   int64
	flags     uint32 // F
	cas       uint64 // C
	delta     uint64 // D
	initial   uint64 // J
}

// parseMetaFlags is memcached's _meta_flag_preparse over the flag tokens
// toks of a command on key: it returns the flags, the key (base64-decoded
// under b) and "" or the error line (without CRLF) memcached answers. A
// repeated or unknown flag stops the parse at once; other errors let it
// run on and the last one is reported.
func parseMetaFlags(toks [][]byte, key []byte) (metaFlags, []byte, string) {
	var f metaFlags
	var seen [127]bool
	errstr := ""
	hasError := false
	fail := func(e string) {
		if e != "" {
			errstr = e
		}
		hasError = true
	}
	for _, t := range toks {
		o := t[0]
		if o >= 127 || seen[o] {
			return f, key, errMetaDuplicate
		}
		seen[o] = true
		arg := t[1:]
		switch o {
		case 'b':
			dec, ok := base64Decode(key)
			if !ok {
				fail(errMetaDecodeKey)
			}
			key = dec
			f.keyBinary = true
		case 'N':
			f.vivify = true
			if v, ok := parseInt32(arg); ok {
				f.autoviv = v
			} else {
				fail(errMetaBadToken)
			}
		case 'T':
			if v, ok := parseInt32(arg); ok {
				f.exptime, f.newTTL = v, true
			} else {
				fail(errMetaBadToken)
			}
		case 'R':
			if v, ok := parseInt32(arg); ok {
				f.recache = v
			} else {
				fail(errMetaBadToken)
			}
		case 'l', 'O', 'P', 'L', 'k', 's', 't', 'c', 'f', 'h':
		case 'v':
			f.value = true
		case 'u':
			f.noUpdate = true
		case 'q':
			f.noReply = true
		case 'F':
			if v, ok := parseUint32(arg); ok {
				f.flags = v
			} else {
				fail("")
			}
		case 'C':
			if v, ok := parseUint(arg); ok {
				f.cas, f.hasCas = v, true
			} else {
				fail(errMetaBadToken)
			}
		case 'M':
			if len(t) != 2 {
				fail(errMetaMLength)
			} else {
				f.mode = t[1]
			}
		case 'J':
			if v, ok := parseUint(arg); ok {
				f.initial = v
			} else {
				fail(errMetaInitial)
			}
		case 'D':
			if v, ok := parseUint(arg); ok {
				f.delta = v
			} else {
				fail(errMetaDelta)
			}
		case 'I':
			f.setStale = true
		default:
			return f, key, errMetaInvalidFlag
		}
	}
	if hasError {
		if errstr == "" {
			errstr = errMetaBadFormat
		}
		return f, key, errstr
	}
	return f, key, ""
}

// metaTokenCount is memcached's ntokens for a line of n tokens: at most 23
// real tokens, plus the terminal one.
func metaTokenCount(n int) int { return min(n, maxTokens-1) + 1 }

// parseMeta checks a meta command line as memcached does before it looks
// the item up, and returns the command whose op carries the flag tokens.
func parseMeta(kind Kind, toks [][]byte, maxItem int) (Command, *ParseError) {
	nt := metaTokenCount(len(toks))
	errLine := func(e string) *ParseError { return &ParseError{Reply: e + "\r\n"} }
	if kind == KindMetaDebug {
		// me <key> [b]
		if nt < 3 || len(toks[1]) > MaxKeyLen {
			return Command{}, errLine(errMetaBadFormat)
		}
		if nt >= 4 && string(toks[2]) == "b" {
			if _, ok := base64Decode(toks[1]); !ok {
				return Command{}, errLine(errMetaBadFormat)
			}
		}
		return Command{Kind: kind, Keys: [][]byte{toks[1]}, Meta: slices.Clone(toks[2:min(len(toks), maxTokens-1)])}, nil
	}
	if nt < 3 {
		return Command{}, refuse(ReplyError)
	}
	if len(toks[1]) > MaxKeyLen {
		return Command{}, errLine(errMetaBadFormat)
	}
	// Copies of the token slices: toks lives in the caller's frame.
	c := Command{Kind: kind, Keys: [][]byte{toks[1]}}
	switch kind {
	case KindMetaGet:
		if nt > maxMetaTokens {
			return Command{}, errLine(errMetaGetTooMany)
		}
		c.Meta = slices.Clone(toks[2 : nt-1])
		if _, _, e := parseMetaFlags(c.Meta, toks[1]); e != "" {
			return Command{}, errLine(e)
		}
	case KindMetaDelete, KindMetaArith:
		if nt > maxMetaTokens {
			return Command{}, errLine(errMetaTooMany)
		}
		c.Meta = slices.Clone(toks[2 : nt-1])
		if _, _, e := parseMetaFlags(c.Meta, toks[1]); e != "" {
			return Command{}, errLine(errMetaInvalidOrDup)
		}
	case KindMetaSet:
		// ms <key> <datalen> <flag>*
		if nt == 3 {
			return Command{}, errLine(errMetaBadFormat)
		}
		if nt > maxMetaTokens {
			return Command{}, errLine(errMetaTooMany)
		}
		vlen, ok := parseInt32(toks[2])
		if !ok || vlen < 0 || vlen > 1<<31-3 {
			return Command{}, errLine(errMetaBadFormat)
		}
		c.ValueLen = int(vlen)
		c.Meta = slices.Clone(toks[3 : nt-1])
		swallow := func(e string) *ParseError {
			return &ParseError{Reply: e + "\r\n", Swallow: c.ValueLen + 2}
		}
		f, key, e := parseMetaFlags(c.Meta, toks[1])
		if e != "" {
			return Command{}, swallow(e)
		}
		if e := metaOpaqueCheck(c.Meta); e != "" {
			return Command{}, swallow(e)
		}
		if _, e := metaSetMode(&f); e != "" {
			return Command{}, swallow(e)
		}
		if len(key)+c.ValueLen+ItemOverhead > maxItem {
			pe := swallow(errMetaTooLarge)
			pe.DropKey = key
			return Command{}, pe
		}
	}
	return c, nil
}

// metaOpaqueCheck returns the error for an O token longer than memcached
// copies back.
func metaOpaqueCheck(toks [][]byte) string {
	for _, t := range toks {
		if t[0] == 'O' && len(t) > maxOpaqueLen {
			return errMetaOpaqueLong
		}
	}
	return ""
}

// metaSetMode maps ms's M token (and C) to the storage command it stands
// for, as process_mset_command does.
func metaSetMode(f *metaFlags) (Kind, string) {
	k := KindSet
	switch f.mode {
	case 0, 'S':
	case 'E':
		k = KindAdd
	case 'A':
		k = KindAppend
	case 'P':
		k = KindPrepend
	case 'R':
		k = KindReplace
	default:
		return k, errMetaSetMode
	}
	if f.hasCas && (k == KindSet || k == KindReplace) {
		k = KindCas
	}
	return k, ""
}

// base64Decode is memcached's base64_decode: bytes outside the alphabet
// are skipped, the rest must be whole 4-byte blocks, and decoding stops at
// the first block with padding. An empty result is a failure, as there.
func base64Decode(src []byte) ([]byte, bool) {
	val := func(c byte) (byte, bool) {
		switch {
		case c >= 'A' && c <= 'Z':
			return c - 'A', true
		case c >= 'a' && c <= 'z':
			return c - 'a' + 26, true
		case c >= '0' && c <= '9':
			return c - '0' + 52, true
		case c == '+':
			return 62, true
		case c == '/':
			return 63, true
		case c == '=':
			return 0, true
		}
		return 0, false
	}
	count := 0
	for _, c := range src {
		if _, ok := val(c); ok {
			count++
		}
	}
	if count == 0 || count%4 != 0 {
		return nil, false
	}
	out := make([]byte, 0, count/4*3)
	var block [4]byte
	n, pad := 0, 0
	for _, c := range src {
		v, ok := val(c)
		if !ok {
			continue
		}
		if c == '=' {
			pad++
		}
		block[n] = v
		n++
		if n == 4 {
			out = append(out, block[0]<<2|block[1]>>4, block[1]<<4|block[2]>>2, block[2]<<6|block[3])
			n = 0
			if pad > 0 {
				if pad > 2 {
					return nil, false
				}
				out = out[:len(out)-pad]
				break
			}
		}
	}
	if len(out) == 0 {
		return nil, false
	}
	return out, true
}

// appendMetaKey appends memcached's META_KEY: " k" and the key, base64
// encoded and followed by " b" for a binary key.
func appendMetaKey(dst, key []byte, binary bool) []byte {
	dst = append(dst, " k"...)
	if !binary {
		return append(dst, key...)
	}
	dst = base64.StdEncoding.AppendEncode(dst, key)
	return append(dst, " b"...)
}

// metaTokens splits an op's flag text back into tokens.
func metaTokens(text []byte) [][]byte { return tokenize(text, nil, len(text)) }

func appendErrLine(dst []byte, e string) []byte {
	dst = append(dst, e...)
	return append(dst, "\r\n"...)
}

// appendTTL appends a remaining TTL as mg/ma's t flag does: -1 for none.
func (s *Store) appendTTL(dst []byte, it *item) []byte {
	if it.exp == 0 {
		return append(dst, "-1"...)
	}
	return strconv.AppendInt(dst, it.exp-s.clock, 10)
}

// metaGet executes mg (process_mget_command).
func (s *Store) metaGet(dst []byte, o *op) []byte {
	toks := metaTokens(o.meta)
	f, key, e := parseMetaFlags(toks, o.keys[0])
	if e != "" {
		return appendErrLine(dst, e)
	}
	s.cnt.cmdMeta.Add(1)
	start := len(dst)
	it := s.live(key, s.clock, true)
	created := false
	if it == nil && f.vivify {
		// A stub of 0 bytes that the client "won" the right to fill.
		it = &item{cas: s.nextCas(), stored: s.clock, atime: s.clock}
		s.items[string(key)] = it
		s.bytes += int64(len(key))
		s.total++
		created = true
	}
	if it == nil {
		if f.newTTL {
			s.cnt.cmdTouch.Add(1)
			s.cnt.touchMisses.Add(1)
		} else {
			s.cnt.cmdGet.Add(1)
			s.cnt.getMisses.Add(1)
		}
		dst = append(dst, "EN"...)
		for _, t := range toks {
			switch t[0] {
			case 'O':
				if len(t) > maxOpaqueLen {
					return appendErrLine(dst[:start], errMetaOpaqueLong)
				}
				dst = append(append(dst, ' '), t...)
			case 'k':
				dst = appendMetaKey(dst, key, f.keyBinary)
			}
		}
		if f.noReply {
			return dst[:start]
		}
		return append(dst, "\r\n"...)
	}
	if f.value {
		dst = append(dst, "VA "...)
		dst = strconv.AppendInt(dst, int64(it.n), 10)
	} else {
		dst = append(dst, "HD"...)
	}
	won := false
	for _, t := range toks {
		switch t[0] {
		case 'T':
			it.exp = s.expiry(f.exptime)
		case 'N':
			if created {
				it.exp = s.expiry(f.autoviv)
				won = true
			}
		case 'R':
			if !it.tokenSent && !created && it.exp != 0 && it.exp < s.expiry(f.recache) {
				won = true
			}
		case 's':
			dst = append(dst, " s"...)
			dst = strconv.AppendInt(dst, int64(it.n), 10)
		case 't':
			dst = s.appendTTL(append(dst, " t"...), it)
		case 'c':
			dst = strconv.AppendUint(append(dst, " c"...), it.cas, 10)
		case 'f':
			dst = strconv.AppendUint(append(dst, " f"...), uint64(it.flags), 10)
		case 'l':
			dst = strconv.AppendInt(append(dst, " l"...), s.clock-it.atime, 10)
		case 'h':
			if it.fetched {
				dst = append(dst, " h1"...)
			} else {
				dst = append(dst, " h0"...)
			}
		case 'O':
			if len(t) > maxOpaqueLen {
				return appendErrLine(dst[:start], errMetaOpaqueLong)
			}
			dst = append(append(dst, ' '), t...)
		case 'k':
			dst = appendMetaKey(dst, key, it.keyBinary)
		}
	}
	if it.tokenSent {
		dst = append(dst, " Z"...)
	}
	if it.stale {
		dst = append(dst, " X"...)
		if !it.tokenSent {
			won = true
		}
	}
	if won {
		dst = append(dst, " W"...)
		it.tokenSent = true
	}
	dst = append(dst, "\r\n"...)
	if f.value {
		dst = append(it.appendData(dst), "\r\n"...)
	}
	if !f.noUpdate {
		it.fetched, it.atime = true, s.clock
	}
	if f.newTTL {
		s.cnt.cmdTouch.Add(1)
		s.cnt.touchHits.Add(1)
	} else {
		s.cnt.cmdGet.Add(1)
		s.cnt.getHits.Add(1)
	}
	if s.dead(it, s.clock) {
		s.remove(string(key))
	}
	return dst
}

var metaStoreCode = [...]string{"HD", "NS", "EX", "NF"}

// metaSet executes ms (process_mset_command and _finalize_mset).
func (s *Store) metaSet(dst []byte, o *op) []byte {
	toks := metaTokens(o.meta)
	f, key, e := parseMetaFlags(toks, o.keys[0])
	if e == "" {
		e = metaOpaqueCheck(toks)
	}
	kind, me := metaSetMode(&f)
	if e == "" {
		e = me
	}
	if e != "" {
		return appendErrLine(dst, e)
	}
	s.cnt.cmdSet.Add(1)
	s.cnt.cmdMeta.Add(1)
	if len(key)+o.value.Len()+ItemOverhead > s.maxItem {
		s.remove(string(key))
		s.cnt.tooLarge.Add(1)
		return appendErrLine(dst, errMetaTooLarge)
	}
	exptime := int64(0)
	if f.newTTL {
		exptime = f.exptime
	}
	res, cas := s.storeItem(kind, key, f.flags, exptime, f.cas, f.setStale && kind == KindCas, f.keyBinary, o.value)
	if res == resStored && f.noReply {
		return dst
	}
	dst = append(dst, metaStoreCode[res]...)
	for _, t := range toks {
		switch t[0] {
		case 'O':
			dst = append(append(dst, ' '), t...)
		case 'k':
			dst = appendMetaKey(dst, key, f.keyBinary)
		case 'c':
			dst = strconv.AppendUint(append(dst, " c"...), cas, 10)
		}
	}
	return append(dst, "\r\n"...)
}

// metaDelete executes md (process_mdelete_command).
func (s *Store) metaDelete(dst []byte, o *op) []byte {
	toks := metaTokens(o.meta)
	f, key, e := parseMetaFlags(toks, o.keys[0])
	if e != "" {
		return appendErrLine(dst, errMetaInvalidOrDup)
	}
	if e := metaOpaqueCheck(toks); e != "" {
		return appendErrLine(dst, e)
	}
	s.cnt.cmdMeta.Add(1)
	code := "NF"
	if it := s.lookup(key, true); it == nil {
		s.cnt.deleteMisses.Add(1)
	} else if f.hasCas && it.cas != f.cas {
		s.cnt.deleteMisses.Add(1)
		code = "EX"
	} else {
		code = "HD"
		if f.setStale {
			// Keep the item, stale, with a new CAS, so that the next mg
			// wins the right to recache it.
			if f.newTTL {
				it.exp = s.expiry(f.exptime)
			}
			it.stale, it.tokenSent = true, false
			it.cas = s.nextCas()
			if s.dead(it, s.clock) {
				s.remove(string(key))
			}
		} else {
			s.cnt.deleteHits.Add(1)
			s.remove(string(key))
		}
		if f.noReply {
			return dst
		}
	}
	dst = append(dst, code...)
	for _, t := range toks {
		switch t[0] {
		case 'O':
			dst = append(append(dst, ' '), t...)
		case 'k':
			dst = appendMetaKey(dst, key, f.keyBinary)
		}
	}
	return append(dst, "\r\n"...)
}

// metaArith executes ma (process_marithmetic_command).
func (s *Store) metaArith(dst []byte, o *op) []byte {
	toks := metaTokens(o.meta)
	f, key, e := parseMetaFlags(toks, o.keys[0])
	if e != "" {
		return appendErrLine(dst, errMetaInvalidOrDup)
	}
	delta := uint64(1)
	for _, t := range toks {
		if t[0] == 'D' {
			delta = f.delta
		}
	}
	incr := true
	switch f.mode {
	case 0, 'I', '+':
	case 'D', '-':
		incr = false
	default:
		return appendErrLine(dst, errMetaArithMode)
	}
	s.cnt.cmdMeta.Add(1)
	start := len(dst)
	var digits []byte
	it := s.lookup(key, true)
	created := false
	switch {
	case it == nil && f.vivify:
		digits = strconv.AppendUint(nil, f.initial, 10)
		b := s.wrap(digits)
		it = s.put(key, 0, 0, false, b)
		b.Release() // put retained its own reference
		if it == nil {
			// Born flushed (a delayed flush_all due this very second):
			// memcached's add would not be seen either.
			dst = append(dst, "NS"...)
		}
		created = it != nil
	case it == nil:
		if incr {
			s.cnt.incrMisses.Add(1)
		} else {
			s.cnt.decrMisses.Add(1)
		}
		dst = append(dst, "NF"...)
	case f.hasCas && f.cas != 0 && it.cas != f.cas:
		it = nil
		dst = append(dst, "EX"...)
	default:
		var ok bool
		if digits, ok = s.addDelta(it, incr, delta); !ok {
			return appendErrLine(dst, errMetaNonNumeric)
		}
	}
	if it == nil {
		for _, t := range toks {
			switch t[0] {
			case 'O':
				if len(t) > maxOpaqueLen {
					return appendErrLine(dst[:start], errMetaOpaqueLong)
				}
				dst = append(append(dst, ' '), t...)
			case 'k':
				dst = appendMetaKey(dst, key, f.keyBinary)
			}
		}
		return append(dst, "\r\n"...)
	}
	if f.value {
		dst = append(dst, "VA "...)
		dst = strconv.AppendInt(dst, int64(len(digits)), 10)
	} else {
		dst = append(dst, "HD"...)
	}
	for _, t := range toks {
		switch t[0] {
		case 'c':
			dst = strconv.AppendUint(append(dst, " c"...), it.cas, 10)
		case 't':
			dst = s.appendTTL(append(dst, " t"...), it)
		case 'T':
			it.exp = s.expiry(f.exptime)
		case 'N':
			if created {
				it.exp = s.expiry(f.autoviv)
			}
		case 'O':
			if len(t) > maxOpaqueLen {
				return appendErrLine(dst[:start], errMetaOpaqueLong)
			}
			dst = append(append(dst, ' '), t...)
		case 'k':
			dst = appendMetaKey(dst, key, f.keyBinary)
		}
	}
	if s.dead(it, s.clock) {
		s.remove(string(key))
	}
	if f.noReply && !created {
		return dst[:start]
	}
	dst = append(dst, "\r\n"...)
	if f.value {
		dst = append(append(dst, digits...), "\r\n"...)
	}
	return dst
}

// metaDebug answers me (process_meta_command): the item's metadata as
// "ME <key> exp=<remaining TTL, -1 for none> la=<seconds since last
// access> cas=<cas> fetch=<yes|no>"; a miss is EN. memcached also prints
// the slab class and the item's size in its slab, which this store does
// not have.
func (s *Store) metaDebug(dst []byte, o *op, now int64, apply bool) []byte {
	s.cnt.cmdMeta.Add(1)
	key := o.keys[0]
	toks := metaTokens(o.meta)
	if len(toks) > 0 && string(toks[0]) == "b" {
		dec, ok := base64Decode(key)
		if !ok {
			return append(dst, replyMetaDebugBadFormat...)
		}
		key = dec
	}
	var it *item
	if apply {
		it = s.lookup(key, true)
	} else if it = s.items[string(key)]; it != nil && s.dead(it, now) {
		it = nil
	}
	if it == nil {
		return append(dst, replyMetaMiss...)
	}
	dst = append(dst, "ME "...)
	if it.keyBinary {
		dst = base64.StdEncoding.AppendEncode(dst, key)
	} else {
		dst = append(dst, key...)
	}
	dst = append(dst, " exp="...)
	if it.exp == 0 {
		dst = append(dst, "-1"...)
	} else {
		dst = strconv.AppendInt(dst, it.exp-now, 10)
	}
	dst = strconv.AppendInt(append(dst, " la="...), now-it.atime, 10)
	dst = strconv.AppendUint(append(dst, " cas="...), it.cas, 10)
	if it.fetched {
		dst = append(dst, " fetch=yes"...)
	} else {
		dst = append(dst, " fetch=no"...)
	}
	return append(dst, "\r\n"...)
}
