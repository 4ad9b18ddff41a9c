package localenv

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

// A real node: containerd (Debian's, with runc) runs the pods kubelet is
// given, on a CNI bridge of its own, and kube-proxy routes Services to them
// with iptables. Everything it changes on the host is recorded when it
// starts and undone when it stops (stopNode): iptables as it was saved, the
// sysctls it set, its bridge, every mount and network namespace it made,
// its cgroups, the shims that outlive containerd, and the files kubelet and
// CNI write outside Dir. HostState is what a test compares before and after.

// NodeOptions configure the real node.
type NodeOptions struct {
	// Images are docker-archive tarballs imported into the node's
	// containerd (make image and make node-images write them); pods
	// must use imagePullPolicy Never or IfNotPresent: there is no registry.
	Images []string
	// PodCIDR is the bridge's subnet (default 10.244.0.0/24).
	PodCIDR string
}

// NodeDirPrefix begins the name of a real node's directory (in the temp
// dir, removed when it stops).
const NodeDirPrefix = "ra-node-"

// RealNodeName is the real node's name.
const RealNodeName = "node-0"

// PauseImage is the sandbox image the node's containerd runs for every
// pod, built locally (make node-images).
const PauseImage = "docker.io/library/pause:local"

// nodeState is what the node changed, to undo.
type nodeState struct {
	dir, id, bridge, cgroupRoot string
	sock                        string
	iptables, ip6tables         []byte // iptables-save before the node
	sysctls                     map[string]string
	netnsBefore                 map[string]bool
	logLinksBefore              map[string]bool
	filesBefore                 map[string]bool // under hostPaths
}

// hostPaths are where kubelet, containerd and CNI write outside the
// node's directory whatever they are told (kubelet's device plugin
// socket, libcni's result cache, pod log links, the network namespaces'
// bind mounts).
var hostPaths = []string{"/var/lib/kubelet", "/var/lib/cni", "/var/log/pods", "/var/log/containers", "/usr/libexec/kubernetes",
	"/etc/cni", "/opt/cni", "/var/run/netns"}

// hostFiles lists every path under hostPaths (the roots included).
func hostFiles() map[string]bool {
	out := map[string]bool{}
	for _, root := range hostPaths {
		_ = filepath.WalkDir(root, func(p string, _ os.DirEntry, err error) error {
			if err == nil {
				out[p] = true
			}
			return nil
		})
	}
	return out
}

// sysctls the node's components set (the bridge plugin, kube-proxy).
var nodeSysctls = []string{
	"/proc/sys/net/ipv4/ip_forward",
	"/proc/sys/net/ipv4/conf/all/route_localnet",
	"/proc/sys/net/bridge/bridge-nf-call-iptables",
	"/proc/sys/net/bridge/bridge-nf-call-ip6tables",
}

const (
	netnsDir        = "/var/run/netns"
	containerLogDir = "/var/log/containers"
)

func (e *Env) nodeRequired() []string { return []string{"kubelet", "kube-proxy", "kube-scheduler"} }

// startNode brings up containerd, kubelet and kube-proxy as node
// RealNodeName and waits until the node is Ready.
func (e *Env) startNode(ctx context.Context) error {
	if err := nodePrerequisites(); err != nil {
		return err
	}
	nodeIP, err := hostIP()
	if err != nil {
		return err
	}
	st, err := recordHost()
	if err != nil {
		return err
	}
	e.node = st // from here on, Stop undoes what the node changed
	cidr := e.opts.Node.PodCIDR
	if cidr == "" {
		cidr = "10.244.0.0/24"
	}
	if err := e.startContainerd(ctx, st, cidr); err != nil {
		return err
	}
	if err := e.startScheduler(ctx); err != nil {
		return err
	}
	kubelet, err := e.startKubeletAndProxy(st, nodeIP, cidr)
	if err != nil {
		return err
	}
	return e.waitNodeReady(ctx, kubelet)
}

