// Command predictor-stub is a predictive model speaking the protocol of
// docs/REFERENCE.md section 4 (POST /predict), for tests and the demo. Its answers come
// from a mode, switchable while it runs with POST /mode?mode=...:
//
//	echo     the current rate (rps = currentRPS)
//	fixed    --replicas whatever the load
//	lag      the rate measured --lag ago (from the request's history)
//	trace    perfect foresight of --trace (a seconds,rps CSV; second 0 = start)
//	fail     HTTP 500
//	timeout  answer after --delay
//	garbage  200 with an invalid body
//
//	predictor-stub --listen 127.0.0.1:9400 --mode fixed --replicas 4
package main

import (
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/autoscale-io/reactive-autoscaler/pkg/predict/predictstub"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "predictor-stub:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:9400", "address to serve on")
	mode := flag.String("mode", predictstub.Echo, fmt.Sprintf("one of %v", predictstub.Modes))
	replicas := flag.Int("replicas", 1, "fixed: the replicas to answer")
	perReplica := flag.Float64("per-replica", 0, "answer replicas = ceil(rps / this) instead of the current count; 0 = the current count")
	lag := flag.Duration("lag", 5*time.Minute, "lag: how late the model is")
	delay := flag.Duration("delay", time.Minute, "timeout: how long before answering")
	trace := flag.String("trace", "", "trace: a seconds,rps CSV")
	flag.Parse()
	if !slices.Contains(predictstub.Modes, *mode) {
		return fmt.Errorf("--mode=%q: must be one of %v", *mode, predictstub.Modes)
	}
	stub := predictstub.New(*mode)
	stub.Replicas, stub.PerReplica, stub.LagBy, stub.Delay = int32(*replicas), *perReplica, *lag, *delay
	if *trace != "" {
		f, err := readTrace(*trace, time.Now())
		if err != nil {
			return err
		}
		stub.Trace = f
	}
	srv := &http.Server{Addr: *listen, Handler: stub, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	fmt.Fprintf(os.Stderr, "predictor-stub: serving POST /predict on %s in mode %s\n", *listen, *mode)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// readTrace returns the rate of a seconds,rps CSV at a time, second 0
// being start; before and after the trace, its first and last rate.
func readTrace(path string, start time.Time) (func(time.Time) float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var secs, rates []float64
	for i, r := range rows {
		if len(r) != 2 {
			return nil, fmt.Errorf("%s line %d: want seconds,rps", path, i+1)
		}
		s, err1 := strconv.ParseFloat(r[0], 64)
		v, err2 := strconv.ParseFloat(r[1], 64)
		if err1 != nil || err2 != nil {
			if i == 0 {
				continue // a header
			}
			return nil, fmt.Errorf("%s line %d: want seconds,rps numbers", path, i+1)
		}
		secs, rates = append(secs, s), append(rates, v)
	}
	if len(secs) == 0 {
		return nil, fmt.Errorf("%s: no rows", path)
	}
	return func(t time.Time) float64 {
		at := t.Sub(start).Seconds()
		i, _ := slices.BinarySearch(secs, at)
		return rates[min(i, len(rates)-1)]
	}, nil
}
