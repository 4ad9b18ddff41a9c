package watch

import (
	"context"
	"fmt"
	"strings"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	autoscalinginformers "k8s.io/client-go/informers/autoscaling/v2"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// EventConflictingAutoscaler: an HPA (or a KEDA ScaledObject, which makes
// one) scales the same Deployment; the controller leaves it alone.
const EventConflictingAutoscaler = "ConflictingAutoscaler"

const hpaTargetIndex = "target"

// indexHPAByTarget indexes HPAs by the group/Kind/namespace/name of the
// workload their scaleTargetRef names, in any API group: an HPA (or KEDA)
// aimed at an Argo Rollout writes the same /scale as a Controller for
// rollouts. extensions is apps: its Deployments are the same objects.
func indexHPAByTarget(obj any) ([]string, error) {
	h, ok := obj.(*autoscalingv2.HorizontalPodAutoscaler)
	if !ok {
		return nil, nil
	}
	ref := h.Spec.ScaleTargetRef
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil || ref.Kind == "" || ref.Name == "" {
		return nil, nil
	}
	return []string{targetKey(gv.Group, ref.Kind, h.Namespace, ref.Name)}, nil
}

// targetKey is a workload's key in the HPA index.
func targetKey(group, kind, namespace, name string) string {
	if group == "extensions" {
		group = "apps"
	}
	return group + "/" + kind + "/" + namespace + "/" + name
}

// watchHPAs indexes HPAs by target and queues a managed Deployment when an
// HPA aimed at it comes or goes, so that management stops or resumes at
// once. It returns the registration's HasSynced.
func (c *Controller) watchHPAs(inf autoscalinginformers.HorizontalPodAutoscalerInformer) (cache.InformerSynced, error) {
	i := inf.Informer()
	// One index for every kind's Controller on the shared informer.
	if _, ok := i.GetIndexer().GetIndexers()[hpaTargetIndex]; !ok {
		if err := i.AddIndexers(cache.Indexers{hpaTargetIndex: indexHPAByTarget}); err != nil {
			return nil, fmt.Errorf("adding the HPA target index: %w", err)
		}
	}
	c.hpas = i.GetIndexer()
	reg, err := i.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.onHPA,
		UpdateFunc: func(old, cur any) { c.onHPA(old); c.onHPA(cur) },
		DeleteFunc: c.onHPA,
	})
	if err != nil {
		return nil, fmt.Errorf("adding HPA event handlers: %w", err)
	}
	return reg.HasSynced, nil
}

// onHPA queues the managed workload of this Controller's kind an HPA that
// came, changed or went is aimed at.
func (c *Controller) onHPA(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	keys, _ := indexHPAByTarget(obj)
	for _, k := range keys {
		parts := strings.SplitN(k, "/", 4)
		if len(parts) == 4 && k == targetKey(c.group, string(c.kind), parts[2], parts[3]) && c.Managed(parts[2], parts[3]) {
			c.schedule(parts[2]+"/"+parts[3], 0)
		}
	}
}

// conflictingHPA names an HPA that targets the workload k ("" if none).
func (c *Controller) conflictingHPA(k string) string {
	if c.hpas == nil {
		return ""
	}
	ns, name, _ := strings.Cut(k, "/")
	objs, _ := c.hpas.ByIndex(hpaTargetIndex, targetKey(c.group, string(c.kind), ns, name))
	if len(objs) == 0 {
		return ""
	}
	names := make([]string, 0, len(objs))
	for _, o := range objs {
		names = append(names, o.(*autoscalingv2.HorizontalPodAutoscaler).Name)
	}
	return strings.Join(names, ", ")
}

// checkConflict reports whether another autoscaler scales d, and says so
// (one Warning Event and a status write when the conflict starts, a log
// line and a status write when it ends). Both writing deployments/scale
// would fight every interval; the HPA was there for a reason, so it wins.
func (c *Controller) checkConflict(ctx context.Context, k string, t *target, d workload) bool {
	hpa := c.conflictingHPA(k)
	if hpa == t.status.Conflict {
		return hpa != ""
	}
	st := t.status
	st.Conflict = ""
	if hpa != "" {
		st.Conflict = hpa
		c.recorder.Eventf(d, corev1.EventTypeWarning, EventConflictingAutoscaler,
			"HorizontalPodAutoscaler %s also scales this %s; reactive-autoscaler leaves it alone until that is gone", hpa, string(c.kind))
		klog.FromContext(ctx).Info("Another autoscaler scales this workload; not managing it", "hpa", hpa)
	} else {
		klog.FromContext(ctx).Info("No other autoscaler any more; managing again", "was", t.status.Conflict)
	}
	t.status = st
	c.queueStatus(k, st)
	return hpa != ""
}