// startScheduler starts kube-scheduler: the chart's pods, like a user's,
// name no node.
func (e *Env) startScheduler(ctx context.Context) error {
	port, err := FreePort()
	if err != nil {
		return err
	}
	e.logf("starting kube-scheduler")
	p, err := e.start("kube-scheduler", filepath.Join(e.opts.BinDir, "kube-scheduler"),
		"--kubeconfig", e.Kubeconfig, "--leader-elect=false",
		"--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(port), "--cert-dir", filepath.Join(e.Dir, "scheduler"))
	if err != nil {
		return err
	}
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: insecureTLS()}, Timeout: 2 * time.Second}
	return waitHTTP(ctx, insecure, "https://"+addr(port)+"/healthz", "", p, time.Minute)
}

// nodePrerequisites reports what the host lacks to run a node.
func nodePrerequisites() error {
	if os.Geteuid() != 0 {
		return errors.New("a real node needs root (containerd, mounts, iptables)")
	}
	for _, tool := range []string{"containerd", "containerd-shim-runc-v2", "runc", "ctr", "iptables-save", "iptables-restore", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found: run `make deps` (Debian packages containerd, runc, containernetworking-plugins, iptables)", tool)
		}
	}
	for _, plugin := range []string{"bridge", "host-local", "loopback", "portmap"} {
		if _, err := os.Stat(filepath.Join(cniBinDir, plugin)); err != nil {
			return fmt.Errorf("CNI plugin %s not in %s: run `make deps` (Debian package containernetworking-plugins)", plugin, cniBinDir)
		}
	}
	return nil
}

// recordHost names a new node and records the host as it is before it:
// what stopNode puts back.
func recordHost() (*nodeState, error) {
	id := make([]byte, 3)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	// A short directory of its own: kubelet's and containerd's unix
	// sockets live under it, and a socket's path holds at most 107 bytes.
	st := &nodeState{id: hex.EncodeToString(id), sysctls: map[string]string{}}
	st.dir = filepath.Join(os.TempDir(), NodeDirPrefix+st.id)
	st.bridge = "ra" + st.id
	st.cgroupRoot = "/reactive-autoscaler-" + st.id
	st.sock = filepath.Join(st.dir, "containerd.sock")
	var err error
	if st.iptables, err = exec.Command("iptables-save").Output(); err != nil {
		return nil, fmt.Errorf("iptables-save: %w", err)
	}
	st.ip6tables, _ = exec.Command("ip6tables-save").Output()
	for _, s := range nodeSysctls {
		if b, err := os.ReadFile(s); err == nil {
			st.sysctls[s] = strings.TrimSpace(string(b))
		}
	}
	st.netnsBefore, st.logLinksBefore, st.filesBefore = dirEntries(netnsDir), dirEntries(containerLogDir), hostFiles()
	return st, nil
}

