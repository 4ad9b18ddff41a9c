package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/autoscale-io/reactive-autoscaler/pkg/metrics"
	"github.com/autoscale-io/reactive-autoscaler/pkg/metrics/promtest"
	"github.com/autoscale-io/reactive-autoscaler/pkg/watch"
	"github.com/autoscale-io/reactive-autoscaler/pkg/watch/watchtest"
)

// collector is an httptest OTLP/HTTP trace receiver.
type collector struct {
	mu    sync.Mutex
	spans []*tracepb.Span
	posts int
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	var req coltracepb.ExportTraceServiceRequest
	if err != nil || r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
		http.Error(w, "not an OTLP trace export", http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.posts++
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			c.spans = append(c.spans, ss.GetSpans()...)
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Write(out)
}

// runOneScale runs a controller configured by cfg (its tracer) until it
// has scaled an annotated Deployment from 1 to 3 replicas.
func runOneScale(t *testing.T, ctx context.Context, cfgTracer watch.Config) {
	t.Helper()
	replicas := int32(1)
	client := fake.NewClientset(&appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "frontend", Namespace: "shop", Annotations: map[string]string{"autoscale.io/reactive": "true"}},
		Spec:       appsv1.DeploymentSpec{Replicas: &replicas},
	})
	watchtest.InstallScale(client)
	prom := promtest.New()
	defer prom.Close()
	prom.Set(promtest.Value(45)) // seed table: 3 replicas
	pc, err := api.NewClient(api.Config{Address: prom.URL})
	if err != nil {
		t.Fatal(err)
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	cfg := cfgTracer
	cfg.Client, cfg.Informer = client, factory.Apps().V1().Deployments().Informer()
	cfg.Source = metrics.NewSource(promv1.NewAPI(pc), time.Second, nil)
	cfg.Recorder = record.NewFakeRecorder(100)
	ctrl, err := watch.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	factory.Start(runCtx.Done())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		ctrl.Run(runCtx, 1)
	}()
	err = wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		d, err := client.AppsV1().Deployments("shop").Get(ctx, "frontend", metav1.GetOptions{})
		return err == nil && *d.Spec.Replicas == 3, nil
	})
	if err != nil {
		t.Fatal("the controller never scaled frontend to 3")
	}
	cancel()
	<-stopped // the evaluation, and its span, have ended
	factory.Shutdown()
}

func TestTracesGoToTheOTLPEndpoint(t *testing.T) {
	col := &collector{}
	srv := httptest.NewServer(col)
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	ctx := context.Background()
	tp, shutdown, err := setupTracing(ctx)
	if err != nil {
		t.Fatal(err)
	}
	runOneScale(t, ctx, watch.Config{Tracer: tp.Tracer(watch.TracerName)})
	if err := shutdown(ctx); err != nil { // flushes the batch
		t.Fatal(err)
	}

	col.mu.Lock()
	defer col.mu.Unlock()
	var eval *tracepb.Span
	for _, s := range col.spans {
		if s.GetName() == "evaluate" {
			eval = s
			break
		}
	}
	if eval == nil {
		t.Fatalf("no evaluate span among %d exported", len(col.spans))
	}
	attrs := map[string]string{}
	for _, kv := range eval.GetAttributes() {
		attrs[kv.GetKey()] = kv.GetValue().String()
	}
	for _, k := range []string{"k8s.namespace.name", "k8s.deployment.name", "autoscale.rps", "autoscale.decision", "autoscale.reason", "autoscale.desired_replicas"} {
		if _, ok := attrs[k]; !ok {
			t.Errorf("evaluate span lacks %s: %v", k, attrs)
		}
	}
	children := map[string]bool{}
	for _, s := range col.spans {
		if string(s.GetParentSpanId()) == string(eval.GetSpanId()) && string(s.GetTraceId()) == string(eval.GetTraceId()) {
			children[s.GetName()] = true
		}
	}
	for _, want := range []string{"prometheus.query", "scale.write"} {
		if !children[want] {
			t.Errorf("evaluate span has no %s child (children: %v)", want, children)
		}
	}
}

func TestNoTracingWithoutTheVariable(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	tp, shutdown, err := setupTracing(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(context.Background())
	_, span := tp.Tracer(watch.TracerName).Start(context.Background(), "evaluate")
	defer span.End()
	if span.IsRecording() || span.SpanContext().IsValid() {
		t.Error("with no OTEL_EXPORTER_OTLP_ENDPOINT, spans are recorded (and would be exported)")
	}
	col := &collector{}
	srv := httptest.NewServer(col)
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_SDK_DISABLED", "true")
	if tracingEnabled() {
		t.Error("OTEL_SDK_DISABLED=true does not switch tracing off")
	}
}
