package kv

import (
	"bytes"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
)

// prefixDelimiter is memcached's default -D: a key's prefix is what comes
// before its first ':'.
const prefixDelimiter = ':'

// replyDetailUsage answers a "stats detail" without on, off or dump.
const replyDetailUsage = "CLIENT_ERROR usage: stats detail on|off|dump\r\n"

// prefixStats is memcached's "stats detail": for each key prefix, the
// get, get hits, set and delete commands this front end served while
// detail was on. Like memcached it counts the classic commands only
// (get, gets, gat, gats; set, add, replace, append, prepend, cas; delete),
// and keys without the delimiter are not counted.
type prefixStats struct {
	on atomic.Bool
	mu sync.Mutex
	m  map[string]*prefixCount
}

type prefixCount struct{ gets, hits, sets, dels uint64 }

// keyPrefix returns key's prefix, as memcached's stats_prefix_find finds
// it (a NUL ends the search).
func keyPrefix(key []byte) (string, bool) {
	for i, c := range key {
		if c == 0 {
			break
		}
		if c == prefixDelimiter {
			return string(key[:i]), true
		}
	}
	return "", false
}

func (p *prefixStats) record(key []byte, f func(*prefixCount)) {
	pre, ok := keyPrefix(key)
	if !ok {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]*prefixCount{}
	}
	c := p.m[pre]
	if c == nil {
		c = &prefixCount{}
		p.m[pre] = c
	}
	f(c)
}

// recordGets counts a retrieval of keys whose reply is reply: a key is a
// hit when the reply's next VALUE line names it.
func (p *prefixStats) recordGets(keys [][]byte, reply []byte) {
	hits := valueKeys(reply)
	for _, k := range keys {
		hit := len(hits) > 0 && bytes.Equal(hits[0], k)
		if hit {
			hits = hits[1:]
		}
		p.record(k, func(c *prefixCount) {
			c.gets++
			if hit {
				c.hits++
			}
		})
	}
}

// valueKeys returns the keys of a get reply's VALUE lines, in order.
func valueKeys(reply []byte) [][]byte {
	var keys [][]byte
	for bytes.HasPrefix(reply, []byte("VALUE ")) {
		i := bytes.Index(reply, []byte("\r\n"))
		if i < 0 {
			break
		}
		f := bytes.Split(reply[len("VALUE "):i], []byte(" "))
		if len(f) < 3 {
			break
		}
		n, err := strconv.Atoi(string(f[2]))
		if err != nil || n < 0 || len(reply) < i+2+n+2 {
			break
		}
		keys = append(keys, f[0])
		reply = reply[i+2+n+2:]
	}
	return keys
}

// dump appends memcached's "stats detail dump" listing, prefixes in
// sorted order (memcached lists them in its hash table's order).
func (p *prefixStats) dump(dst []byte) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	pres := make([]string, 0, len(p.m))
	for pre := range p.m {
		pres = append(pres, pre)
	}
	slices.Sort(pres)
	for _, pre := range pres {
		c := p.m[pre]
		dst = append(dst, "PREFIX "...)
		dst = append(dst, pre...)
		dst = strconv.AppendUint(append(dst, " get "...), c.gets, 10)
		dst = strconv.AppendUint(append(dst, " hit "...), c.hits, 10)
		dst = strconv.AppendUint(append(dst, " set "...), c.sets, 10)
		dst = strconv.AppendUint(append(dst, " del "...), c.dels, 10)
		dst = append(dst, "\r\n"...)
	}
	return append(dst, ReplyEnd...)
}

// clear forgets every prefix (stats reset).
func (p *prefixStats) clear() {
	p.mu.Lock()
	p.m = nil
	p.mu.Unlock()
}

// detail answers "stats detail on|off|dump".
func (p *prefixStats) detail(dst []byte, args [][]byte) []byte {
	if len(args) < 2 {
		return append(dst, replyDetailUsage...)
	}
	switch string(args[1]) {
	case "on":
		p.on.Store(true)
		return append(dst, ReplyOK...)
	case "off":
		p.on.Store(false)
		return append(dst, ReplyOK...)
	case "dump":
		return p.dump(dst)
	}
	return append(dst, replyDetailUsage...)
}
