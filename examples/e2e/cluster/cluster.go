// Package cluster runs a real control plane for Palisade's end-to-end tests:
// etcd and kube-apiserver on loopback, with random free ports, a temporary
// directory, a CA and serving certificate made here, static bearer tokens
// and RBAC authorization. It never installs or builds anything:
//
//   - etcd comes from Debian's etcd-server package (/usr/bin/etcd), or
//     $PALISADE_E2E_ETCD;
//   - kube-apiserver is built by examples/e2e/build-apiserver.sh into a cache
//     keyed by the content of examples/e2e/apiserver/go.mod and go.sum (the
//     same path is computed here), or $PALISADE_E2E_KUBE_APISERVER.
//
// Start skips the test, saying why, when either is missing or the test does
// not run as root (the end-to-end tests program nftables in network
// namespaces). Two identities are provisioned: an admin (group
// system:masters) and the node agent, authenticated as the ServiceAccount
// kube-system/palisade-node-agent and therefore holding exactly what RBAC
// grants that ServiceAccount (see ApplyRBAC).
//
// Everything is stopped and removed when the test ends, passed or failed
// (t.Cleanup); children run in their own process groups and are killed by
// the kernel if the test binary dies. Set PALISADE_E2E_KEEP=1 to keep the
// temporary directory (logs, kubeconfigs) for inspection.
package cluster

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const (
	// AgentNamespace and AgentServiceAccount name the node agent's
	// ServiceAccount; the agent token authenticates as it.
	AgentNamespace      = "kube-system"
	AgentServiceAccount = "palisade-node-agent"
	// AgentUser is the user name the API server sees for the agent.
	AgentUser = "system:serviceaccount:" + AgentNamespace + ":" + AgentServiceAccount

	serviceCIDR = "10.96.0.0/16"
	serviceIP   = "10.96.0.1"
)

// Options tune Start. The zero value is what the tests use.
type Options struct {
	// EtcdPath and APIServerPath override the binaries' locations.
	EtcdPath, APIServerPath string
	// StartTimeout bounds the wait for etcd and for the API server's
	// /readyz; 0 means 3 minutes (a 2-core machine running other tests).
	StartTimeout time.Duration
	// ExtraAPIServerArgs are appended to kube-apiserver's command line.
	ExtraAPIServerArgs []string
}

// Cluster is a running etcd and kube-apiserver.
type Cluster struct {
	// Dir is the temporary directory holding data, certificates, tokens,
	// kubeconfigs and logs.
	Dir string
	// Server is the API server's URL, https://127.0.0.1:PORT.
	Server string
	// EtcdURL is etcd's client URL.
	EtcdURL string
	// CAPEM is the CA that signed the API server's certificate.
	CAPEM []byte
	// AdminToken (system:masters) and AgentToken (the node agent's
	// ServiceAccount) are static bearer tokens.
	AdminToken, AgentToken string
	// AdminKubeconfig and AgentKubeconfig are kubeconfig files for them.
	AdminKubeconfig, AgentKubeconfig string

	t         testing.TB
	etcd, api *Process
	mu        sync.Mutex
	extra     []*Process // started by the test (agents), stopped first
	apiPath   string     // kube-apiserver binary and the arguments it runs with,
	apiArgs   []string   // kept for RestartAPIServer (same port, certs, etcd)
	closed    bool
}

// Binaries returns the etcd and kube-apiserver paths Start would use, or a
// reason why the end-to-end tests cannot run here.
func Binaries(opts Options) (etcd, apiserver string, reason string) {
	etcd = firstNonEmpty(opts.EtcdPath, os.Getenv("PALISADE_E2E_ETCD"))
	if etcd == "" {
		if p, err := exec.LookPath("etcd"); err == nil {
			etcd = p
		} else {
			etcd = "/usr/bin/etcd"
		}
	}
	if !executable(etcd) {
		return "", "", fmt.Sprintf("etcd not found at %s (CI installs Debian's etcd-server package; or set PALISADE_E2E_ETCD)", etcd)
	}
	apiserver = firstNonEmpty(opts.APIServerPath, os.Getenv("PALISADE_E2E_KUBE_APISERVER"))
	if apiserver == "" {
		p, err := CachedAPIServerPath()
		if err != nil {
			return "", "", "kube-apiserver: " + err.Error()
		}
		apiserver = p
	}
	if !executable(apiserver) {
		return "", "", fmt.Sprintf("kube-apiserver not built at %s: run examples/e2e/build-apiserver.sh (or set PALISADE_E2E_KUBE_APISERVER)", apiserver)
	}
	return etcd, apiserver, ""
}

