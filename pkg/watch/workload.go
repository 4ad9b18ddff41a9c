package watch

import (
	"context"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/scale"

	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

// Kind is a kind of workload a Controller scales: an apps/v1 kind with a
// /scale subresource. One Controller serves one kind; the binary runs one
// per kind and the webhook asks them all (Group).
type Kind string

// The kinds the controller scales.
const (
	Deployments  Kind = "Deployment"
	StatefulSets Kind = "StatefulSet"
)

// Resource is the kind's resource name ("deployments").
func (k Kind) Resource() string { return strings.ToLower(string(k)) + "s" }

// CustomKind is a kind with a /scale subresource other than apps/v1's (an
// Argo Rollout, a custom resource): the Controller sees its objects through
// a metadata-only informer (Config.Informer, of *metav1.PartialObjectMetadata),
// reads and writes its replicas through the scale subresource, and patches
// its status annotation through the metadata client. Config.Kind is its
// kind's name (what an HPA's scaleTargetRef says).
type CustomKind struct {
	Resource schema.GroupVersionResource
	// Scales is the scale client (the spike path's: Config.Client's
	// limits); Metadata patches the status annotation (Config.StatusClient's).
	Scales   scale.ScalesGetter
	Metadata metadata.Interface
}

// workload is a scaled object as the cache holds it: a Deployment, a
// StatefulSet (lean unless Config.FullCache), or the metadata of a custom
// kind's object.
type workload interface {
	metav1.Object
	runtime.Object
}

// specReplicas is the workload's spec.replicas (nil: the API default, 1).
func specReplicas(w workload) *int32 {
	switch o := w.(type) {
	case *appsv1.Deployment:
		return o.Spec.Replicas
	case *appsv1.StatefulSet:
		return o.Spec.Replicas
	}
	return nil
}

// get returns namespace/name from the cache, or a NotFound error.
func (c *Controller) get(namespace, name string) (workload, error) {
	obj, exists, err := c.indexer.GetByKey(namespace + "/" + name)
	if err != nil {
		return nil, err
	}
	w, ok := obj.(workload)
	if !exists || !ok {
		return nil, apierrors.NewNotFound(appsv1.Resource(c.kind.Resource()), name)
	}
	return w, nil
}

// kindAPI is the API of one kind's objects, bound once in New: the scale
// subresource on the scale client (the spike path's), the status
// annotation's patch on the status client.
type kindAPI struct {
	getScale    func(ctx context.Context, namespace, name string) (*autoscalingv1.Scale, error)
	updateScale func(ctx context.Context, sc *autoscalingv1.Scale) error
	mergePatch  func(ctx context.Context, namespace, name string, patch []byte) error
}

// kindClient is what kindAPI uses of a typed client (DeploymentInterface,
// StatefulSetInterface).
type kindClient[T any] interface {
	GetScale(ctx context.Context, name string, opts metav1.GetOptions) (*autoscalingv1.Scale, error)
	UpdateScale(ctx context.Context, name string, sc *autoscalingv1.Scale, opts metav1.UpdateOptions) (*autoscalingv1.Scale, error)
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (T, error)
}

func newKindAPI(kind Kind, scale, status kubernetes.Interface) kindAPI {
	if kind == StatefulSets {
		return bindKindAPI(func(ns string) kindClient[*appsv1.StatefulSet] { return scale.AppsV1().StatefulSets(ns) },
			func(ns string) kindClient[*appsv1.StatefulSet] { return status.AppsV1().StatefulSets(ns) })
	}
	return bindKindAPI(func(ns string) kindClient[*appsv1.Deployment] { return scale.AppsV1().Deployments(ns) },
		func(ns string) kindClient[*appsv1.Deployment] { return status.AppsV1().Deployments(ns) })
}

// customKindAPI binds kindAPI to a custom kind's scale subresource and
// metadata.
func customKindAPI(k *CustomKind) kindAPI {
	gr := k.Resource.GroupResource()
	return kindAPI{
		getScale: func(ctx context.Context, namespace, name string) (*autoscalingv1.Scale, error) {
			return k.Scales.Scales(namespace).Get(ctx, gr, name, metav1.GetOptions{})
		},
		updateScale: func(ctx context.Context, sc *autoscalingv1.Scale) error {
			_, err := k.Scales.Scales(sc.Namespace).Update(ctx, gr, sc, metav1.UpdateOptions{FieldManager: FieldManager})
			return err
		},
		mergePatch: func(ctx context.Context, namespace, name string, patch []byte) error {
			_, err := k.Metadata.Resource(k.Resource).Namespace(namespace).Patch(ctx, name, types.MergePatchType, patch,
				metav1.PatchOptions{FieldManager: FieldManager})
			return err
		},
	}
}

func bindKindAPI[T any](scale, status func(namespace string) kindClient[T]) kindAPI {
	return kindAPI{
		getScale: func(ctx context.Context, namespace, name string) (*autoscalingv1.Scale, error) {
			return scale(namespace).GetScale(ctx, name, metav1.GetOptions{})
		},
		updateScale: func(ctx context.Context, sc *autoscalingv1.Scale) error {
			_, err := scale(sc.Namespace).UpdateScale(ctx, sc.Name, sc, metav1.UpdateOptions{FieldManager: FieldManager})
			return err
		},
		// A JSON merge patch of the workload: its status annotation, the
		// only change the chart's admission policy allows.
		mergePatch: func(ctx context.Context, namespace, name string, patch []byte) error {
			_, err := status(namespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
			return err
		},
	}
}

// leanWorkload keeps only what the controller reads of a workload, so the
// cache does not hold every pod template and last-applied annotation of
// the cluster: identity, the autoscale.io/* annotations of a managed
// workload (autoscale.io/reactive alone of the others), and spec.replicas
// (decisions read nothing of the status).
func leanWorkload(obj any) (any, error) {
	w, ok := obj.(workload)
	if !ok {
		return obj, nil
	}
	var ann map[string]string
	managed := scaler.Managed(w.GetAnnotations())
	for k, v := range w.GetAnnotations() {
		// Of a workload not opted in, only the opt-in itself (what
		// its value is, to warn when it is not true or false): the rest
		// is nobody's business yet and may be large.
		if strings.HasPrefix(k, scaler.AnnotationPrefix) && (managed || k == scaler.AnnotationPrefix+scaler.KeyReactive) {
			if ann == nil {
				ann = map[string]string{}
			}
			ann[k] = v
		}
	}
	meta := metav1.ObjectMeta{
		Name: w.GetName(), Namespace: w.GetNamespace(), UID: w.GetUID(), ResourceVersion: w.GetResourceVersion(),
		Generation: w.GetGeneration(), DeletionTimestamp: w.GetDeletionTimestamp(), Annotations: ann,
	}
	switch o := w.(type) {
	case *metav1.PartialObjectMetadata:
		return &metav1.PartialObjectMetadata{TypeMeta: o.TypeMeta, ObjectMeta: meta}, nil
	case *appsv1.Deployment:
		return &appsv1.Deployment{TypeMeta: o.TypeMeta, ObjectMeta: meta, Spec: appsv1.DeploymentSpec{Replicas: o.Spec.Replicas}}, nil
	case *appsv1.StatefulSet:
		return &appsv1.StatefulSet{TypeMeta: o.TypeMeta, ObjectMeta: meta, Spec: appsv1.StatefulSetSpec{Replicas: o.Spec.Replicas}}, nil
	}
	return obj, nil
}
