package watch

import (
	"context"
	"sync"
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

// nsSlots are one kind of evaluation's slots per namespace: at most limit
// (at least 1) at once; a parked key goes back through requeue.
type nsSlots struct {
	requeue func(key string)

	mu       sync.Mutex
	limit    int                 // set by Run; 0 before (tests calling the worker loop): 1
	running  map[string]int      // by namespace
	parked   map[string][]string // in the order they came
	isParked map[string]struct{}
}

func newNSSlots(requeue func(string)) *nsSlots {
	return &nsSlots{requeue: requeue, running: map[string]int{}, parked: map[string][]string{}, isParked: map[string]struct{}{}}
}

// setLimit sets how many evaluations of one namespace run at once.
func (s *nsSlots) setLimit(n int) {
	s.mu.Lock()
	s.limit = n
	s.mu.Unlock()
}

// take takes one of ns's slots for k, or parks k and reports false.
func (s *nsSlots) take(ns, k string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running[ns] < max(1, s.limit) {
		s.running[ns]++
		return true
	}
	if _, ok := s.isParked[k]; !ok {
		s.isParked[k] = struct{}{}
		s.parked[ns] = append(s.parked[ns], k)
	}
	return false
}

// free gives back one of ns's slots and requeues its oldest parked key.
func (s *nsSlots) free(ns string) {
	s.mu.Lock()
	s.running[ns]--
	if s.running[ns] <= 0 {
		delete(s.running, ns)
	}
	var next string
	if p := s.parked[ns]; len(p) > 0 {
		next = p[0]
		delete(s.isParked, next)
		if len(p) == 1 {
			delete(s.parked, ns)
		} else {
			s.parked[ns] = p[1:]
		}
	}
	s.mu.Unlock()
	if next != "" {
		s.requeue(next)
	}
}

// withEvalDeadline bounds an evaluation's reads (Prometheus, the
// predictor) to nine tenths of its interval, so that an evaluation ends
// before its next one is due and a slow target frees its worker.
func withEvalDeadline(ctx context.Context, interval time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, interval*9/10)
}
