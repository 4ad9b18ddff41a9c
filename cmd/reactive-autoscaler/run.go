package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	promconfig "github.com/prometheus/common/config"
	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel/trace"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/scale"
	"k8s.io/client-go/tools/record"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"

	"github.com/autoscale-io/reactive-autoscaler/pkg/leader"
	"github.com/autoscale-io/reactive-autoscaler/pkg/metrics"
	"github.com/autoscale-io/reactive-autoscaler/pkg/metricsauth"
	"github.com/autoscale-io/reactive-autoscaler/pkg/predict"
	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
	"github.com/autoscale-io/reactive-autoscaler/pkg/servingcert"
	"github.com/autoscale-io/reactive-autoscaler/pkg/watch"
	"github.com/autoscale-io/reactive-autoscaler/pkg/webhook"
)

func newRunCommand() *cobra.Command {
	o := newOptions()
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the controller (in-cluster, or against --kubeconfig)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Complete(cmd.Flags()); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			if err := logsapi.ValidateAndApply(o.Logging, nil); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return run(ctx, o)
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// app is one controller process, built once: its API and Prometheus
// clients, its own metrics, the Event recorder, a Controller per kind and,
// with leader election, the elector whose IsLeader fences every write.
type app struct {
	o        *Options
	logger   klog.Logger
	identity string
	reg      *prometheus.Registry
	rec      *metrics.Recorder
	recorder record.EventRecorder
	factory  informers.SharedInformerFactory
	// metaFactory has the metadata-only informers of --kinds (nil: none).
	metaFactory metadatainformer.SharedInformerFactory
	ctrl        watch.Group
	elector     *leader.Elector // nil without leader election
	leading     atomic.Bool

	// client writes the scale subresource and feeds the informers;
	// background patches the status and posts Events; leaderClient renews
	// the Lease. Each has its own rate limiter (--kube-api-qps,
	// --kube-api-burst), so that a burst of spikes never waits behind
	// status writes and nothing delays a Lease renewal. reviewClient asks
	// the token and access reviews of /metrics requests, at reviewQPS: a
	// flood of requests with random tokens delays nothing else.
	client, background, leaderClient, reviewClient kubernetes.Interface
}

// run builds the process, serves HTTP, and evaluates while it leads.
func run(ctx context.Context, o *Options) error {
	logger := klog.FromContext(ctx)
	logger.Info("Starting reactive-autoscaler", "version", version, "commit", commit)
	a := &app{o: o, logger: logger, identity: leaderIdentity(), reg: prometheus.NewRegistry()}
	shutdown, err := a.build(ctx)
	defer shutdown()
	if err != nil {
		return err
	}
	// Caches warm on every replica, so that a new leader starts at once.
	a.factory.Start(ctx.Done())
	defer a.factory.Shutdown()
	if a.metaFactory != nil {
		a.metaFactory.Start(ctx.Done())
		defer a.metaFactory.Shutdown()
	}
	srvErr, stopServing, err := a.serve()
	defer stopServing()
	if err != nil {
		return err
	}
	return a.runElected(ctx, srvErr)
}

// build makes the clients, the tracer, the Event recorder, the Controllers
// and the elector. shutdown flushes traces and Events; call it even when
// build fails.
func (a *app) build(ctx context.Context) (shutdown func(), err error) {
	o := a.o
	var closers []func()
	shutdown = func() {
		for _, c := range slices.Backward(closers) {
			c()
		}
	}
	restCfg, err := restConfig(o.Kubeconfig)
	if err != nil {
		return shutdown, err
	}
	restCfg.QPS, restCfg.Burst = o.KubeAPIQPS, o.KubeAPIBurst
	// The identity in the user agent names this replica in the API server's
	// audit log; managedFields still say "reactive-autoscaler".
	restCfg.UserAgent = "reactive-autoscaler/" + version + " (" + a.identity + ")"
	for _, c := range []*kubernetes.Interface{&a.client, &a.background, &a.leaderClient} {
		// NewForConfig gives each client a rate limiter of its own.
		if *c, err = kubernetes.NewForConfig(restCfg); err != nil {
			return shutdown, fmt.Errorf("building the API client: %w", err)
		}
	}
	reviewCfg := rest.CopyConfig(restCfg)
	reviewCfg.QPS, reviewCfg.Burst = reviewQPS, reviewBurst
	if a.reviewClient, err = kubernetes.NewForConfig(reviewCfg); err != nil {
		return shutdown, fmt.Errorf("building the API client: %w", err)
	}
	tp, shutdownTracing, err := setupTracing(ctx)
	if err != nil {
		return shutdown, err
	}
	closers = append(closers, func() {
		flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdownTracing(flushCtx); err != nil {
			a.logger.Error(err, "Flushing traces")
		}
	})
	if tracingEnabled() {
		a.logger.Info("Exporting traces over OTLP (OTEL_EXPORTER_OTLP_* variables)")
	}
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.rec = metrics.NewRecorder(a.reg)
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartStructuredLogging(4)
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: a.background.CoreV1().Events("")})
	closers = append(closers, broadcaster.Shutdown)
	a.recorder = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "reactive-autoscaler"})

	base, err := a.controllerConfig(tp.Tracer(watch.TracerName))
	if err != nil {
		return shutdown, err
	}
	a.factory = informers.NewSharedInformerFactoryWithOptions(a.client, 0, informers.WithNamespace(o.Namespace))
	base.HPAs = a.factory.Autoscaling().V2().HorizontalPodAutoscalers()
	if a.ctrl, err = controllers(o, base, a.factory); err != nil {
		return shutdown, err
	}
	if len(o.Kinds) > 0 {
		custom, err := a.customControllers(restCfg, base)
		if err != nil {
			return shutdown, err
		}
		a.ctrl = append(a.ctrl, custom...)
	}
	if o.LeaderElect {
		a.elector, err = a.newElector(ctx)
	}
	return shutdown, err
}

