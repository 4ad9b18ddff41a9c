// Package localenv starts a real local Kubernetes control plane and the
// monitoring stack around it: etcd, kube-apiserver (token authentication,
// RBAC), kube-controller-manager (the deployment, replicaset and
// garbage-collector controllers), kwok (fake nodes whose pods become
// Running), Prometheus and Alertmanager, on loopback; and, with
// Options.Node, a real node (node.go) whose pods run in containers and
// reach the API server as in a cluster. The e2e tests and `make demo` use
// it; it is not part of the controller.
package localenv

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	certutil "k8s.io/client-go/util/cert"
)

// Options choose what to start.
type Options struct {
	// BinDir holds etcd, kube-apiserver, kube-controller-manager, kwok and
	// kwok-stages.yaml (hack/tools/build.sh puts them in bin/).
	BinDir string
	// Dir is where data, configs and logs go; empty = a new temp dir,
	// removed by Stop unless KeepDir.
	Dir     string
	KeepDir bool
	// Log receives one line per step; nil = discard.
	Log io.Writer

	// NoCluster starts no etcd and no kube-apiserver: only the
	// Prometheus and Alertmanager asked for (a second monitoring stack
	// beside an environment's cluster).
	NoCluster bool

	ControllerManager bool // deployment/replicaset/GC controllers
	KwokNodes         int  // fake nodes (needs ControllerManager for pods)
	// Node, when set, starts a real node (containerd, kubelet, kube-proxy,
	// kube-scheduler) whose pods run: needs root, and ControllerManager for
	// Deployments and for the node to take pods (the not-ready taint).
	Node *NodeOptions

	// Peers turns on the API server's aggregation layer and the HPA
	// controller of kube-controller-manager (needs ControllerManager), so
	// that StartPrometheusAdapter and StartKEDA can run the real peers
	// (peers.go).
	Peers bool

	// Prometheus, when set, starts Prometheus scraping the targets added with
	// AddScrapeTarget every ScrapeInterval, with these rule files.
	Prometheus *PrometheusOptions
	// AlertmanagerConfig, when set, starts Alertmanager with this YAML; a
	// Prometheus started with it sends its alerts there.
	AlertmanagerConfig string
}

// PrometheusOptions configure the Prometheus server.
type PrometheusOptions struct {
	ScrapeInterval time.Duration // also the rule evaluation interval
	RuleFiles      []string
}

// Env is a running environment. Stop it when done.
type Env struct {
	Dir             string
	Kubeconfig      string
	APIServerURL    string
	PrometheusURL   string
	AlertmanagerURL string
	// Token authenticates as a cluster admin.
	Token string
	// HostIP is the host's address, at which a real node's pods reach
	// the API server, Prometheus and Alertmanager (empty without Node);
	// see FromPods.
	HostIP string
	// AuditLog is the API server's audit log (JSON lines): writes to
	// Deployments, deployments/scale and Events; see Writes.
	AuditLog string

	opts       Options
	restConfig *rest.Config
	procs      map[string]*Proc
	order      []string
	promArgs   []string
	// args are the command lines of the components started by start, to
	// restart them as they were.
	args map[string][]string
	// procsMu guards procs, order and args: a test may start processes
	// from several goroutines (a supervisor, the test itself).
	procsMu   sync.Mutex
	log       io.Writer
	targetsMu sync.Mutex // guards the Prometheus targets file
	node      *nodeState // what the real node changed on the host
	// stopBackground ends the environment's own goroutines (the pods'
	// discovery).
	stopBackground []context.CancelFunc
}

// serviceCIDR is the Services' cluster IPs; its first is the kubernetes
// Service's.
const serviceCIDR = "10.96.0.0/16"

// NodeName is the name of the first fake node; pods are bound to it.
const NodeName = "kwok-node-0"

