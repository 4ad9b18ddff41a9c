// Command demo-app is the demo's `frontend` service: it serves HTTP, exports
// http_requests_total{service="..."} for Prometheus, and drives real load
// against itself over loopback with a profile (steady, ramp, spike, stop)
// that can be changed while it runs:
//
//	demo-app serve --listen 127.0.0.1:8081 --service frontend
//	demo-app load --url http://127.0.0.1:8081 --profile ramp --rps 120 --duration 60s
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "load":
		err = load(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo-app:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: demo-app serve [flags] | demo-app load [flags]   (-h for flags)")
	os.Exit(2)
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:8081", "address to serve on")
	service := fs.String("service", "frontend", `value of the "service" label of http_requests_total`)
	profile := fs.String("profile", "stop", "initial load profile: steady, ramp, spike or stop")
	rps := fs.Float64("rps", 0, "initial target requests per second")
	duration := fs.Duration("duration", time.Minute, "ramp: time to reach --rps; spike: how long it lasts")
	capacity := fs.Float64("capacity", 0, "requests per second this replica serves; more are shed with 503 and counted as code=\"503\" (0 = no limit)")
	target := fs.String("target", "", "URL the load generator sends to (empty: this server); a Service's, to load the pods behind it")
	_ = fs.Parse(args)

	reg := prometheus.NewRegistry()
	gen := newGenerator("http://"+*listen+"/", false)
	if *target != "" {
		gen = newGenerator(*target, true)
	}
	if err := gen.set(*profile, *rps, *duration); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", newReplica(reg, *service, *capacity))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /load", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(gen.status())
	})
	mux.HandleFunc("POST /load", func(w http.ResponseWriter, r *http.Request) {
		rps, err1 := strconv.ParseFloat(r.FormValue("rps"), 64)
		d, err2 := time.ParseDuration(r.FormValue("duration"))
		if r.FormValue("duration") == "" {
			d, err2 = time.Minute, nil
		}
		if r.FormValue("rps") == "" {
			rps, err1 = 0, nil
		}
		if err1 != nil || err2 != nil {
			http.Error(w, "rps must be a number and duration a Go duration", http.StatusBadRequest)
			return
		}
		if err := gen.set(r.FormValue("profile"), rps, d); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(gen.status())
	})

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	go gen.run(ctx)
	fmt.Fprintf(os.Stderr, "demo-app: service %q on http://%s (metrics at /metrics, load control at /load)\n", *service, *listen)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shutdown)
	}
}

// replica serves the service's requests, counted in http_requests_total
// by code, and names itself in X-Served-By (a pod's name: which replica
// answered).
type replica struct {
	requests *prometheus.CounterVec
	// limiter is the replica's fixed capacity (nil: none): a token bucket
	// a second deep, as a server's queue absorbs the unevenness of a
	// Service's spreading within a second but not a rate above what it
	// serves. Beyond it requests are shed with 503.
	limiter *rate.Limiter
	host    string
}

func newReplica(reg prometheus.Registerer, service string, capacity float64) *replica {
	r := &replica{requests: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "http_requests_total", Help: "HTTP requests served, by code.",
		ConstLabels: prometheus.Labels{"service": service},
	}, []string{"code"})}
	reg.MustRegister(r.requests)
	r.requests.WithLabelValues("200")
	if capacity > 0 {
		r.limiter = rate.NewLimiter(rate.Limit(capacity), max(1, int(capacity)))
		// From the start, so that a rate counts the first requests shed.
		r.requests.WithLabelValues("503")
	}
	r.host, _ = os.Hostname()
	return r
}

func (r *replica) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("X-Served-By", r.host)
	if r.limiter != nil && !r.limiter.Allow() {
		r.requests.WithLabelValues("503").Inc()
		http.Error(w, "over capacity", http.StatusServiceUnavailable)
		return
	}
	r.requests.WithLabelValues("200").Inc()
	fmt.Fprintln(w, "ok")
}

// load changes the load profile of a running demo-app.
func load(args []string) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	target := fs.String("url", "http://127.0.0.1:8081", "base URL of the demo-app")
	profile := fs.String("profile", "steady", "steady, ramp, spike or stop")
	rps := fs.Float64("rps", 0, "target requests per second")
	duration := fs.Duration("duration", time.Minute, "ramp: time to reach --rps; spike: how long it lasts")
	_ = fs.Parse(args)
	resp, err := http.PostForm(*target+"/load", url.Values{
		"profile": {*profile}, "rps": {strconv.FormatFloat(*rps, 'f', -1, 64)}, "duration": {duration.String()},
	})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, body)
	}
	fmt.Print(string(body))
	return nil
}
