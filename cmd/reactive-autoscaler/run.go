package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
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
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"

	"github.com/autoscale-io/reactive-autoscaler/pkg/leader"
	"github.com/autoscale-io/reactive-autoscaler/pkg/metrics"
	"github.com/autoscale-io/reactive-autoscaler/pkg/metricsauth"
	"github.com/autoscale-io/reactive-autoscaler/pkg/predict"
	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
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

func run(ctx context.Context, o *Options) error {
	logger := klog.FromContext(ctx)
	logger.Info("Starting reactive-autoscaler", "version", version, "commit", commit)

	restCfg, err := clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
	if err != nil {
		return fmt.Errorf("building the API server config: %w", err)
	}
	restCfg.QPS, restCfg.Burst = o.KubeAPIQPS, o.KubeAPIBurst
	identity := leaderIdentity()
	// The identity in the user agent names this replica in the API server's
	// audit log; managedFields still say "reactive-autoscaler".
	restCfg.UserAgent = "reactive-autoscaler/" + version + " (" + identity + ")"
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("building the API client: %w", err)
	}

	tp, shutdownTracing, err := setupTracing(ctx)
	if err != nil {
		return err
	}
	defer func() {
		flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdownTracing(flushCtx); err != nil {
			logger.Error(err, "Flushing traces")
		}
	}()
	if tracingEnabled() {
		logger.Info("Exporting traces over OTLP (OTEL_EXPORTER_OTLP_* variables)")
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	rec := metrics.NewRecorder(reg)
	promClient, err := prometheusClient(o)
	if err != nil {
		return err
	}

	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartStructuredLogging(4)
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "reactive-autoscaler"})

	source := metrics.NewSource(promv1.NewAPI(promClient), o.PrometheusTimeout.Duration, rec)
	var batch, fastBatch watch.BatchSource
	if o.BatchQueries {
		batch = metrics.NewBatch(source, scaler.GroupedDefaultQuery, "namespace", "service")
		fastBatch = metrics.NewBatch(source, scaler.GroupedFastQuery, "namespace", "service")
	}
	external, err := predictorClient(o)
	if err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(o.Namespace))
	// With leader election, every write first asks the elector: a replica
	// that has seen another holder writes nothing more, even before its
	// renew deadline ends it.
	var mayWrite atomic.Pointer[leader.Elector]
	var fence func() bool
	if o.LeaderElect {
		fence = func() bool {
			e := mayWrite.Load()
			return e != nil && e.IsLeader()
		}
	}
	base := watch.Config{
		Client:          client,
		HPAs:            factory.Autoscaling().V2().HorizontalPodAutoscalers(),
		Source:          source,
		Batch:           batch,
		FastBatch:       fastBatch,
		QueryPolicy:     watch.QueryPolicy(o.QueryPolicy),
		AllowedQueries:  o.AllowedQueries,
		MinInterval:     o.MinInterval.Duration,
		FullCache:       !o.LeanCache,
		Recorder:        recorder,
		Monitor:         rec,
		Defaults:        o.Defaults,
		SpikeWindow:     o.SpikeWindow.Duration,
		SpikeResolution: o.SpikeResolution.Duration,
		MayWrite:        fence,
		Tracer:          tp.Tracer(watch.TracerName),
		Builtin:         predict.DefaultForecaster,
		External:        external,
	}
	ctrl, err := controllers(o, base, factory)
	if err != nil {
		return err
	}
	// Caches warm on every replica, so that a new leader starts at once.
	factory.Start(ctx.Done())
	defer factory.Shutdown()

	var leading atomic.Bool
	srv, err := metricsServer(o, client, reg, ctrl, &leading, logger)
	if err != nil {
		return err
	}
	srvErr := make(chan error, 2)
	go func() { srvErr <- serve(srv) }()
	defer func() {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()

	if o.WebhookBindAddress != "" {
		hook, err := webhookServer(o, ctrl, rec, logger)
		if err != nil {
			return err
		}
		go func() { srvErr <- serve(hook) }()
		defer func() {
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = hook.Shutdown(shutdownCtx)
		}()
		logger.Info("Serving the Alertmanager webhook", "address", o.WebhookBindAddress, "path", webhook.Path, "tls", o.WebhookTLSCertFile != "")
	}

	lead := func(ctx context.Context) {
		leading.Store(true)
		rec.SetLeader(true)
		if err := ctrl.Run(ctx, o.Workers); err != nil {
			logger.Error(err, "Controller stopped")
		}
	}
	if !o.LeaderElect {
		go lead(ctx)
		return waitForShutdown(ctx, logger, srvErr)
	}

	elector, err := leader.New(leader.Config{
		Client:        client,
		Namespace:     o.LeaderElectionNamespace,
		Name:          o.LeaderElectionID,
		Identity:      identity,
		LeaseDuration: o.LeaseDuration.Duration,
		RenewDeadline: o.RenewDeadline.Duration,
		RetryPeriod:   o.RetryPeriod.Duration,
		EventRecorder: recorder,
		OnStartedLeading: func(ctx context.Context) {
			logger.Info("Became the leader", "identity", identity)
			lead(ctx)
		},
		OnStoppedLeading: func() {
			leading.Store(false)
			rec.SetLeader(false)
			if ctx.Err() != nil {
				logger.Info("Released the leader lease on shutdown", "identity", identity)
				return
			}
			// Another replica may lead now: stop before writing anything.
			logger.Error(nil, "Lost the leader lease; exiting", "identity", identity)
			klog.FlushAndExit(klog.ExitFlushTimeout, 1)
		},
		OnNewLeader: func(id string) { logger.Info("Leader is", "identity", id) },
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	mayWrite.Store(elector)
	logger.Info("Waiting for the leader lease", "lease", o.LeaderElectionNamespace+"/"+o.LeaderElectionID, "identity", identity)
	elected := make(chan struct{})
	go func() {
		defer close(elected)
		if err := elector.Run(ctx); err != nil {
			srvErr <- err
		}
	}()
	err = waitForShutdown(ctx, logger, srvErr)
	// On SIGTERM the elector releases the Lease so that another replica
	// takes over at once; do not exit before it has.
	select {
	case <-elected:
	case <-time.After(o.RenewDeadline.Duration):
		logger.Info("The leader lease was not released in time; the next leader waits for it to expire")
	}
	return err
}

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
			return nil, fmt.Errorf("the %s controller: %w", kind.Name, err)
		}
		group = append(group, c)
	}
	return group, nil
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