// Skip skips t unless it runs as root and both binaries are present.
func Skip(t testing.TB, opts Options) (etcd, apiserver string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("end-to-end tests need root (network namespaces, nftables)")
	}
	etcd, apiserver, reason := Binaries(opts)
	if reason != "" {
		t.Skip(reason)
	}
	return etcd, apiserver
}

// Start starts etcd and kube-apiserver, waits until the API server is ready
// and returns the cluster; t.Cleanup stops it. It skips t (see Skip) when the
// binaries are missing and fails it when the cluster does not come up.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	etcdPath, apiPath := Skip(t, opts)
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 3 * time.Minute
	}
	dir, err := os.MkdirTemp("", "palisade-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{Dir: dir, t: t}
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), opts.StartTimeout)
	defer cancel()
	if err := c.start(ctx, etcdPath, apiPath, opts); err != nil {
		t.Fatalf("cluster: %v", err)
	}
	return c
}

func (c *Cluster) start(ctx context.Context, etcdPath, apiPath string, opts Options) error {
	p, err := newPKI()
	if err != nil {
		return err
	}
	c.CAPEM = p.caPEM
	c.AdminToken, c.AgentToken = randomToken(), randomToken()
	files := map[string][]byte{
		"ca.crt":     p.caPEM,
		"server.crt": p.serverCertPEM,
		"server.key": p.serverKeyPEM,
		"sa.key":     p.saKeyPEM,
		"sa.pub":     p.saPubPEM,
		// token,user,uid,"group1,group2"
		"tokens.csv": []byte(fmt.Sprintf("%s,palisade-e2e-admin,palisade-e2e-admin,\"system:masters\"\n"+
			"%s,%s,palisade-e2e-agent,\"system:serviceaccounts,system:serviceaccounts:%s,system:authenticated\"\n",
			c.AdminToken, c.AgentToken, AgentUser, AgentNamespace)),
	}
	for name, data := range files {
		if err := writeFile(c.path(name), data); err != nil {
			return err
		}
	}

	if err := c.startEtcd(ctx, etcdPath); err != nil {
		return err
	}
	if err := c.startAPIServer(ctx, apiPath, opts.ExtraAPIServerArgs); err != nil {
		return err
	}
	c.AdminKubeconfig = c.path("admin.kubeconfig")
	c.AgentKubeconfig = c.path("agent.kubeconfig")
	if err := writeFile(c.AdminKubeconfig, c.kubeconfig("palisade-e2e-admin", c.AdminToken)); err != nil {
		return err
	}
	if err := writeFile(c.AgentKubeconfig, c.kubeconfig(AgentServiceAccount, c.AgentToken)); err != nil {
		return err
	}
	return nil
}

func (c *Cluster) path(name string) string { return filepath.Join(c.Dir, name) }

// startEtcd runs a single-member etcd on two free loopback ports, retrying
// with new ports if another process took one in between.
func (c *Cluster) startEtcd(ctx context.Context, path string) error {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		ports, err := freePorts(2)
		if err != nil {
			return err
		}
		client := "http://127.0.0.1:" + strconv.Itoa(ports[0])
		peer := "http://127.0.0.1:" + strconv.Itoa(ports[1])
		args := []string{
			"--name=e2e",
			"--data-dir=" + c.path("etcd-data"),
			"--listen-client-urls=" + client,
			"--advertise-client-urls=" + client,
			"--listen-peer-urls=" + peer,
			"--initial-advertise-peer-urls=" + peer,
			"--initial-cluster=e2e=" + peer,
			"--initial-cluster-state=new",
			"--initial-cluster-token=palisade-e2e",
			"--logger=zap",
			"--log-level=warn",
			"--quota-backend-bytes=" + strconv.Itoa(2<<30),
		}
		_ = os.RemoveAll(c.path("etcd-data"))
		p, err := startProcess("etcd", c.path("etcd.log"), path, args, nil)
		if err != nil {
			return err
		}
		err = waitHTTP(ctx, p, func() error {
			resp, err := http.Get(client + "/health")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("etcd /health: %s", resp.Status)
			}
			return nil
		})
		if err == nil {
			c.etcd, c.EtcdURL = p, client
			return nil
		}
		p.Stop(5 * time.Second)
		lastErr = fmt.Errorf("etcd did not become healthy: %v\n--- etcd.log (tail) ---\n%s", err, p.Tail(30))
		if ctx.Err() != nil {
			break
		}
	}
	return lastErr
}

