//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/autoscale-io/reactive-autoscaler/pkg/localenv"
)

// TestChartInstallsAndItsIdentityIsEnough: helm installs the chart into the
// real API server; the real binary, run with the chart's ServiceAccount
// identity (impersonation), elects itself on the chart's Lease and scales an
// annotated Deployment under load; the same identity may not delete a
// Deployment or read a Secret.
func TestChartInstallsAndItsIdentityIsEnough(t *testing.T) {
	s := newScenario(t)
	release := "ra"
	fullname := release + "-reactive-autoscaler"
	s.helmInstall(release)
	if _, err := client.AppsV1().Deployments(s.ns).Get(s.ctx, fullname, metav1.GetOptions{}); err != nil {
		t.Fatalf("the chart's Deployment: %v", err)
	}

	sa := "system:serviceaccount:" + s.ns + ":" + fullname
	kubeconfig := impersonatingKubeconfig(t, sa, s.ns)
	svc := s.demoService("charted")
	s.deployment("charted", 1, fast("service", "charted"))
	if _, err := client.AppsV1().StatefulSets(s.ns).Create(s.ctx, localenv.StatefulSet(s.ns, "charted-sts", 1, fast("service", "charted")), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s.startAutoscaler("--kubeconfig", kubeconfig, "--leader-elect=true", "--leader-election-namespace", s.ns,
		"--leader-election-id", fullname)
	s.load(svc, "steady", 45) // seed table: 3 replicas
	s.waitReplicas("charted", "scaled by the chart's identity", time.Minute, func(r int32) bool { return r == 3 })
	s.poll("the StatefulSet scaled by the chart's identity", time.Minute, func() (bool, error) {
		sts, err := client.AppsV1().StatefulSets(s.ns).Get(s.ctx, "charted-sts", metav1.GetOptions{})
		return err == nil && *sts.Spec.Replicas == 3, err
	})
	if h := s.holder(fullname); h == "" {
		t.Errorf("the chart's Lease %s has no holder", fullname)
	}

	as := impersonatingClient(t, sa, s.ns)
	// The candidates' Lease watch is allowed for the release's Lease only.
	w, err := as.CoordinationV1().Leases(s.ns).Watch(context.Background(), metav1.ListOptions{FieldSelector: "metadata.name=" + fullname})
	if err != nil {
		t.Errorf("watching the chart's Lease as %s: %v", sa, err)
	} else {
		w.Stop()
	}
	if _, err := as.CoordinationV1().Leases(s.ns).List(context.Background(), metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("listing every Lease as %s: %v, want Forbidden", sa, err)
	}
	err = as.AppsV1().Deployments(s.ns).Delete(context.Background(), "charted", metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
	if !apierrors.IsForbidden(err) {
		t.Errorf("deleting a Deployment as %s: %v, want Forbidden", sa, err)
	}
	_, err = as.CoreV1().Secrets(s.ns).Get(context.Background(), fullname+"-webhook", metav1.GetOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("reading the webhook Secret as %s: %v, want Forbidden", sa, err)
	}
	_, err = as.CoreV1().Pods(s.ns).List(context.Background(), metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("listing pods as %s: %v, want Forbidden", sa, err)
	}
	checkAdmissionPolicy(s, as, sa, "deployments", "charted")
	checkAdmissionPolicy(s, as, sa, "statefulsets", "charted-sts")
	// The controller's own status writes pass the policy.
	s.poll("the status annotation written under the policy", time.Minute, func() (bool, error) {
		st := s.get("charted").Annotations["autoscale.io/status"]
		return strings.Contains(st, `"toReplicas":3`), nil
	})
}

// checkAdmissionPolicy: the chart's ValidatingAdmissionPolicy lets sa patch
// the status annotation of a workload (resource: deployments or
// statefulsets) and nothing else, and RBAC refuses it patch on the scale
// subresource (replicas are written with update).
// Every write is a server-side dry run: admission runs, nothing changes.
func checkAdmissionPolicy(s *scenario, as kubernetes.Interface, sa, resource, name string) {
	s.t.Helper()
	patch := func(body string, subresources ...string) error {
		opts := metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}}
		var err error
		if resource == "statefulsets" {
			_, err = as.AppsV1().StatefulSets(s.ns).Patch(context.Background(), name, types.MergePatchType, []byte(body), opts, subresources...)
		} else {
			_, err = as.AppsV1().Deployments(s.ns).Patch(context.Background(), name, types.MergePatchType, []byte(body), opts, subresources...)
		}
		return err
	}
	// The policy is enforced once the API server has loaded it.
	s.poll("the admission policy to refuse a label change", 30*time.Second, func() (bool, error) {
		return apierrors.IsForbidden(patch(`{"metadata":{"labels":{"tenant":"other"}}}`)), nil
	})
	if err := patch(`{"metadata":{"annotations":{"autoscale.io/status":"{\"note\":\"dry run\"}"}}}`); err != nil {
		s.t.Errorf("patching the status annotation of %s %s as %s: %v", resource, name, sa, err)
	}
	for what, body := range map[string]string{
		"the pod template":   `{"spec":{"template":{"metadata":{"annotations":{"injected":"true"}}}}}`,
		"a label":            `{"metadata":{"labels":{"tenant":"other"}}}`,
		"another annotation": `{"metadata":{"annotations":{"autoscale.io/max-replicas":"10000"}}}`,
		"spec.replicas":      `{"spec":{"replicas":9}}`,
	} {
		err := patch(body)
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "ValidatingAdmissionPolicy") {
			s.t.Errorf("patching %s of %s %s as %s: %v, want Forbidden by the ValidatingAdmissionPolicy", what, resource, name, sa, err)
		}
	}
	if err := patch(`{"spec":{"replicas":2}}`, "scale"); !apierrors.IsForbidden(err) {
		s.t.Errorf("patching %s/scale as %s: %v, want Forbidden", resource, sa, err)
	}
}

