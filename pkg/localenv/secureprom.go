package localenv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	promconfig "github.com/prometheus/common/config"
	"golang.org/x/crypto/bcrypt"
	"sigs.k8s.io/yaml"
)

// SecurePrometheus is a second Prometheus scraping the environment's
// targets, as production ones are reached: over TLS, with a certificate
// signed by a CA made for it, behind basic auth (its own
// --web.config.file).
type SecurePrometheus struct {
	URL    string // https://127.0.0.1:port
	CAFile string // PEM of the CA that signed its certificate
	Proc   *Proc
}

// StartSecurePrometheus starts a SecurePrometheus named name that accepts
// user with password, and waits until it answers them.
func (e *Env) StartSecurePrometheus(ctx context.Context, name, user, password string) (*SecurePrometheus, error) {
	if e.promArgs == nil {
		return nil, fmt.Errorf("the environment has no Prometheus whose targets to share")
	}
	dir := filepath.Join(e.Dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	caFile := filepath.Join(dir, "ca.crt")
	if err := writeServingPair(dir, caFile); err != nil {
		return nil, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		return nil, err
	}
	web, err := yaml.Marshal(map[string]any{
		"tls_server_config": map[string]any{"cert_file": filepath.Join(dir, "tls.crt"), "key_file": filepath.Join(dir, "tls.key")},
		"basic_auth_users":  map[string]string{user: string(hash)},
	})
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "web.yml"), web, 0o600); err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	// The environment's targets and interval; no rules, so that it sends
	// no alerts of its own.
	cfg, err := yaml.Marshal(e.scrapeConfig())
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), cfg, 0o600); err != nil {
		return nil, err
	}
	args := []string{"--config.file", filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path", filepath.Join(dir, "data"),
		"--web.listen-address", addr(port), "--web.config.file", filepath.Join(dir, "web.yml"), "--log.level", "warn"}
	e.logf("starting a TLS and basic-auth Prometheus %s on https://%s", name, addr(port))
	p, err := e.StartProcess(name, e.promArgs[0], nil, args...)
	if err != nil {
		return nil, err
	}
	sp := &SecurePrometheus{URL: "https://" + addr(port), CAFile: caFile, Proc: p}
	client, err := promconfig.NewClientFromConfig(promconfig.HTTPClientConfig{
		BasicAuth: &promconfig.BasicAuth{Username: user, Password: promconfig.Secret(password)},
		TLSConfig: promconfig.TLSConfig{CAFile: caFile},
	}, "localenv")
	if err != nil {
		return nil, err
	}
	client.Timeout = 2 * time.Second
	return sp, waitHTTP(ctx, client, sp.URL+"/-/ready", "", p, 2*time.Minute)
}

// writeServingPair writes a CA (caFile) and a certificate it signs for
// 127.0.0.1 and localhost (dir/tls.crt, dir/tls.key).
func writeServingPair(dir, caFile string) error {
	return writeCertPair(dir, caFile, "localenv-prometheus-ca", "127.0.0.1", x509.ExtKeyUsageServerAuth)
}

// writeCertPair writes a CA named caName (caFile) and a certificate it
// signs for cn, 127.0.0.1 and localhost with these usages (dir/tls.crt,
// dir/tls.key).
func writeCertPair(dir, caFile, caName, cn string, usages ...x509.ExtKeyUsage) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: caName},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: usages}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	for path, block := range map[string]*pem.Block{
		caFile:                        {Type: "CERTIFICATE", Bytes: caDER},
		filepath.Join(dir, "tls.crt"): {Type: "CERTIFICATE", Bytes: leafDER},
		filepath.Join(dir, "tls.key"): {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			return err
		}
	}
	return nil
}