// Start brings the environment up; on error everything started is stopped.
func Start(ctx context.Context, opts Options) (env *Env, err error) {
	e := &Env{opts: opts, procs: map[string]*Proc{}, args: map[string][]string{}, log: opts.Log}
	if e.log == nil {
		e.log = io.Discard
	}
	defer func() {
		if err != nil {
			e.Stop()
		}
	}()
	if e.Dir = opts.Dir; e.Dir == "" {
		if e.Dir, err = os.MkdirTemp("", "reactive-autoscaler-env-"); err != nil {
			return nil, err
		}
	} else if err = os.MkdirAll(e.Dir, 0o755); err != nil {
		return nil, err
	}
	for _, bin := range e.required() {
		if _, err := os.Stat(filepath.Join(opts.BinDir, bin)); err != nil {
			return nil, fmt.Errorf("%s is missing in %s: run `make tools` (hack/tools/build.sh)", bin, opts.BinDir)
		}
	}
	if !opts.NoCluster {
		if err := e.startControlPlane(ctx); err != nil {
			return nil, err
		}
	}
	if opts.ControllerManager {
		if err := e.startControllerManager(ctx); err != nil {
			return nil, err
		}
	}
	if opts.KwokNodes > 0 {
		if err := e.startKwok(ctx); err != nil {
			return nil, err
		}
	}
	if opts.Node != nil {
		if err := e.startNode(ctx); err != nil {
			return nil, err
		}
	}
	if opts.AlertmanagerConfig != "" {
		if err := e.startAlertmanager(ctx); err != nil {
			return nil, err
		}
	}
	if opts.Prometheus != nil {
		if err := e.startPrometheus(ctx); err != nil {
			return nil, err
		}
	}
	return e, nil
}

func (e *Env) required() []string {
	if e.opts.NoCluster {
		return nil
	}
	bins := []string{"etcd", "kube-apiserver"}
	if e.opts.ControllerManager {
		bins = append(bins, "kube-controller-manager")
	}
	if e.opts.KwokNodes > 0 {
		bins = append(bins, "kwok", "kwok-stages.yaml")
	}
	if e.opts.Node != nil {
		bins = append(bins, e.nodeRequired()...)
	}
	if e.opts.Peers {
		bins = append(bins, "kubectl", "prometheus-adapter", "keda-operator", "keda-adapter")
	}
	return bins
}

func (e *Env) logf(format string, args ...any) { fmt.Fprintf(e.log, "localenv: "+format+"\n", args...) }

func (e *Env) start(name, bin string, args ...string) (*Proc, error) {
	p, err := startProc(e.Dir, name, bin, nil, args...)
	if err != nil {
		return nil, err
	}
	e.procsMu.Lock()
	defer e.procsMu.Unlock()
	e.procs[name] = p
	e.order = append(e.order, name)
	e.args[name] = append([]string{bin}, args...)
	return p, nil
}

// StopAPIServer stops kube-apiserver and etcd, as an upgrade or a crash of
// the control plane does; StartAPIServer brings them back on the same
// addresses with the same data. The other components keep running and
// reconnect.
func (e *Env) StopAPIServer() {
	for _, name := range []string{"kube-apiserver", "etcd"} {
		if p := e.Proc(name); p != nil {
			p.Stop(10 * time.Second)
		}
	}
}

// StartAPIServer restarts etcd and kube-apiserver and waits until the API
// server is ready.
func (e *Env) StartAPIServer(ctx context.Context) error {
	var api *Proc
	for _, name := range []string{"etcd", "kube-apiserver"} {
		e.logf("restarting %s", name)
		e.procsMu.Lock()
		args := e.args[name]
		e.procsMu.Unlock()
		p, err := e.StartProcess(name, args[0], nil, args[1:]...)
		if err != nil {
			return err
		}
		api = p
	}
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: insecureTLS()}, Timeout: 2 * time.Second}
	return waitHTTP(ctx, insecure, e.APIServerURL+"/readyz", e.Token, api, 2*time.Minute)
}

