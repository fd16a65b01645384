package sim_test

import (
	"fmt"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/sim"
	"github.com/onecast/onecast/sim/toyrb"
)

// ExampleRun simulates one seed of a 4-node reliable broadcast with one
// equivocating node on a lossy, partitioned network and checks it.
func ExampleRun() {
	byz, err := sim.ParseByzantine("1:equivocate", sim.Behaviours())
	if err != nil {
		panic(err)
	}
	cfg := sim.Config{
		Spec:      toyrb.Spec(0), // any broadcast.Spec: bracha.Spec, …
		N:         4,
		Mode:      broadcast.ModeFull,
		Net:       sim.HostileNetwork(),
		Byzantine: byz,
	}
	res, err := sim.Run(cfg, 7)
	if err != nil {
		panic(err)
	}
	fmt.Println("byzantine:", res.Byzantine)
	fmt.Println("violations:", len(res.Violations))
	fmt.Println("deliveries at correct nodes:", res.Deliveries)
	again, _ := sim.Run(cfg, 7)
	fmt.Println("replays identically:", again.TraceHash == res.TraceHash)
	// Output:
	// byzantine: [n1:equivocate]
	// violations: 0
	// deliveries at correct nodes: 12
	// replays identically: true
}