// startContainerd writes the node's containerd and CNI configuration,
// starts containerd and imports the images.
func (e *Env) startContainerd(ctx context.Context, st *nodeState, cidr string) error {
	for _, d := range []string{"root", "state", "runc", "net.d", "ipam", "kubelet", "pod-logs"} {
		if err := os.MkdirAll(filepath.Join(st.dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(st.dir, "containerd.toml"), []byte(containerdConfig(st)), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(st.dir, "net.d", "10-reactive-autoscaler.conflist"), []byte(cniConfig(st, cidr)), 0o644); err != nil {
		return err
	}
	e.logf("starting containerd (socket %s)", st.sock)
	ctrd, err := e.start("containerd", "containerd", "--config", filepath.Join(st.dir, "containerd.toml"))
	if err != nil {
		return err
	}
	if err := waitFor(ctx, time.Minute, ctrd, func() bool { return ctr(st, "version") == nil }); err != nil {
		return fmt.Errorf("containerd did not answer: %w\n%s", err, e.Logs("containerd", 20))
	}
	for _, img := range e.opts.Node.Images {
		e.logf("importing %s", filepath.Base(img))
		if err := ctr(st, "images", "import", "--no-unpack=false", img); err != nil {
			return fmt.Errorf("importing %s: %w", img, err)
		}
	}
	return nil
}

// startKubeletAndProxy starts kubelet (in cgroups of the node's own) and
// kube-proxy, and returns kubelet's process.
func (e *Env) startKubeletAndProxy(st *nodeState, nodeIP, cidr string) (*Proc, error) {
	if err := makeCgroups(st.cgroupRoot); err != nil {
		return nil, err
	}
	ports, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	kubeletCfg := filepath.Join(st.dir, "kubelet.yaml")
	if err := os.WriteFile(kubeletCfg, []byte(kubeletConfig(st, nodeIP, ports[0], ports[1])), 0o644); err != nil {
		return nil, err
	}
	e.logf("starting kubelet as %s on %s", RealNodeName, nodeIP)
	kubelet, err := e.start("kubelet", filepath.Join(e.opts.BinDir, "kubelet"),
		"--config", kubeletCfg, "--kubeconfig", e.Kubeconfig, "--root-dir", filepath.Join(st.dir, "kubelet"),
		"--cert-dir", filepath.Join(st.dir, "kubelet", "pki"), "--node-ip", nodeIP, "--hostname-override", RealNodeName, "-v", "1")
	if err != nil {
		return nil, err
	}
	e.logf("starting kube-proxy")
	if _, err := e.start("kube-proxy", filepath.Join(e.opts.BinDir, "kube-proxy"),
		"--kubeconfig", e.Kubeconfig, "--hostname-override", RealNodeName, "--proxy-mode", "iptables",
		"--cluster-cidr", cidr, "--conntrack-max-per-core", "0", "--conntrack-tcp-timeout-established", "0",
		"--conntrack-tcp-timeout-close-wait", "0",
		"--metrics-bind-address", addr(ports[2]), "--healthz-bind-address", addr(ports[3]), "-v", "1"); err != nil {
		return nil, err
	}
	return kubelet, nil
}

// waitNodeReady waits until the node reports Ready and may take pods
// (no not-ready taint).
func (e *Env) waitNodeReady(ctx context.Context, kubelet *Proc) error {
	client, err := e.Client()
	if err != nil {
		return err
	}
	err = waitFor(ctx, 2*time.Minute, kubelet, func() bool {
		n, err := client.CoreV1().Nodes().Get(ctx, RealNodeName, metav1.GetOptions{})
		if err != nil {
			return false
		}
		for _, taint := range n.Spec.Taints {
			if taint.Key == corev1.TaintNodeNotReady && e.opts.ControllerManager {
				return false // the node lifecycle controller lifts it once Ready
			}
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return true
			}
		}
		return false
	})
	if err != nil {
		return fmt.Errorf("node %s not Ready: %w\n%s", RealNodeName, err, e.Logs("kubelet", 30))
	}
	e.logf("node %s Ready", RealNodeName)
	return nil
}

// stopNode undoes what the node changed on the host, in the order that
// frees each thing: the pods' containers first (their shims outlive
// containerd), then the node's processes (stopped by Stop before this),
// its mounts, network namespaces, bridge, cgroups, iptables and sysctls,
// and the files it wrote outside Dir.
func (e *Env) stopNode() error {
	st := e.node
	if st == nil {
		return nil
	}
	var errs []error
	// The containers (in the node's cgroups: a shim killed leaves its
	// container to init) and the shims hold mounts and network
	// namespaces: kill them first.
	killCgroups(st.cgroupRoot)
	killUnder(st.dir)
	for _, m := range mountsUnder(st.dir) {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", m, err))
		}
	}
	for name := range dirEntries(netnsDir) {
		if st.netnsBefore[name] {
			continue
		}
		p := filepath.Join(netnsDir, name)
		_ = syscall.Unmount(p, syscall.MNT_DETACH)
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			errs = append(errs, err)
		}
	}
	if _, err := net.InterfaceByName(st.bridge); err == nil {
		if out, err := exec.Command("ip", "link", "delete", st.bridge).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("deleting bridge %s: %v: %s", st.bridge, err, out))
		}
	}
	errs = append(errs, removeCgroups(st.cgroupRoot)...)
	for cmd, saved := range map[string][]byte{"iptables": st.iptables, "ip6tables": st.ip6tables} {
		if err := restoreTables(cmd, saved); err != nil {
			errs = append(errs, err)
		}
	}
	for path, v := range st.sysctls {
		if err := os.WriteFile(path, []byte(v), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restoring %s: %w", path, err))
		}
	}
	for name := range dirEntries(containerLogDir) {
		if st.logLinksBefore[name] {
			continue
		}
		p := filepath.Join(containerLogDir, name)
		if target, err := os.Readlink(p); err == nil && strings.HasPrefix(target, st.dir) {
			_ = os.Remove(p)
		}
	}
	// What it wrote outside its directory, deepest first.
	var made []string
	for p := range hostFiles() {
		if !st.filesBefore[p] {
			made = append(made, p)
		}
	}
	slices.SortFunc(made, func(a, b string) int { return len(b) - len(a) })
	for _, p := range made {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			errs = append(errs, fmt.Errorf("removing %s: %w", p, err))
		}
	}
	if len(errs) == 0 {
		if err := os.RemoveAll(st.dir); err != nil {
			errs = append(errs, err)
		}
	}
	e.node = nil
	return errors.Join(errs...)
}

