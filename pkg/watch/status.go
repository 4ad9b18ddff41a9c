package watch

import (
	"context"
	"encoding/json"
	"errors"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/tools/cache"
)

// The status annotation is written off the evaluation's path: an
// evaluation queues the target's new status and goes on, and a status
// worker patches it on the status client, whose rate limiter is not the
// scale writes'. A burst of spikes then costs one API call each on the
// hot path. Only the newest status of a target is kept; a failed write is
// retried with the queue's backoff until it lands, a newer status replaces
// it, or this replica stops leading (the new leader writes its own).

// queueStatus records st as target k's status to write.
func (c *Controller) queueStatus(k string, st Status) {
	c.mu.Lock()
	c.pendingStatus[k] = st
	c.mu.Unlock()
	c.statuses.Add(k)
}

func (c *Controller) runStatusWorker(ctx context.Context) {
	for c.processNextStatus(ctx) {
	}
}

// processNextStatus writes one target's newest queued status.
func (c *Controller) processNextStatus(ctx context.Context) bool {
	k, shutdown := c.statuses.Get()
	if shutdown {
		return false
	}
	defer c.statuses.Done(k)
	c.mu.Lock()
	st, ok := c.pendingStatus[k]
	delete(c.pendingStatus, k)
	c.mu.Unlock()
	if !ok {
		c.statuses.Forget(k)
		return true
	}
	err := c.writeStatus(ctx, k, st)
	switch {
	case err == nil, errors.Is(err, errFenced), apierrors.IsNotFound(err):
		c.statuses.Forget(k)
	default:
		utilruntime.HandleErrorWithContext(ctx, err, "Writing the status annotation failed; retrying with backoff", "key", k)
		c.mu.Lock()
		_, managed := c.targets[k]
		_, newer := c.pendingStatus[k]
		if managed && !newer {
			c.pendingStatus[k] = st
		}
		c.mu.Unlock()
		if managed {
			c.statuses.AddRateLimited(k)
		} else {
			c.statuses.Forget(k)
		}
	}
	return true
}

// writeStatus patches target k's status annotation.
func (c *Controller) writeStatus(ctx context.Context, k string, st Status) error {
	if c.fenced() {
		return errFenced
	}
	ns, name, err := cache.SplitMetaNamespaceKey(k)
	if err != nil {
		return err
	}
	ctx, span := c.tracer.Start(ctx, "status.write")
	defer span.End()
	js, err := json.Marshal(st)
	if err != nil {
		return err
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{StatusAnnotation: string(js)}}})
	if err != nil {
		return err
	}
	return c.api.mergePatch(ctx, ns, name, patch)
}