// controllerConfig is what every kind's Controller shares: Prometheus (one
// query per target, or the grouped queries), the predictors, the policies,
// and, with leader election, the fence.
func (a *app) controllerConfig(tracer trace.Tracer) (watch.Config, error) {
	o := a.o
	promClient, err := prometheusClient(o)
	if err != nil {
		return watch.Config{}, err
	}
	source := metrics.NewSource(promv1.NewAPI(promClient), o.PrometheusTimeout.Duration, a.rec)
	var batches func(string, func() map[string]bool, ...string) watch.BatchSource
	if o.BatchQueries {
		batches = func(grouped string, keys func() map[string]bool, labels ...string) watch.BatchSource {
			b := metrics.NewBatch(source, grouped, labels...)
			b.Keys = keys
			return b
		}
	}
	external, err := predictorClient(o)
	if err != nil {
		return watch.Config{}, err
	}
	cfg := watch.Config{
		Client: a.client, StatusClient: a.background, Source: source, Batches: batches,
		QueryPolicy: watch.QueryPolicy(o.QueryPolicy), AllowedQueries: o.AllowedQueries, MinInterval: o.MinInterval.Duration,
		NamespaceWorkers: namespaceWorkers(o),
		FullCache:        !o.LeanCache, Recorder: a.recorder, Monitor: a.rec, Defaults: o.Defaults,
		SpikeWindow: o.SpikeWindow.Duration, SpikeResolution: o.SpikeResolution.Duration,
		Tracer: tracer, Builtin: predict.DefaultSeasonal(), External: external,
	}
	if o.LeaderElect {
		// Every write first asks the elector (built next, before anything
		// runs): a replica that has seen another holder, or whose renewals
		// stopped landing, writes nothing more.
		cfg.MayWrite = func() bool { return a.elector.IsLeader() }
	}
	return cfg, nil
}

// serve starts the metrics and probes server and, when configured, the
// webhook's; their errors arrive on the channel. stop shuts both down.
func (a *app) serve() (errs <-chan error, stop func(), err error) {
	srvErr := make(chan error, 2)
	var servers []*http.Server
	stop = func() {
		for _, srv := range servers {
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = srv.Shutdown(shutdownCtx)
			cancel()
		}
	}
	srv, err := metricsServer(a.o, a.reviewClient, a.reg, a.ctrl, &a.leading, a.logger)
	if err != nil {
		return srvErr, stop, err
	}
	servers = append(servers, srv)
	if a.o.WebhookBindAddress != "" {
		hook, err := webhookServer(a.o, a.ctrl, a.rec, a.logger)
		if err != nil {
			return srvErr, stop, err
		}
		servers = append(servers, hook)
		a.logger.Info("Serving the Alertmanager webhook", "address", a.o.WebhookBindAddress, "path", webhook.Path, "tls", a.o.WebhookTLSCertFile != "")
	}
	for _, srv := range servers {
		go func() { srvErr <- serveHTTP(srv) }()
	}
	return srvErr, stop, nil
}