const cniBinDir = "/usr/lib/cni"

// restoreTables puts cmd's (iptables' or ip6tables') rules back as saved
// was: a table saved is restored as it was; one that was not there (its
// first user was the node) is emptied, its chains deleted and its
// policies ACCEPT, as a table nobody used.
func restoreTables(cmd string, saved []byte) error {
	now, err := exec.Command(cmd + "-save").Output()
	if err != nil {
		return fmt.Errorf("%s-save: %w", cmd, err)
	}
	had := map[string]bool{}
	for _, line := range strings.Split(string(saved), "\n") {
		if strings.HasPrefix(line, "*") {
			had[line[1:]] = true
		}
	}
	table := ""
	for _, line := range strings.Split(string(now), "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
			if had[table] {
				continue
			}
			for _, op := range []string{"-F", "-X"} {
				if out, err := exec.Command(cmd, "-t", table, op).CombinedOutput(); err != nil {
					return fmt.Errorf("%s -t %s %s: %v: %s", cmd, table, op, err, out)
				}
			}
		case strings.HasPrefix(line, ":") && !had[table]:
			if f := strings.Fields(line[1:]); len(f) >= 2 && f[1] != "-" && f[1] != "ACCEPT" {
				if out, err := exec.Command(cmd, "-t", table, "-P", f[0], "ACCEPT").CombinedOutput(); err != nil {
					return fmt.Errorf("%s -t %s -P %s ACCEPT: %v: %s", cmd, table, f[0], err, out)
				}
			}
		}
	}
	if len(saved) == 0 {
		return nil
	}
	c := exec.Command(cmd + "-restore")
	c.Stdin = strings.NewReader(string(saved))
	if out, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("%s-restore: %v: %s", cmd, err, out)
	}
	return nil
}

// tableRules is cmd-save's chains and rules, without counters, comments,
// and the built-in chains at their default (ACCEPT): a table nobody uses
// reads the same whether it exists or not.
func tableRules(cmd string) []string {
	out, err := exec.Command(cmd + "-save").Output()
	if err != nil {
		return nil
	}
	var rules []string
	table := ""
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case line == "" || strings.HasPrefix(line, "#") || line == "COMMIT":
			continue
		case strings.HasPrefix(line, "*"):
			table = line[1:]
			continue
		case strings.HasPrefix(line, ":"):
			f := strings.Fields(line[1:])
			if len(f) >= 2 && f[1] == "ACCEPT" {
				continue
			}
			line = ":" + strings.Join(f[:min(2, len(f))], " ")
		}
		rules = append(rules, cmd+" "+table+" "+line)
	}
	return rules
}

func containerdConfig(st *nodeState) string {
	return fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = %[3]q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[4]q
  # No CAP_SYS_RESOURCE here: a sandbox asking for a lower OOM score
  # than containerd's own fails without this.
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = %[5]q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[6]q
    conf_dir = %[7]q
`, filepath.Join(st.dir, "root"), filepath.Join(st.dir, "state"), st.sock, PauseImage,
		filepath.Join(st.dir, "runc"), cniBinDir, filepath.Join(st.dir, "net.d"))
}

func cniConfig(st *nodeState, cidr string) string {
	return fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "reactive-autoscaler-%[1]s",
  "plugins": [
    {"type": "bridge", "bridge": %[2]q, "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": %[3]q, "ranges": [[{"subnet": %[4]q}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}
`, st.id, st.bridge, filepath.Join(st.dir, "ipam"), cidr)
}