// Proc returns a component's process by name (etcd, kube-apiserver,
// kube-controller-manager, kwok, prometheus, alertmanager).
func (e *Env) Proc(name string) *Proc {
	e.procsMu.Lock()
	defer e.procsMu.Unlock()
	return e.procs[name]
}

func (e *Env) startControlPlane(ctx context.Context) error {
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	etcdPort, peerPort, apiPort := ports[0], ports[1], ports[2]
	e.logf("starting etcd on %s", addr(etcdPort))
	if _, err := e.start("etcd", filepath.Join(e.opts.BinDir, "etcd"),
		"--data-dir", filepath.Join(e.Dir, "etcd"), "--name", "default",
		"--listen-client-urls", "http://"+addr(etcdPort), "--advertise-client-urls", "http://"+addr(etcdPort),
		"--listen-peer-urls", "http://"+addr(peerPort), "--initial-advertise-peer-urls", "http://"+addr(peerPort),
		"--initial-cluster", "default=http://"+addr(peerPort), "--unsafe-no-fsync", "--log-level", "warn"); err != nil {
		return err
	}

	pki := filepath.Join(e.Dir, "pki")
	if err := os.MkdirAll(pki, 0o700); err != nil {
		return err
	}
	if err := writeServiceAccountKeys(pki); err != nil {
		return err
	}
	token := make([]byte, 16)
	if _, err := rand.Read(token); err != nil {
		return err
	}
	e.Token = hex.EncodeToString(token)
	tokens := filepath.Join(pki, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(e.Token+",admin,admin-uid,system:masters\n"), 0o600); err != nil {
		return err
	}
	e.APIServerURL = "https://" + addr(apiPort)
	policy := filepath.Join(e.Dir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		return err
	}
	e.AuditLog = filepath.Join(e.Dir, "audit.log")
	args, err := e.apiServerArgs(pki, tokens, policy, etcdPort, apiPort)
	if err != nil {
		return err
	}
	e.logf("starting kube-apiserver on %s", e.APIServerURL)
	api, err := e.start("kube-apiserver", filepath.Join(e.opts.BinDir, "kube-apiserver"), args...)
	if err != nil {
		return err
	}
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: insecureTLS()}, Timeout: 2 * time.Second}
	if err := waitHTTP(ctx, insecure, e.APIServerURL+"/readyz", e.Token, api, 2*time.Minute); err != nil {
		return err
	}
	ca, err := os.ReadFile(filepath.Join(pki, "apiserver.crt"))
	if err != nil {
		return fmt.Errorf("reading the API server's self-signed certificate: %w", err)
	}
	e.restConfig = &rest.Config{Host: e.APIServerURL, BearerToken: e.Token, TLSClientConfig: rest.TLSClientConfig{CAData: ca}, QPS: 100, Burst: 200}
	e.Kubeconfig = filepath.Join(e.Dir, "kubeconfig")
	if err := writeKubeconfig(e.Kubeconfig, e.APIServerURL, ca, e.Token); err != nil {
		return err
	}
	e.logf("kube-apiserver ready; kubeconfig %s", e.Kubeconfig)
	return nil
}

