package watch

import (
	"context"
	"time"

	"golang.org/x/sync/errgroup"
)

// Group is the Controllers of every kind, as the webhook and the probes see
// them: a trigger for namespace/name reaches whichever kind manages that
// name (both, if a Deployment and a StatefulSet share it).
type Group []*Controller

// Ready reports whether every kind takes triggers.
func (g Group) Ready() bool {
	for _, c := range g {
		if !c.Ready() {
			return false
		}
	}
	return len(g) > 0
}

// HasSynced reports whether every kind's cache has synced.
func (g Group) HasSynced() bool {
	for _, c := range g {
		if !c.HasSynced() {
			return false
		}
	}
	return true
}

// Managed reports whether any kind manages namespace/name.
func (g Group) Managed(namespace, name string) bool {
	for _, c := range g {
		if c.Managed(namespace, name) {
			return true
		}
	}
	return false
}

// ByService lists the managed workloads of every kind for a service.
func (g Group) ByService(namespace, service string) []string {
	var keys []string
	for _, c := range g {
		keys = append(keys, c.ByService(namespace, service)...)
	}
	return keys
}

// Spike triggers namespace/name in every kind that manages it.
func (g Group) Spike(namespace, name string, receivedAt time.Time) bool {
	queued := false
	for _, c := range g {
		queued = c.Spike(namespace, name, receivedAt) || queued
	}
	return queued
}

// Run runs every kind's Controller until ctx is done or one fails.
func (g Group) Run(ctx context.Context, workers int) error {
	eg, ctx := errgroup.WithContext(ctx)
	for _, c := range g {
		eg.Go(func() error { return c.Run(ctx, workers) })
	}
	return eg.Wait()
}