func kubeletConfig(st *nodeState, nodeIP string, port, healthz int) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroup v1 here; the kubelet refuses it unless told.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: %[1]q
containerRuntimeEndpoint: unix://%[2]s
address: %[3]q
port: %[4]d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %[5]d
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
podLogsDir: %[6]q
volumePluginDir: %[7]q
failSwapOn: false
resolvConf: /etc/resolv.conf
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "1Mi", nodefs.available: "1%%", imagefs.available: "1%%", nodefs.inodesFree: "1%%"}
localStorageCapacityIsolation: false
enforceNodeAllocatable: []
maxPods: 110
registerNode: true
`, st.cgroupRoot, st.sock, nodeIP, port, healthz, filepath.Join(st.dir, "pod-logs"), filepath.Join(st.dir, "volume-plugins"))
}

// ctr runs containerd's client against the node's containerd, in the CRI's
// namespace.
func ctr(st *nodeState, args ...string) error {
	out, err := exec.Command("ctr", append([]string{"--address", st.sock, "--namespace", "k8s.io"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ctr %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// hostIP is the address of the interface of the default route: kubelet's
// node IP must not be loopback (the API server reaches it for logs and
// exec, and pods are routed to it).
func hostIP() (string, error) {
	c, err := net.Dial("udp", "192.0.2.1:9") // no packet is sent: the route is looked up
	if err != nil {
		return "", fmt.Errorf("finding the host's address: %w", err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP.String(), nil
}

func waitFor(ctx context.Context, timeout time.Duration, p *Proc, cond func() bool) error {
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		if p != nil && p.Exited() {
			return false, fmt.Errorf("%s exited: %v", p.Name, p.Err())
		}
		return cond(), nil
	})
}

func dirEntries(dir string) map[string]bool {
	out := map[string]bool{}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		out[e.Name()] = true
	}
	return out
}

// mountsUnder lists the mount points under dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 {
			mp := unescapeMount(fields[4])
			if mp == dir || strings.HasPrefix(mp, dir+"/") {
				out = append(out, mp)
			}
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// killUnder kills every process whose command line names dir (the node's
// containerd shims, which name its socket and state) and waits for them.
func killUnder(dir string) {
	var pids []int
	for _, pid := range processes() {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && strings.Contains(string(b), dir) && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	killAndWait(pids)
}

// killCgroups kills every process in root's cgroups: those of the pids
// hierarchy, which holds every process once (and of the memory one, in
// case a kernel has no pids controller).
func killCgroups(root string) {
	var pids []int
	for _, h := range []string{"/sys/fs/cgroup/pids", "/sys/fs/cgroup/memory"} {
		_ = filepath.WalkDir(h+root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.Name() != "cgroup.procs" {
				return nil
			}
			b, _ := os.ReadFile(p)
			for _, l := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(l); err == nil && pid != os.Getpid() {
					pids = append(pids, pid)
				}
			}
			return nil
		})
	}
	killAndWait(pids)
}

// killAndWait sends SIGKILL to pids and waits, 10 s at most, until they
// are gone.
func killAndWait(pids []int) {
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for time.Now().Before(deadline) && syscall.Kill(pid, 0) == nil {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func processes() []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// makeCgroups creates root in every cgroup v1 hierarchy, as kubelet's
// cgroupRoot must exist; a cpuset gets its parent's CPUs and memory nodes
// (an empty one takes no task).
func makeCgroups(root string) error {
	hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, h := range hierarchies {
		if fi, err := os.Stat(h); err != nil || !fi.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(h, "cgroup.procs")); err != nil {
			continue // not a hierarchy's root
		}
		if err := os.Mkdir(filepath.Join(h, root), 0o755); err != nil && !os.IsExist(err) {
			return fmt.Errorf("creating cgroup %s: %w", filepath.Join(h, root), err)
		}
		if filepath.Base(h) == "cpuset" {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				b, err := os.ReadFile(filepath.Join(h, f))
				if err == nil {
					err = os.WriteFile(filepath.Join(h, root, f), b, 0o644)
				}
				if err != nil {
					return fmt.Errorf("cgroup %s: %s: %w", root, f, err)
				}
			}
		}
	}
	return nil
}

// removeCgroups removes root and everything under it in every cgroup v1
// hierarchy (and the v2 tree), deepest first. A cgroup whose processes
// are gone is an empty directory that rmdir removes.
func removeCgroups(root string) []error {
	var errs []error
	hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*")
	hierarchies = append(hierarchies, "/sys/fs/cgroup")
	for _, h := range hierarchies {
		top := filepath.Join(h, root)
		if _, err := os.Stat(top); err != nil {
			continue
		}
		var dirs []string
		_ = filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for _, d := range slices.Backward(dirs) {
			// A cgroup emptied a moment ago may still be busy.
			var err error
			for range 50 {
				if err = syscall.Rmdir(d); err == nil || errors.Is(err, syscall.ENOENT) {
					err = nil
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("removing cgroup %s: %w", d, err))
			}
		}
	}
	return errs
}

// HostState is what a real node may change on the host, in a form two
// readings can be compared by: iptables' chains and rules (without
// counters), mount points, network links, network namespaces, cgroups
// named for the environment, the container log links, node directories,
// the files under hostPaths, and processes whose command line names a directory of the
// environment's or a node's.
type HostState struct {
	IPTables, Mounts, Links, Netns, Cgroups, ContainerLogs, Processes, NodeDirs, Files []string
}

// ReadHostState reads the host's state; dirs are the environment
// directories whose processes count (none: only the rest).
func ReadHostState(dirs ...string) HostState {
	var st HostState
	st.IPTables = append(tableRules("iptables"), tableRules("ip6tables")...)
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 4 {
				st.Mounts = append(st.Mounts, f[4])
			}
		}
	}
	if ifaces, err := net.Interfaces(); err == nil {
		for _, i := range ifaces {
			st.Links = append(st.Links, i.Name)
		}
	}
	st.Netns = sortedKeys(dirEntries(netnsDir))
	st.ContainerLogs = sortedKeys(dirEntries(containerLogDir))
	cg, _ := filepath.Glob("/sys/fs/cgroup/*/reactive-autoscaler-*")
	cg2, _ := filepath.Glob("/sys/fs/cgroup/reactive-autoscaler-*")
	st.Cgroups = append(cg, cg2...)
	st.NodeDirs, _ = filepath.Glob(filepath.Join(os.TempDir(), NodeDirPrefix+"*"))
	st.Files = sortedKeys(hostFiles())
	for _, pid := range processes() {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		for _, d := range append(dirs, filepath.Join(os.TempDir(), NodeDirPrefix)) {
			if d != "" && strings.Contains(cmd, d) && pid != os.Getpid() {
				st.Processes = append(st.Processes, fmt.Sprintf("%d %s", pid, cmd))
			}
		}
	}
	slices.Sort(st.Mounts)
	slices.Sort(st.Links)
	slices.Sort(st.Cgroups)
	return st
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// discoverPods keeps file, a Prometheus file_sd list, holding the pods
// annotated prometheus.io/scrape=true that are Running with an IP, at
// their prometheus.io/port, labelled namespace and pod: what
// kubernetes_sd_configs with the usual relabelling finds. It runs until
// ctx ends.
func (e *Env) discoverPods(ctx context.Context, file string) error {
	client, err := e.Client()
	if err != nil {
		return err
	}
	if err := writeJSON(file, []any{}); err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	pods := factory.Core().V1().Pods().Informer()
	write := func() {
		var groups []targetGroup
		for _, obj := range pods.GetStore().List() {
			p := obj.(*corev1.Pod)
			port := p.Annotations["prometheus.io/port"]
			if p.Annotations["prometheus.io/scrape"] != "true" || p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" || port == "" || p.DeletionTimestamp != nil {
				continue
			}
			groups = append(groups, targetGroup{Targets: []string{net.JoinHostPort(p.Status.PodIP, port)},
				Labels: map[string]string{"namespace": p.Namespace, "pod": p.Name}})
		}
		slices.SortFunc(groups, func(a, b targetGroup) int { return strings.Compare(a.Targets[0], b.Targets[0]) })
		if groups == nil {
			groups = []targetGroup{}
		}
		if err := writeJSON(file+".tmp", groups); err == nil {
			_ = os.Rename(file+".tmp", file)
		}
	}
	if _, err := pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { write() }, UpdateFunc: func(any, any) { write() }, DeleteFunc: func(any) { write() },
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	return nil
}