func (c *Cluster) startAPIServer(ctx context.Context, path string, extra []string) error {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		ports, err := freePorts(1)
		if err != nil {
			return err
		}
		server := "https://127.0.0.1:" + strconv.Itoa(ports[0])
		args := []string{
			"--etcd-servers=" + c.EtcdURL,
			"--bind-address=127.0.0.1",
			"--advertise-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(ports[0]),
			"--cert-dir=" + c.path("certs"),
			"--tls-cert-file=" + c.path("server.crt"),
			"--tls-private-key-file=" + c.path("server.key"),
			"--token-auth-file=" + c.path("tokens.csv"),
			"--authorization-mode=RBAC",
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file=" + c.path("sa.pub"),
			"--service-account-signing-key-file=" + c.path("sa.key"),
			"--service-cluster-ip-range=" + serviceCIDR,
			// No controller-manager runs, so nothing creates the "default"
			// ServiceAccount of new namespaces: pods are created without one.
			"--disable-admission-plugins=ServiceAccount",
			// The kubernetes Service's endpoints would be 127.0.0.1, which
			// endpoint validation rejects; nothing here needs them.
			"--endpoint-reconciler-type=none",
			"--profiling=false",
			"--v=1",
		}
		args = append(args, extra...)
		p, err := startProcess("kube-apiserver", c.path("kube-apiserver.log"), path, args, nil)
		if err != nil {
			return err
		}
		c.Server = server
		hc := c.httpClient()
		err = waitHTTP(ctx, p, func() error { return c.readyz(ctx, hc, server) })
		if err == nil {
			c.api, c.apiPath, c.apiArgs = p, path, args
			return nil
		}
		p.Stop(10 * time.Second)
		lastErr = fmt.Errorf("kube-apiserver did not become ready: %v\n--- kube-apiserver.log (tail) ---\n%s", err, p.Tail(40))
		// Retry only when the port was taken under us.
		if ctx.Err() != nil || !strings.Contains(p.Tail(40), "address already in use") {
			break
		}
	}
	return lastErr
}

// waitHTTP polls check until it succeeds, the process exits or ctx ends.
func waitHTTP(ctx context.Context, p *Process, check func() error) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = check(); last == nil {
			return nil
		}
		select {
		case <-p.Exited():
			return fmt.Errorf("%s exited: %v (last check: %v)", p.Name, p.ExitErr(), last)
		case <-ctx.Done():
			return fmt.Errorf("%w (last check: %v)", ctx.Err(), last)
		case <-tick.C:
		}
	}
}

func (c *Cluster) httpClient() *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.CAPEM)
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
}