// lead runs the Controllers until ctx ends (leadership, or the process).
func (a *app) lead(ctx context.Context) {
	a.leading.Store(true)
	a.rec.SetLeader(true)
	if err := a.ctrl.Run(ctx, a.o.Workers); err != nil {
		a.logger.Error(err, "Controller stopped")
	}
}

// newElector campaigns for the Lease; losing it ends the process before it
// writes anything more.
func (a *app) newElector(ctx context.Context) (*leader.Elector, error) {
	o := a.o
	e, err := leader.New(leader.Config{
		Client: a.leaderClient, Namespace: o.LeaderElectionNamespace, Name: o.LeaderElectionID, Identity: a.identity,
		LeaseDuration: o.LeaseDuration.Duration, RenewDeadline: o.RenewDeadline.Duration, RetryPeriod: o.RetryPeriod.Duration,
		EventRecorder: a.recorder,
		OnStartedLeading: func(ctx context.Context) {
			a.logger.Info("Became the leader", "identity", a.identity)
			a.lead(ctx)
		},
		OnStoppedLeading: func() {
			a.leading.Store(false)
			a.rec.SetLeader(false)
			if ctx.Err() != nil {
				a.logger.Info("Released the leader lease on shutdown", "identity", a.identity)
				return
			}
			// Another replica may lead now: stop before writing anything.
			a.logger.Error(nil, "Lost the leader lease; exiting", "identity", a.identity)
			klog.FlushAndExit(klog.ExitFlushTimeout, 1)
		},
		OnNewLeader: func(id string) { a.logger.Info("Leader is", "identity", id) },
	})
	if err != nil {
		return nil, fmt.Errorf("leader election: %w", err)
	}
	return e, nil
}

// runElected evaluates at once without leader election, else while this
// replica holds the Lease, until ctx ends or a server fails.
func (a *app) runElected(ctx context.Context, srvErr <-chan error) error {
	if a.elector == nil {
		go a.lead(ctx)
		return waitForShutdown(ctx, a.logger, srvErr)
	}
	a.logger.Info("Waiting for the leader lease", "lease", a.o.LeaderElectionNamespace+"/"+a.o.LeaderElectionID, "identity", a.identity)
	elected := make(chan struct{})
	go func() {
		defer close(elected)
		// Returns when ctx ends (after releasing the Lease) or leadership
		// is lost (OnStoppedLeading has exited the process by then).
		a.elector.Run(ctx)
	}()
	err := waitForShutdown(ctx, a.logger, srvErr)
	// On SIGTERM the elector releases the Lease so that another replica
	// takes over at once; do not exit before it has.
	select {
	case <-elected:
	case <-time.After(a.o.RenewDeadline.Duration):
		a.logger.Info("The leader lease was not released in time; the next leader waits for it to expire")
	}
	return err
}

// waitForShutdown returns when ctx ends or a server fails.
func waitForShutdown(ctx context.Context, logger klog.Logger, srvErr <-chan error) error {
	select {
	case <-ctx.Done():
		logger.Info("Shutting down")
		return nil
	case err := <-srvErr:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serving metrics and health: %w", err)
	}
}

// httpHandler serves /metrics (behind guard, when there is one), /healthz
// (the process is alive) and /readyz (the cache has synced; the body says
// whether this replica leads). The probes stay open for the kubelet.
func httpHandler(reg *prometheus.Registry, ctrl watch.Group, leading *atomic.Bool, guard func(http.Handler) http.Handler) http.Handler {
	mux := http.NewServeMux()
	var metricsHandler http.Handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	if guard != nil {
		metricsHandler = guard(metricsHandler)
	}
	mux.Handle("/metrics", metricsHandler)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ctrl.HasSynced() {
			http.Error(w, "cache not synced", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "ok leader=%t\n", leading.Load())
	})
	return mux
}

// leaderIdentity is the pod name in a cluster, host and pid elsewhere.
func leaderIdentity() string {
	if name := os.Getenv("POD_NAME"); name != "" {
		return name
	}
	host, _ := os.Hostname()
	return host + "_" + strconv.Itoa(os.Getpid())
}

