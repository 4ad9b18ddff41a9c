package watch

import (
	"context"
	"time"
)

// Fairness between tenants. Workers are shared by every namespace, and an
// evaluation holds one while it waits on Prometheus and the predictor. So
// that one tenant's slow queries cannot hold them all, a namespace runs at
// most nsWorkers periodic evaluations at once: a worker that takes the key
// of a namespace at its limit parks it (in order, once) and moves on, and
// the namespace's next free slot puts the oldest parked key back on the
// queue. Its due time is kept, so the wait shows in the lag metric. And an
// evaluation's reads end at withEvalDeadline, before its next one is due.

// takeSlot takes one of ns's slots for k, or parks k and reports false.
func (c *Controller) takeSlot(ns, k string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	limit := c.nsWorkers
	if limit <= 0 {
		limit = 1 // not started by Run (tests calling the worker loop)
	}
	if c.nsRunning[ns] < limit {
		c.nsRunning[ns]++
		return true
	}
	if _, ok := c.isParked[k]; !ok {
		c.isParked[k] = struct{}{}
		c.parked[ns] = append(c.parked[ns], k)
	}
	return false
}

// freeSlot gives back one of ns's slots and queues its oldest parked key.
func (c *Controller) freeSlot(ns string) {
	c.mu.Lock()
	c.nsRunning[ns]--
	if c.nsRunning[ns] <= 0 {
		delete(c.nsRunning, ns)
	}
	var next string
	if p := c.parked[ns]; len(p) > 0 {
		next = p[0]
		delete(c.isParked, next)
		if len(p) == 1 {
			delete(c.parked, ns)
		} else {
			c.parked[ns] = p[1:]
		}
	}
	c.mu.Unlock()
	if next != "" {
		c.queue.Add(next)
	}
}

// withEvalDeadline bounds an evaluation's reads (Prometheus, the
// predictor) to nine tenths of its interval, so that an evaluation ends
// before its next one is due and a slow target frees its worker.
func withEvalDeadline(ctx context.Context, interval time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, interval*9/10)
}