// metricsServer builds the server of /metrics and the probes: /metrics
// behind the API server's reviews with --metrics-auth=kubernetes, and TLS
// from files re-read on renewal.
func metricsServer(o *Options, client kubernetes.Interface, reg *prometheus.Registry, ctrl watch.Group, leading *atomic.Bool,
	logger klog.Logger) (*http.Server, error) {
	var guard func(http.Handler) http.Handler
	if o.MetricsAuth == "kubernetes" {
		g, err := metricsauth.New(client, logger.WithName("metrics-auth"))
		if err != nil {
			return nil, err
		}
		guard = g.Wrap
	}
	srv := &http.Server{Addr: o.MetricsBindAddress, Handler: httpHandler(reg, ctrl, leading, guard), ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	if o.MetricsTLSCertFile != "" {
		certs, err := webhook.NewCertFiles(o.MetricsTLSCertFile, o.MetricsTLSKeyFile, nil)
		if err != nil {
			return nil, fmt.Errorf("--metrics-tls-cert-file: %w", err)
		}
		srv.TLSConfig = &tls.Config{GetCertificate: certs.GetCertificate, MinVersion: tls.VersionTLS12}
	}
	logger.Info("Serving metrics and health", "address", o.MetricsBindAddress, "auth", o.MetricsAuth, "tls", o.MetricsTLSCertFile != "")
	return srv, nil
}

// serve runs srv, over TLS when it has a TLS configuration.
func serve(srv *http.Server) error {
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
	hook := &http.Server{Addr: o.WebhookBindAddress, Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	if o.WebhookTLSCertFile != "" {
		certs, err := webhook.NewCertFiles(o.WebhookTLSCertFile, o.WebhookTLSKeyFile, nil)
		if err != nil {
			return nil, err
		}
		hook.TLSConfig = &tls.Config{GetCertificate: certs.GetCertificate, MinVersion: tls.VersionTLS12}
	}
	return hook, nil
}
