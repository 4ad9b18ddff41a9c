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
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
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
	bin, err := filepath.Abs("../../bin")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	before := localenv.ReadHostState(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	env, err := localenv.Start(ctx, localenv.Options{BinDir: bin, Dir: dir, Log: os.Stderr, ControllerManager: true,
		Node: &localenv.NodeOptions{Images: []string{filepath.Join(bin, "pause-image.tar"), filepath.Join(bin, "demo-app-image.tar")}}})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			env.Stop()
		}
	}
	defer stop()
	client, err := env.Client()
	if err != nil {
		t.Fatal(err)
	}
	d := localenv.Deployment("default", "web", 2, nil)
	d.Spec.Template.Spec.NodeName = localenv.RealNodeName // no scheduler here
	d.Spec.Template.Spec.Containers = []corev1.Container{{
		Name: "web", Image: "docker.io/library/demo-app:local", ImagePullPolicy: corev1.PullNever,
		Args:           []string{"serve", "--listen", "0.0.0.0:8080", "--service", "web"},
		Ports:          []corev1.ContainerPort{{ContainerPort: 8080}},
		ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/metrics", Port: intstr.FromInt32(8080)}}, PeriodSeconds: 1},
	}}
	if _, err := client.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{Selector: d.Spec.Selector.MatchLabels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}}
	if svc, err = client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	readyPods(ctx, t, env, client, 2)
	// Through the Service: kube-proxy's rules spread the connections, so
	// both pods answer within some tries.
	seen := map[string]bool{}
	httpc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
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

	stop()
	after := localenv.ReadHostState(dir)
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("the host after the node differs from before it (-before +after):\n%s", diff)
	}
}

// readyPods waits until n pods of the Deployment are Running and Ready.
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
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					ready++
				}
			}
			states = append(states, fmt.Sprintf("%s %s %s", p.Name, p.Status.Phase, p.Status.Message))
		}
		last = strings.Join(states, "; ")
		return ready == n, nil
	})
	if err != nil {
		t.Fatalf("%d pods not Ready: %s\nkubelet:\n%s\ncontainerd:\n%s", n, last, env.Logs("kubelet", 40), env.Logs("containerd", 20))
	}
}
