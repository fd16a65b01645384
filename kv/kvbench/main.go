// Command kvbench measures a key-value service in a closed loop: ops/s and
// latency percentiles of set and get with a fixed value size, over the
// memcached text protocol (gomemcache; the onecast kv cluster or a real
// memcached) or etcd's v3 API (linearizable reads). scripts/kvbench.sh runs
// it against all three with the same value sizes.
//
// Usage:
//
//	kvbench -name onecast-kv -memcached 127.0.0.1:7100,127.0.0.2:7101 -size 128 -conc 16 -duration 10s
//	kvbench -name etcd -etcd http://127.0.0.1:2379 -size 128 -conc 16 -duration 10s
//
// Each line of output is one measurement: name op size conc ops ops/s p50 p99 errors.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// target is one system under test.
type target interface {
	set(ctx context.Context, worker int, key string, value []byte) error
	get(ctx context.Context, worker int, key string) error
	close()
}

type mcTarget struct{ clients []*memcache.Client }

func (m *mcTarget) set(_ context.Context, w int, k string, v []byte) error {
	return m.clients[w%len(m.clients)].Set(&memcache.Item{Key: k, Value: v})
}

func (m *mcTarget) get(_ context.Context, w int, k string) error {
	_, err := m.clients[w%len(m.clients)].Get(k)
	return err
}

func (m *mcTarget) close() {
	for _, c := range m.clients {
		c.Close()
	}
}

type etcdTarget struct{ c *clientv3.Client }

func (e *etcdTarget) set(ctx context.Context, _ int, k string, v []byte) error {
	_, err := e.c.Put(ctx, k, string(v))
	return err
}

func (e *etcdTarget) get(ctx context.Context, _ int, k string) error {
	_, err := e.c.Get(ctx, k)
	return err
}

func (e *etcdTarget) close() { e.c.Close() }

func main() {
	name := flag.String("name", "target", "name printed with the results")
	mc := flag.String("memcached", "", "comma-separated memcached addresses (workers spread over them)")
	etcd := flag.String("etcd", "", "comma-separated etcd endpoints")
	size := flag.Int("size", 128, "value size in bytes")
	conc := flag.Int("conc", 16, "concurrent workers (closed loop)")
	duration := flag.Duration("duration", 10*time.Second, "measurement time per op")
	maxOps := flag.Int("ops", 200000, "most ops per measurement")
	keys := flag.Int("keys", 1000, "key space")
	flag.Parse()
	var t target
	switch {
	case *mc != "":
		m := &mcTarget{}
		for _, a := range strings.Split(*mc, ",") {
			c := memcache.New(a)
			c.Timeout = 5 * time.Second
			c.MaxIdleConns = *conc
			m.clients = append(m.clients, c)
		}
		t = m
	case *etcd != "":
		c, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(*etcd, ","), DialTimeout: 5 * time.Second})
		if err != nil {
			fmt.Fprintln(os.Stderr, "kvbench:", err)
			os.Exit(1)
		}
		t = &etcdTarget{c: c}
	default:
		fmt.Fprintln(os.Stderr, "kvbench: -memcached or -etcd is required")
		os.Exit(2)
	}
	defer t.close()
	value := make([]byte, *size)
	for i := range value {
		value[i] = 'a' + byte(i%26)
	}
	for _, op := range []string{"set", "get"} {
		r := run(t, op, value, *conc, *duration, *maxOps, *keys)
		fmt.Printf("%s %s %d %d %d %.0f %.3f %.3f %d\n", *name, op, *size, *conc, r.ops, r.opsPerSec,
			r.p50.Seconds()*1e3, r.p99.Seconds()*1e3, r.errors)
	}
}

type result struct {
	ops       int
	errors    int
	opsPerSec float64
	p50, p99  time.Duration
}

// run drives op from conc workers until duration or maxOps, whichever
// comes first.
func run(t target, op string, value []byte, conc int, duration time.Duration, maxOps, keys int) result {
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var mu sync.Mutex
	var lat []time.Duration
	errs := 0
	var wg sync.WaitGroup
	per := maxOps / conc
	start := time.Now()
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, per)
			bad := 0
			for i := 0; i < per && ctx.Err() == nil; i++ {
				key := fmt.Sprintf("kvbench:%d", (w*per+i)%keys)
				t0 := time.Now()
				var err error
				if op == "set" {
					err = t.set(context.Background(), w, key, value)
				} else {
					err = t.get(context.Background(), w, key)
				}
				if err != nil && err != memcache.ErrCacheMiss {
					bad++
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			errs += bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start)
	slices.Sort(lat)
	r := result{ops: len(lat), errors: errs, opsPerSec: float64(len(lat)) / el.Seconds()}
	if len(lat) > 0 {
		r.p50 = lat[len(lat)*50/100]
		r.p99 = lat[min(len(lat)-1, len(lat)*99/100)]
	}
	return r
}
