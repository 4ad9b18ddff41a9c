package watch

import (
	"context"
	"time"
)

// Fairness between tenants. Workers are shared by every namespace, and an
// evaluation holds one while it waits on Prometheus and the predictor. So
// that one tenant's slow queries cannot hold them all, a namespace runs at
// most a limit of evaluations at once, periodic and spike evaluations each
// on slots of their own (a spike never waits for a periodic slot): a
// worker that takes the key of a namespace at its limit parks it (in
// order, once) and moves on, and the namespace's next free slot puts the
// oldest parked key back on its queue. A periodic key's due time is kept,
// so the wait shows in the lag metric. And an evaluation's reads end at
// withEvalDeadline, before its next one is due.

// nsSlots are one kind of evaluation's slots per namespace; the
// Controller's mu guards them.
type nsSlots struct {
	running  map[string]int
	parked   map[string][]string // in the order they came
	isParked map[string]struct{}
}

func newNSSlots() *nsSlots {
	return &nsSlots{running: map[string]int{}, parked: map[string][]string{}, isParked: map[string]struct{}{}}
}

// take takes one of ns's slots for k, or parks k and reports false.
func (s *nsSlots) take(ns, k string, limit int) bool {
	if s.running[ns] < max(1, limit) {
		s.running[ns]++
		return true
	}
	if _, ok := s.isParked[k]; !ok {
		s.isParked[k] = struct{}{}
		s.parked[ns] = append(s.parked[ns], k)
	}
	return false
}

// free gives back one of ns's slots and returns its oldest parked key
// ("" if none), for the caller to queue.
func (s *nsSlots) free(ns string) string {
	s.running[ns]--
	if s.running[ns] <= 0 {
		delete(s.running, ns)
	}
	p := s.parked[ns]
	if len(p) == 0 {
		return ""
	}
	next := p[0]
	delete(s.isParked, next)
	if len(p) == 1 {
		delete(s.parked, ns)
	} else {
		s.parked[ns] = p[1:]
	}
	return next
}

// takeSlot takes one of ns's periodic slots for k, or parks k and reports
// false. The limit is nsWorkers (1 when not started by Run: tests calling
// the worker loop).
func (c *Controller) takeSlot(ns, k string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.periodicSlots.take(ns, k, c.nsWorkers)
}

// freeSlot gives back one of ns's periodic slots and queues its oldest
// parked key.
func (c *Controller) freeSlot(ns string) {
	c.mu.Lock()
	next := c.periodicSlots.free(ns)
	c.mu.Unlock()
	if next != "" {
		c.queue.Add(next)
	}
}

// takeSpikeSlot and freeSpikeSlot are the same for spike evaluations, on
// the spike queue: one tenant's many spiking targets, each slow, leave
// the other spike workers to other namespaces' spikes.
func (c *Controller) takeSpikeSlot(ns, k string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.spikeSlots.take(ns, k, c.nsSpikeWorkers)
}

func (c *Controller) freeSpikeSlot(ns string) {
	c.mu.Lock()
	next := c.spikeSlots.free(ns)
	c.mu.Unlock()
	if next != "" {
		c.spikes.Add(next)
	}
}

// withEvalDeadline bounds an evaluation's reads (Prometheus, the
// predictor) to nine tenths of its interval, so that an evaluation ends
// before its next one is due and a slow target frees its worker.
func withEvalDeadline(ctx context.Context, interval time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, interval*9/10)
}
