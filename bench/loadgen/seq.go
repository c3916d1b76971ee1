package loadgen

import "sync/atomic"

// nextSeq hands out request numbers to vegeta's concurrent workers.
func nextSeq(p *uint64) uint64 { return atomic.AddUint64(p, 1) - 1 }