// apiServerArgs is kube-apiserver's command line: on loopback without a
// node; with one, reachable from pods as in a cluster (it sets HostIP).
func (e *Env) apiServerArgs(pki, tokens, policy string, etcdPort, apiPort int) ([]string, error) {
	args := []string{"--etcd-servers", "http://" + addr(etcdPort), "--secure-port", fmt.Sprint(apiPort),
		"--cert-dir", pki, "--token-auth-file", tokens, "--authorization-mode", "RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", filepath.Join(pki, "sa.pub"),
		"--service-account-signing-key-file", filepath.Join(pki, "sa.key"),
		"--service-cluster-ip-range", serviceCIDR,
		// Every write to Deployments, their scale and Events, with its user
		// agent and time: the write history failover tests read.
		"--audit-policy-file", policy, "--audit-log-path", e.AuditLog, "--audit-log-format", "json",
		"--audit-log-mode", "blocking"}
	if e.opts.Node == nil {
		args = append(args, "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
			// The kubernetes Service cannot point at loopback; nothing here needs it.
			"--endpoint-reconciler-type", "none",
			// kwok's pods run nothing and need no service-account token.
			"--disable-admission-plugins", "ServiceAccount")
	} else {
		// Pods reach the API server as in a cluster: the kubernetes
		// Service (kube-proxy) to the host's address, with a
		// service-account token, verified by the CA their kube-root-ca.crt
		// holds. The certificate names every address it is reached at.
		ip, err := hostIP()
		if err != nil {
			return nil, err
		}
		e.HostIP = ip
		cert, key, err := writeServingCert(pki, e.HostIP)
		if err != nil {
			return nil, err
		}
		args = append(args, "--bind-address", "0.0.0.0", "--advertise-address", e.HostIP,
			"--tls-cert-file", cert, "--tls-private-key-file", key)
	}
	if e.opts.Peers {
		proxy, err := frontProxyArgs(pki)
		if err != nil {
			return nil, err
		}
		args = append(args, proxy...)
	}
	return args, nil
}

func (e *Env) startControllerManager(ctx context.Context) error {
	port, err := FreePort()
	if err != nil {
		return err
	}
	e.logf("starting kube-controller-manager")
	controllers := "deployment-controller,replicaset-controller,statefulset-controller,garbage-collector-controller,namespace-controller,serviceaccount-controller"
	args := []string{"--kubeconfig", e.Kubeconfig, "--leader-elect=false", "--use-service-account-credentials=false",
		"--bind-address", "127.0.0.1", "--secure-port", fmt.Sprint(port), "--cert-dir", filepath.Join(e.Dir, "kcm")}
	if e.opts.Node != nil {
		// kube-proxy routes a Service to the pods its EndpointSlices name;
		// a pod's service-account volume needs the kube-root-ca.crt
		// ConfigMap the publisher writes in every namespace; kubelet
		// registers its node tainted not-ready, and the node lifecycle
		// controller lifts the taint once the node is Ready, so that the
		// scheduler places pods there.
		controllers += ",endpointslice-controller,root-ca-certificate-publisher-controller,node-lifecycle-controller"
		args = append(args, "--root-ca-file", filepath.Join(e.Dir, "pki", "apiserver.crt"))
	}
	if e.opts.Peers {
		// The HPA's flags stay the defaults (a 15 s sync, a 0.1
		// tolerance an HPA's spec.behavior may override).
		controllers += ",horizontal-pod-autoscaler-controller"
	}
	p, err := e.start("kube-controller-manager", filepath.Join(e.opts.BinDir, "kube-controller-manager"),
		append(args, "--controllers", controllers)...)
	if err != nil {
		return err
	}
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: insecureTLS()}, Timeout: 2 * time.Second}
	return waitHTTP(ctx, insecure, "https://"+addr(port)+"/healthz", "", p, time.Minute)
}

func (e *Env) startKwok(ctx context.Context) error {
	port, err := FreePort()
	if err != nil {
		return err
	}
	e.logf("starting kwok with %d fake node(s)", e.opts.KwokNodes)
	p, err := e.start("kwok", filepath.Join(e.opts.BinDir, "kwok"),
		"--kubeconfig", e.Kubeconfig, "--config", filepath.Join(e.opts.BinDir, "kwok-stages.yaml"),
		"--manage-all-nodes=false", "--manage-nodes-with-annotation-selector", "kwok.x-k8s.io/node=fake",
		"--node-ip", "10.0.0.1", "--cidr", "10.0.0.1/24", "--server-address", addr(port))
	if err != nil {
		return err
	}
	if err := waitHTTP(ctx, &http.Client{Timeout: 2 * time.Second}, "http://"+addr(port)+"/healthz", "", p, time.Minute); err != nil {
		return err
	}
	client, err := e.Client()
	if err != nil {
		return err
	}
	for i := range e.opts.KwokNodes {
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name:        fmt.Sprintf("kwok-node-%d", i),
				Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
				Labels:      map[string]string{"type": "kwok", "kubernetes.io/hostname": fmt.Sprintf("kwok-node-%d", i)},
			},
			Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("64"), corev1.ResourceMemory: resource.MustParse("256Gi"), corev1.ResourcePods: resource.MustParse("500"),
			}},
		}
		node.Status.Capacity = node.Status.Allocatable
		if _, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating fake node: %w", err)
		}
	}
	return nil
}

