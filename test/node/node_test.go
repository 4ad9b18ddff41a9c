//go:build node

// Package node runs pods on a real node (pkg/localenv: containerd and runc,
// a CNI bridge, kubelet and kube-proxy) and checks that the node leaves
// nothing of its own on the host when it stops.
package node

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/autoscale-io/reactive-autoscaler/pkg/localenv"
)

// TestARealNodeServesThroughAServiceAndLeavesNothingBehind starts the
// control plane with a real node, runs demo-app from the image make
// node-images builds as a Deployment of two pods behind a Service, reads
// the Service's ClusterIP from the host through kube-proxy's rules until
// both pods have answered, scales to three and waits for the third to be
// Ready; then stops everything and compares the host with what it was:
// no iptables rule, mount, link, network namespace, cgroup, container log
// link or process of the node's may be left.
func TestARealNodeServesThroughAServiceAndLeavesNothingBehind(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	n := startNode(ctx, t, nil)
	defer n.env.Stop()
	env, client := n.env, n.client
	svc := n.serveWeb(ctx, t, 2, nil)
	readyPods(ctx, t, env, client, 2)
	// Through the Service: kube-proxy's rules spread the connections, so
	// both pods answer within some tries.
	seen := map[string]bool{}
	httpc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		resp, err := httpc.Get(fmt.Sprintf("http://%s/", svc.Spec.ClusterIP))
		if err != nil {
			return false, nil
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		seen[resp.Header.Get("X-Served-By")] = true
		return len(seen) >= 2, nil
	})
	if err != nil {
		t.Fatalf("the Service %s did not reach both pods (answered by %v): %v", svc.Spec.ClusterIP, seen, err)
	}
	scale, err := client.AppsV1().Deployments("default").GetScale(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	scale.Spec.Replicas = 3
	if _, err := client.AppsV1().Deployments("default").UpdateScale(ctx, "web", scale, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	readyPods(ctx, t, env, client, 3)
	n.stopAndCompare(t)
}

// readyPods waits until at least n pods of the Deployment are Ready: an
// autoscaler reading a noisy rate at a threshold may ask for one more.
func readyPods(ctx context.Context, t *testing.T, env *localenv.Env, client kubernetes.Interface, n int) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 3*time.Minute, true, func(context.Context) (bool, error) {
		pods, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, nil
		}
		ready := 0
		var states []string
		for _, p := range pods.Items {
			if podReady(&p) {
				ready++
			}
			states = append(states, fmt.Sprintf("%s %s %s", p.Name, p.Status.Phase, p.Status.Message))
		}
		last = strings.Join(states, "; ")
		return ready >= n, nil
	})
	if err != nil {
		t.Fatalf("fewer than %d web pods Ready: %s\nkubelet:\n%s\ncontainerd:\n%s", n, last, env.Logs("kubelet", 40), env.Logs("containerd", 20))
	}
}

// TestOursScalesRealPodsThatShedWhatTheyCannotServe: demo-app pods on the
// real node each serve 25 requests a second and shed the rest (503,
// counted); Prometheus discovers them through the API server; the real
// binary scales their Deployment (20 RPS a replica). 80 requests a second
// through the Service, from one pod, are mostly shed until the autoscaler
// has scaled to four and the new pods are Ready, after which (nearly) all
// are served; with the load gone it scales back to one. The host is left
// as it was.
func TestOursScalesRealPodsThatShedWhatTheyCannotServe(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	n := startNode(ctx, t, &localenv.PrometheusOptions{ScrapeInterval: time.Second})
	defer n.env.Stop()
	env, client, bin := n.env, n.client, n.bin
	svc := n.serveScaledWeb(ctx, t)
	port, err := localenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	scaler, err := env.StartProcess("reactive-autoscaler", filepath.Join(bin, "reactive-autoscaler"), nil, "run",
		"--kubeconfig", env.Kubeconfig, "--namespace", "default", "--prometheus-url", env.PrometheusURL,
		"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", port), "--leader-elect=false", "-v=2")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("autoscaler log (tail):\n%s", env.Logs("reactive-autoscaler", 30))
		}
	}()

	load := newLoad(fmt.Sprintf("http://%s/", svc.Spec.ClusterIP), 80)
	loadCtx, stopLoad := context.WithCancel(ctx)
	go load.run(loadCtx)
	defer stopLoad()
	// Shed while one pod serves 25 of 80.
	err = wait.PollUntilContextTimeout(ctx, time.Second, time.Minute, false, func(context.Context) (bool, error) {
		return load.window(5*time.Second).shed > 0.5, nil
	})
	if err != nil {
		t.Fatalf("one pod shed %.0f%% of 80 RPS over 5 s, want most of it", 100*load.window(5*time.Second).shed)
	}
	readyPods(ctx, t, env, client, 4)
	// Served once four pods are Ready (100 RPS of capacity for 80).
	err = wait.PollUntilContextTimeout(ctx, time.Second, time.Minute, false, func(context.Context) (bool, error) {
		return load.window(5*time.Second).shed < 0.05, nil
	})
	if err != nil {
		t.Fatalf("four pods still shed %.0f%% of 80 RPS over 5 s", 100*load.window(5*time.Second).shed)
	}
	if scaler.Exited() {
		t.Fatalf("the autoscaler exited: %v", scaler.Err())
	}
	stopLoad()
	err = wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, false, func(context.Context) (bool, error) {
		dep, err := client.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
		return err == nil && *dep.Spec.Replicas == 1, nil
	})
	if err != nil {
		t.Fatal("not scaled back to 1 within 3 minutes of the load's end")
	}
	n.stopAndCompare(t)
}