// controllers builds one Controller per kind from base: Deployments, and
// StatefulSets unless --statefulsets=false. They share Prometheus, the
// predictors, the HPA informer and the fence.
func controllers(o *Options, base watch.Config, factory informers.SharedInformerFactory) (watch.Group, error) {
	kinds := []watch.Kind{watch.Deployments}
	if o.StatefulSets {
		kinds = append(kinds, watch.StatefulSets)
	}
	var group watch.Group
	for _, kind := range kinds {
		cfg := base
		cfg.Kind = kind
		if kind == watch.StatefulSets {
			cfg.Informer = factory.Apps().V1().StatefulSets().Informer()
		} else {
			cfg.Informer = factory.Apps().V1().Deployments().Informer()
		}
		c, err := watch.New(cfg)
		if err != nil {
			return nil, fmt.Errorf("the %s controller: %w", kind, err)
		}
		group = append(group, c)
	}
	return group, nil
}

// customControllers builds a Controller for each --kinds resource (see
// resolveKinds). Its objects come through a metadata-only informer (the
// cache holds no specs), its replicas through the scale client.
func (a *app) customControllers(restCfg *rest.Config, base watch.Config) (watch.Group, error) {
	kinds, err := resolveKinds(restCfg, a.client, a.o.Kinds)
	if err != nil {
		return nil, err
	}
	a.metaFactory = metadatainformer.NewFilteredSharedInformerFactory(kinds.meta, 0, a.o.Namespace, nil)
	var group watch.Group
	for _, k := range kinds.list {
		cfg := base
		cfg.Kind = watch.Kind(k.kind)
		cfg.Informer = a.metaFactory.ForResource(k.gvr).Informer()
		cfg.Custom = &watch.CustomKind{Resource: k.gvr, Scales: kinds.scales, Metadata: kinds.meta}
		c, err := watch.New(cfg)
		if err != nil {
			return nil, fmt.Errorf("the %s controller: %w", k.kind, err)
		}
		a.logger.Info("Scaling a kind through its /scale subresource", "kind", k.kind, "resource", k.gvr.String())
		group = append(group, c)
	}
	return group, nil
}

// customKinds are the --kinds resources as this API server serves them,
// with the clients that reach them.
type customKinds struct {
	list   []customKind
	scales scale.ScalesGetter
	meta   metadata.Interface
}

type customKind struct {
	gvr  schema.GroupVersionResource
	kind string
}

// resolveKinds finds each resource.group on the API server: its preferred
// version and kind, which must have a /scale subresource.
func resolveKinds(restCfg *rest.Config, client kubernetes.Interface, kinds []string) (*customKinds, error) {
	groups, err := restmapper.GetAPIGroupResources(client.Discovery())
	if err != nil {
		return nil, fmt.Errorf("--kinds: discovering the API server's resources: %w", err)
	}
	mapper := restmapper.NewDiscoveryRESTMapper(groups)
	out := &customKinds{}
	if out.scales, err = scale.NewForConfig(restCfg, mapper, dynamic.LegacyAPIPathResolverFunc, scale.NewDiscoveryScaleKindResolver(client.Discovery())); err != nil {
		return nil, fmt.Errorf("--kinds: the scale client: %w", err)
	}
	if out.meta, err = metadata.NewForConfig(restCfg); err != nil {
		return nil, fmt.Errorf("--kinds: the metadata client: %w", err)
	}
	for _, k := range kinds {
		gr, err := parseKind(k)
		if err != nil {
			return nil, err
		}
		gvk, err := mapper.KindFor(gr.WithVersion(""))
		if err != nil {
			return nil, fmt.Errorf("--kinds %q: not served by this API server: %w", k, err)
		}
		resources, err := client.Discovery().ServerResourcesForGroupVersion(gvk.GroupVersion().String())
		if err != nil {
			return nil, fmt.Errorf("--kinds %q: %w", k, err)
		}
		if !slices.ContainsFunc(resources.APIResources, func(r metav1.APIResource) bool { return r.Name == gr.Resource+"/scale" }) {
			return nil, fmt.Errorf("--kinds %q: %s has no /scale subresource", k, gvk.Kind)
		}
		out.list = append(out.list, customKind{gvr: gr.WithVersion(gvk.Version), kind: gvk.Kind})
	}
	return out, nil
}