// Client returns an admin clientset.
func (e *Env) Client() (kubernetes.Interface, error) { return kubernetes.NewForConfig(e.restConfig) }

// RESTConfig returns the admin REST config.
func (e *Env) RESTConfig() *rest.Config { return rest.CopyConfig(e.restConfig) }

// StartProcess runs another program (the autoscaler, the demo app) as part
// of the environment: logged to Dir/name.log and stopped by Stop.
func (e *Env) StartProcess(name, bin string, env []string, args ...string) (*Proc, error) {
	e.procsMu.Lock()
	defer e.procsMu.Unlock()
	if old, ok := e.procs[name]; ok && !old.Exited() {
		return nil, fmt.Errorf("process %s is already running", name)
	}
	p, err := startProc(e.Dir, name, bin, env, args...)
	if err != nil {
		return nil, err
	}
	if _, ok := e.procs[name]; !ok {
		e.order = append(e.order, name)
	}
	e.procs[name] = p
	return p, nil
}

// Stop ends every process, newest first, and removes Dir unless KeepDir.
func (e *Env) Stop() {
	for _, cancel := range e.stopBackground {
		cancel()
	}
	e.procsMu.Lock()
	order := slices.Clone(e.order)
	e.procsMu.Unlock()
	for _, name := range slices.Backward(order) {
		if p := e.Proc(name); p != nil {
			p.Stop(10 * time.Second)
		}
	}
	if err := e.stopNode(); err != nil {
		e.logf("undoing the node's changes to the host: %v", err)
	}
	if !e.opts.KeepDir && e.opts.Dir == "" && e.Dir != "" {
		os.RemoveAll(e.Dir)
	}
}

// Logs returns the tail of a component's log, for test failure messages.
func (e *Env) Logs(name string, lines int) string {
	p := e.Proc(name)
	if p == nil {
		return ""
	}
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

func writeServiceAccountKeys(dir string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	return errors.Join(
		os.WriteFile(filepath.Join(dir, "sa.key"), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600),
		os.WriteFile(filepath.Join(dir, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644),
	)
}

// writeServingCert writes the API server's certificate (and the CA that
// signs it, in the same file: what clients and kube-root-ca.crt trust)
// for every name it is reached at: loopback from the host, hostIP and
// the kubernetes Service from pods.
func writeServingCert(dir, hostIP string) (certFile, keyFile string, err error) {
	svcIP, _, err := net.ParseCIDR(serviceCIDR)
	if err != nil {
		return "", "", err
	}
	svcIP[len(svcIP)-1]++ // the range's first address
	certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey(hostIP, []net.IP{net.IPv4(127, 0, 0, 1), svcIP},
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"})
	if err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(dir, "apiserver.crt"), filepath.Join(dir, "apiserver.key")
	return certFile, keyFile, errors.Join(os.WriteFile(certFile, certPEM, 0o644), os.WriteFile(keyFile, keyPEM, 0o600))
}

// FromPods rewrites a URL of the environment's (Prometheus', Alertmanager's)
// for a real node's pods: the host's address for loopback.
func (e *Env) FromPods(url string) string {
	return strings.Replace(url, "127.0.0.1", e.HostIP, 1)
}

func writeKubeconfig(path, server string, ca []byte, token string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "admin", Namespace: "default"}
	cfg.CurrentContext = "local"
	return clientcmd.WriteToFile(*cfg, path)
}

// writeJSON writes v as JSON atomically (Prometheus watches the file).
func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