// load sends requests at a fixed rate and counts, per second, what was
// served (200) and shed (anything else, or no answer).
type load struct {
	url  string
	rps  int
	mu   sync.Mutex
	secs map[int64][2]int // unix second -> served, shed
}

func newLoad(url string, rps int) *load { return &load{url: url, rps: rps, secs: map[int64][2]int{}} }

func (l *load) run(ctx context.Context) {
	httpc := &http.Client{Timeout: time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 200, DisableKeepAlives: true}}
	tick := time.NewTicker(time.Second / time.Duration(l.rps))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			go func() {
				ok := false
				if resp, err := httpc.Get(l.url); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					ok = resp.StatusCode == http.StatusOK
				}
				l.mu.Lock()
				c := l.secs[time.Now().Unix()]
				if ok {
					c[0]++
				} else {
					c[1]++
				}
				l.secs[time.Now().Unix()] = c
				l.mu.Unlock()
			}()
		}
	}
}

type share struct{ served, shed float64 }

// window is the share of requests served and shed over the last d (the
// current second left out).
func (l *load) window(d time.Duration) share {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now().Unix()
	var served, shed int
	for s := now - int64(d/time.Second); s < now; s++ {
		served += l.secs[s][0]
		shed += l.secs[s][1]
	}
	if served+shed == 0 {
		return share{}
	}
	return share{float64(served) / float64(served+shed), float64(shed) / float64(served+shed)}
}

// node is an environment with a real node, and the host as it was before.
type node struct {
	env    *localenv.Env
	client kubernetes.Interface
	bin    string
	dir    string
	before localenv.HostState
}

// startNode starts the control plane, kube-controller-manager and a real
// node with the pause and demo-app images and the images of bin/ named
// (and Prometheus, when prom is set), after reading the host's state.
func startNode(ctx context.Context, t *testing.T, prom *localenv.PrometheusOptions, images ...string) *node {
	t.Helper()
	return startNodeWith(ctx, t, localenv.Options{Prometheus: prom}, images...)
}

// startNodeWith is startNode with more of opts (Prometheus, Peers).
func startNodeWith(ctx context.Context, t *testing.T, opts localenv.Options, images ...string) *node {
	t.Helper()
	bin, err := filepath.Abs("../../bin")
	if err != nil {
		t.Fatal(err)
	}
	n := &node{bin: bin, dir: t.TempDir()}
	n.before = localenv.ReadHostState(n.dir)
	tars := []string{filepath.Join(bin, "pause-image.tar"), filepath.Join(bin, "demo-app-image.tar")}
	for _, img := range images {
		tars = append(tars, filepath.Join(bin, img))
	}
	opts.BinDir, opts.Dir, opts.Log, opts.ControllerManager = bin, n.dir, os.Stderr, true
	opts.Node = &localenv.NodeOptions{Images: tars}
	n.env, err = localenv.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if n.client, err = n.env.Client(); err != nil {
		n.env.Stop()
		t.Fatal(err)
	}
	return n
}

// serveScaledWeb serves web from one pod of 25 requests a second,
// annotated for the autoscaler at 20 a replica (up to 6, a 5 s interval, a
// 15 s cooldown, no forecast, an irate over 15 s of the 1 s scrape), and
// waits until the pod is Ready.
func (n *node) serveScaledWeb(ctx context.Context, t *testing.T) *corev1.Service {
	t.Helper()
	svc := n.serveWeb(ctx, t, 1, map[string]string{
		"autoscale.io/reactive": "true", "autoscale.io/target-rps-per-replica": "20", "autoscale.io/max-replicas": "6",
		"autoscale.io/interval": "5s", "autoscale.io/cooldown": "15s", "autoscale.io/predictor": "none",
		"autoscale.io/query": `sum(irate(http_requests_total{namespace="{{.Namespace}}",service="{{.Service}}"}[15s]))`,
	}, "--capacity", "25")
	readyPods(ctx, t, n.env, n.client, 1)
	return svc
}

// serveWeb creates Deployment web of demo-app pods on the node (with
// annotations, scraped by Prometheus, serve's extra arguments) and
// Service web in front of them, and returns the Service.
func (n *node) serveWeb(ctx context.Context, t *testing.T, replicas int32, annotations map[string]string, extra ...string) *corev1.Service {
	t.Helper()
	d := localenv.ServingDeployment("default", "web", "web", replicas, annotations, extra...)
	if _, err := n.client.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := localenv.ServiceFor(d)
	svc, err := n.client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// stopAndCompare stops the environment and fails unless the host reads
// as it did before the node (Stop again is a no-op).
func (n *node) stopAndCompare(t *testing.T) {
	t.Helper()
	n.env.Stop()
	if diff := cmp.Diff(n.before, localenv.ReadHostState(n.dir)); diff != "" {
		t.Errorf("the host after the node differs from before it (-before +after):\n%s", diff)
	}
}