// prometheusClient is the query API's client: the URL, and the
// prometheusHTTPConfig block (TLS, credentials, headers, proxy) when set.
func prometheusClient(o *Options) (api.Client, error) {
	cfg := promconfig.DefaultHTTPClientConfig
	if o.PrometheusHTTP != nil {
		cfg = o.PrometheusHTTP.HTTPClientConfig
	}
	rt, err := promconfig.NewRoundTripperFromConfig(cfg, "reactive-autoscaler")
	if err != nil {
		return nil, fmt.Errorf("prometheusHTTPConfig: %w", err)
	}
	c, err := api.NewClient(api.Config{Address: o.PrometheusURL, RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("--prometheus-url: %w", err)
	}
	return c, nil
}

// predictorClient is the external predictor's client, nil without
// --predictor-url; with predictorHTTPConfig, its redirects are still never
// followed (a target's history is never re-posted elsewhere).
func predictorClient(o *Options) (scaler.Predictor, error) {
	if o.PredictorURL == "" {
		return nil, nil
	}
	c := &predict.Client{URL: o.PredictorURL, Timeout: o.PredictorTimeout.Duration}
	if o.PredictorHTTP != nil {
		cfg := o.PredictorHTTP.HTTPClientConfig
		cfg.FollowRedirects = false
		hc, err := promconfig.NewClientFromConfig(cfg, "reactive-autoscaler")
		if err != nil {
			return nil, fmt.Errorf("predictorHTTPConfig: %w", err)
		}
		c.HTTP = hc
	}
	return c, nil
}

// namespaceWorkers is the per-namespace limit: none (every worker) when
// the controller watches one namespace, where there is no other tenant
// to leave workers to.
func namespaceWorkers(o *Options) int {
	if o.Namespace != "" && o.NamespaceWorkers == 0 {
		return o.Workers
	}
	return o.NamespaceWorkers
}

// The rate of /metrics reviews: a scraper's answers are cached for
// minutes, so a few a second is plenty; beyond the guard's bound on
// reviews in flight, requests get 429.
const (
	reviewQPS   = 5
	reviewBurst = 10
)

// metricsServer builds the server of /metrics and the probes: /metrics
// behind the API server's reviews with --metrics-auth=kubernetes, and TLS
// from files re-read on renewal.
func metricsServer(o *Options, client kubernetes.Interface, reg *prometheus.Registry, ctrl watch.Group, leading *atomic.Bool,
	logger klog.Logger) (*http.Server, error) {
	var guard func(http.Handler) http.Handler
	if o.MetricsAuth == "kubernetes" {
		g, err := metricsauth.New(client, logger.WithName("metrics-auth"), metricsauth.Options{Audiences: o.MetricsTokenAudiences})
		if err != nil {
			return nil, err
		}
		guard = g.Wrap
	}
	srv, err := newServer(o.MetricsBindAddress, httpHandler(reg, ctrl, leading, guard), o.MetricsTLSCertFile, o.MetricsTLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("--metrics-tls-cert-file: %w", err)
	}
	logger.Info("Serving metrics and health", "address", o.MetricsBindAddress, "auth", o.MetricsAuth, "tls", o.MetricsTLSCertFile != "")
	return srv, nil
}

// newServer is an HTTP server with the timeouts both of ours use and, when
// certFile is set, TLS from files re-read when they change.
func newServer(addr string, h http.Handler, certFile, keyFile string) (*http.Server, error) {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	if certFile != "" {
		certs, err := servingcert.NewFiles(certFile, keyFile, nil)
		if err != nil {
			return nil, err
		}
		srv.TLSConfig = &tls.Config{GetCertificate: certs.GetCertificate, MinVersion: tls.VersionTLS12}
	}
	return srv, nil
}

// serveHTTP runs srv, over TLS when it has a TLS configuration.
func serveHTTP(srv *http.Server) error {
	if srv.TLSConfig != nil {
		return srv.ListenAndServeTLS("", "")
	}
	return srv.ListenAndServe()
}

// webhookServer builds the Alertmanager webhook's server: the handler
// behind its token, and TLS from files re-read when cert-manager renews
// the Secret (no restart).
func webhookServer(o *Options, ctrl webhook.Targets, rec webhook.Monitor, logger klog.Logger) (*http.Server, error) {
	token, err := webhook.NewTokenFile(o.WebhookTokenFile, nil)
	if err != nil {
		return nil, fmt.Errorf("--webhook-token-file: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST "+webhook.Path, webhook.NewHandler(webhook.Config{
		Targets: ctrl, Token: token, Monitor: rec, DedupWindow: o.WebhookDedupWindow.Duration, Logger: logger.WithName("webhook"),
	}))
	return newServer(o.WebhookBindAddress, mux, o.WebhookTLSCertFile, o.WebhookTLSKeyFile)
}
