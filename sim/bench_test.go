package sim

import (
	"testing"

	"github.com/onecast/onecast/sim/toyrb"
)

// BenchmarkRun measures the simulator's speed in simulated messages per
// second on one core, with the toy Bracha at n = 7 on the hostile network
// and two Byzantine nodes drawn from every behaviour.
func BenchmarkRun(b *testing.B) {
	as, err := ParseByzantine("2:any", Behaviours())
	if err != nil {
		b.Fatal(err)
	}
	cfg := Config{Spec: toyrb.Spec(0), N: 7, Net: HostileNetwork(), Byzantine: as, Workload: Workload{PayloadSize: 1024}}
	b.ReportAllocs()
	var msgs uint64
	seed := uint64(0)
	for b.Loop() {
		seed++
		res, err := Run(cfg, seed)
		if err != nil {
			b.Fatal(err)
		}
		if res.Failed() {
			b.Fatalf("seed %d: %v", seed, res.Violations)
		}
		msgs += res.Messages
	}
	b.ReportMetric(float64(msgs)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(msgs)/float64(b.N), "msgs/run")
}

// BenchmarkEventLoop isolates the engine: a protocol that does almost
// nothing, so that the figure is the simulator's own cost per message.
func BenchmarkEventLoop(b *testing.B) {
	cfg := Config{Spec: floodSpec(), N: 7, Net: HostileNetwork(), Workload: Workload{PayloadSize: 64, PerNode: 4}}
	b.ReportAllocs()
	var msgs uint64
	seed := uint64(0)
	for b.Loop() {
		seed++
		res, err := Run(cfg, seed)
		if err != nil {
			b.Fatal(err)
		}
		msgs += res.Messages
	}
	b.ReportMetric(float64(msgs)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(msgs)/float64(b.N), "msgs/run")
}