// helmInstall installs the chart as release into the scenario's namespace,
// managing only that namespace, with --set values; the test uninstalls it.
func (s *scenario) helmInstall(release string, values ...string) {
	s.t.Helper()
	args := []string{"install", release, "../../charts/reactive-autoscaler", "--kubeconfig", env.Kubeconfig, "--namespace", s.ns,
		"--set", "watchNamespace=" + s.ns}
	for _, v := range values {
		args = append(args, "--set", v)
	}
	out, err := exec.Command(filepath.Join(binDir, "helm"), args...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("helm install %v: %v\n%s", values, err, out)
	}
	s.t.Logf("helm install %s %v: %s", release, values, firstLine(string(out)))
	s.t.Cleanup(func() {
		_ = exec.Command(filepath.Join(binDir, "helm"), "uninstall", release, "--kubeconfig", env.Kubeconfig, "--namespace", s.ns).Run()
	})
}

func impersonation(sa, ns string) rest.ImpersonationConfig {
	return rest.ImpersonationConfig{UserName: sa, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}
}

func impersonatingClient(t *testing.T, sa, ns string) kubernetes.Interface {
	t.Helper()
	cfg := env.RESTConfig()
	cfg.Impersonate = impersonation(sa, ns)
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// impersonatingKubeconfig writes a copy of the environment's kubeconfig
// that acts as sa.
func impersonatingKubeconfig(t *testing.T, sa, ns string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	imp := impersonation(sa, ns)
	for _, ai := range cfg.AuthInfos {
		ai.Impersonate, ai.ImpersonateGroups = imp.UserName, imp.Groups
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return fmt.Sprint(line)
}

// TestHardenedMetricsAnswerOnlyAuthorizedScrapers: the chart installed with
// hardened=true generates the serving certificate and binds the controller's
// ServiceAccount to system:auth-delegator. The real binary, acting as that
// ServiceAccount and serving /metrics with the generated certificate and
// --metrics-auth=kubernetes, answers over TLS that verifies against the
// chart's CA for the metrics Service's name: 401 without a token, 403 for a
// ServiceAccount the API server knows but has not allowed, 200 for one bound
// to the chart's metrics-reader ClusterRole. The probes stay open.
func TestHardenedMetricsAnswerOnlyAuthorizedScrapers(t *testing.T) {
	s := newScenario(t)
	release := "hard"
	fullname := release + "-reactive-autoscaler"
	s.helmInstall(release, "hardened=true")
	secret, err := client.CoreV1().Secrets(s.ns).Get(s.ctx, fullname+"-tls", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the generated TLS Secret: %v", err)
	}
	dir := t.TempDir()
	for _, f := range []string{"tls.crt", "tls.key"} {
		if err := os.WriteFile(filepath.Join(dir, f), secret.Data[f], 0o600); err != nil {
			t.Fatal(err)
		}
	}
	port, err := localenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s.metricsURL = fmt.Sprintf("https://127.0.0.1:%d", port)
	sa := "system:serviceaccount:" + s.ns + ":" + fullname
	s.scaler = s.runBinary("autoscaler-"+s.ns, nil, s.metricsURL, "run", "--kubeconfig", impersonatingKubeconfig(t, sa, s.ns),
		"--namespace", s.ns, "--prometheus-url", env.PrometheusURL, "--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", port),
		"--leader-elect=false", "--metrics-auth=kubernetes",
		"--metrics-tls-cert-file", filepath.Join(dir, "tls.crt"), "--metrics-tls-key-file", filepath.Join(dir, "tls.key"))

	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(secret.Data["ca.crt"]) {
		t.Fatal("ca.crt holds no certificate")
	}
	scraper := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: roots, ServerName: fullname + "-metrics." + s.ns + ".svc", MinVersion: tls.VersionTLS12}}}
	get := func(path, token string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, s.metricsURL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := scraper.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	token := func(name string) string {
		if _, err := client.CoreV1().ServiceAccounts(s.ns).Create(s.ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		tr, err := client.CoreV1().ServiceAccounts(s.ns).CreateToken(s.ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("a token for %s: %v", name, err)
		}
		return tr.Status.Token
	}
	prometheus, intruder := token("prometheus"), token("intruder")
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: s.ns + "-metrics-reader"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: fullname + "-metrics-reader"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "prometheus", Namespace: s.ns}}}
	if _, err := client.RbacV1().ClusterRoleBindings().Create(s.ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = client.RbacV1().ClusterRoleBindings().Delete(context.Background(), binding.Name, metav1.DeleteOptions{})
	})

	if code, _ := get("/readyz", ""); code != http.StatusOK {
		t.Errorf("/readyz without a token: HTTP %d, want 200 (the kubelet's probe)", code)
	}
	if code, body := get("/metrics", ""); code != http.StatusUnauthorized {
		t.Errorf("/metrics without a token: HTTP %d (%.80s), want 401", code, body)
	}
	if code, body := get("/metrics", intruder); code != http.StatusForbidden {
		t.Errorf("/metrics as a ServiceAccount not allowed: HTTP %d (%.80s), want 403", code, body)
	}
	// The binding was just made; the API server's authorizer sees it at once.
	if code, body := get("/metrics", prometheus); code != http.StatusOK || !strings.Contains(body, "reactive_autoscaler_leader") {
		t.Errorf("/metrics as the bound scraper: HTTP %d (%.80s), want 200 with the metrics", code, body)
	}
}