func (c *Cluster) kubeconfig(user, token string) []byte {
	return []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: palisade-e2e
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    token: %s
contexts:
- name: palisade-e2e
  context:
    cluster: palisade-e2e
    user: %s
current-context: palisade-e2e
`, c.Server, base64.StdEncoding.EncodeToString(c.CAPEM), user, token, user))
}

// AdminConfig is a client configuration for the admin (system:masters).
func (c *Cluster) AdminConfig() *rest.Config { return c.restConfig(c.AdminToken) }

// AgentConfig is a client configuration for the node agent's ServiceAccount.
func (c *Cluster) AgentConfig() *rest.Config { return c.restConfig(c.AgentToken) }

func (c *Cluster) restConfig(token string) *rest.Config {
	return &rest.Config{
		Host:            c.Server,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.CAPEM},
		QPS:             1000,
		Burst:           1000,
		Timeout:         30 * time.Second,
	}
}

// AdminClient and AgentClient are typed clients for the two identities.
func (c *Cluster) AdminClient() kubernetes.Interface { return c.mustClient(c.AdminConfig()) }

// AgentClient is a typed client authenticated as the node agent.
func (c *Cluster) AgentClient() kubernetes.Interface { return c.mustClient(c.AgentConfig()) }

func (c *Cluster) mustClient(cfg *rest.Config) kubernetes.Interface {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	return cs
}

func (c *Cluster) adminDynamic() (dynamic.Interface, error) {
	return dynamic.NewForConfig(c.AdminConfig())
}

// Track makes Close stop p (before the API server), e.g. a node agent.
func (c *Cluster) Track(p *Process) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.extra = append(c.extra, p)
}

// Close stops every process (tracked ones, then the API server, then etcd)
// and removes Dir. When the test failed, it first logs the tail of each
// process's log (PALISADE_E2E_KEEP=1 keeps the whole logs). It is idempotent and registered with t.Cleanup by Start.
func (c *Cluster) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	procs := append([]*Process(nil), c.extra...)
	api, etcd := c.api, c.etcd
	c.mu.Unlock()
	for _, p := range []*Process{api, etcd} {
		if p != nil {
			procs = append(procs, p)
		}
	}
	// On failure, what each process logged up to now (before the lines
	// of its own shutdown).
	if c.t.Failed() {
		for _, p := range procs {
			c.t.Logf("--- %s log (tail, %s) ---\n%s", p.Name, p.LogPath, p.Tail(40))
		}
	}
	for _, p := range procs {
		p.Stop(10 * time.Second)
	}
	if os.Getenv("PALISADE_E2E_KEEP") != "" {
		c.t.Logf("cluster: kept %s", c.Dir)
		return
	}
	if err := os.RemoveAll(c.Dir); err != nil {
		c.t.Errorf("cluster: remove %s: %v", c.Dir, err)
	}
}

// CachedAPIServerPath is where examples/e2e/build-apiserver.sh puts the
// kube-apiserver binary: the cache directory
// (${PALISADE_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/palisade-e2e})
// joined with kube-apiserver-<first 16 hex digits of sha256(go.mod + go.sum)>
// of the examples/e2e/apiserver module.
func CachedAPIServerPath() (string, error) {
	mod, err := apiserverModuleDir()
	if err != nil {
		return "", err
	}
	key, err := ModuleKey(mod)
	if err != nil {
		return "", err
	}
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(cache, "kube-apiserver-"+key), nil
}

// CacheDir is the directory where the end-to-end suite keeps what it builds
// once per machine (kube-apiserver, the flannel CNI plugin):
// $PALISADE_E2E_CACHE, or palisade-e2e under $XDG_CACHE_HOME or
// $HOME/.cache. It is not created here.
func CacheDir() (string, error) {
	if cache := os.Getenv("PALISADE_E2E_CACHE"); cache != "" {
		return cache, nil
	}
	base, err := os.UserCacheDir() // $XDG_CACHE_HOME or $HOME/.cache
	if err != nil {
		return "", err
	}
	return filepath.Join(base, "palisade-e2e"), nil
}

// ModuleKey is the cache key of the module in dir: the first 16 hex digits
// of the sha256 of go.mod followed by go.sum.
func ModuleKey(dir string) (string, error) {
	h := sha256.New()
	for _, name := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return "", err
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// apiserverModuleDir finds examples/e2e/apiserver: beside this package's
// source, or above the working directory (go test runs in the package's
// directory).
func apiserverModuleDir() (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		d := filepath.Join(filepath.Dir(file), "..", "apiserver")
		if exists(filepath.Join(d, "go.mod")) {
			return filepath.Clean(d), nil
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		cand := filepath.Join(d, "examples", "e2e", "apiserver")
		if exists(filepath.Join(cand, "go.mod")) {
			return cand, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("examples/e2e/apiserver/go.mod not found above " + wd)
		}
	}
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// FreeAddr returns a loopback address with a port free right now.
func FreeAddr() (string, error) {
	p, err := freePorts(1)
	if err != nil {
		return "", err
	}
	return "127.0.0.1:" + strconv.Itoa(p[0]), nil
}

func randomToken() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func executable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// readyz asks the API server at server for /readyz, as the admin.
func (c *Cluster) readyz(ctx context.Context, hc *http.Client, server string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, server+"/readyz", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.AdminToken)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/readyz: %s", resp.Status)
	}
	return nil
}
