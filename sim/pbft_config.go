package sim

import (
	"time"

	"github.com/onecast/onecast/broadcast"
	"github.com/onecast/onecast/pbft"
)

// The default PBFT workload of the simulator (PBFTConfig): cheap enough
// for a run of a few milliseconds, deep enough that every run crosses
// stable checkpoints and watermark windows. Each client submits
// PBFTRequestsPerNode requests, ordered PBFTBatch per PRE-PREPARE (one
// sequence number each), with a checkpoint every PBFTCheckpointInterval
// sequence numbers and a window of twice that: the n−f correct clients
// alone fill 2(n−f) ≥ 6 sequence numbers, three checkpoints and more than
// one window, so the cluster crosses at least two stable checkpoints in
// every run and the primary waits at the high watermark for a checkpoint
// to become stable. (The old default, one request per client in batches
// of 16 with checkpoints every 32, never reached a checkpoint.)
const (
	PBFTRequestsPerNode    = 2
	PBFTBatch              = 1
	PBFTCheckpointInterval = 2
)

// PBFTConfig is the simulator's default PBFT run: PBFTSpec with a
// checkpoint every PBFTCheckpointInterval sequence numbers (tweak, if set,
// adjusts each replica's Config further), the SMR checker, the hostile
// network, and the default PBFT workload. f = 0 means MaxF(n), NoFaults f = 0.
func PBFTConfig(n, f int, mode broadcast.Mode, byz []Assignment, tweak func(*pbft.Config)) Config {
	return Config{
		Spec: PBFTSpec(func(c *pbft.Config) {
			c.CheckpointInterval = PBFTCheckpointInterval
			if tweak != nil {
				tweak(c)
			}
		}),
		N: n, F: f, Mode: mode,
		Tuning:    broadcast.Tuning{Batch: PBFTBatch},
		Net:       HostileNetwork(),
		Byzantine: byz,
		Workload:  Workload{PerNode: PBFTRequestsPerNode, PayloadSize: 1024, Spread: 10 * time.Millisecond},
		Checkers:  SMRCheckers,
	}
}
