package servingcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// writePair writes a self-signed certificate for name and its key.
func writePair(t *testing.T, dir, name string, mod time.Time) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	for f, b := range map[string]*pem.Block{cert: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "EC PRIVATE KEY", Bytes: kder}} {
		if err := os.WriteFile(f, pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(f, mod, mod); err != nil {
			t.Fatal(err)
		}
	}
	return cert, keyFile
}

func commonName(t *testing.T, c *tls.Certificate) string {
	t.Helper()
	x, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return x.Subject.CommonName
}

// certFixture is a pair for old.example written an hour before the fake
// clock's now, and the Files serving it.
type certFixture struct {
	dir, cert, key string
	clk            *clocktesting.FakeClock
	mod            time.Time
	c              *Files
}

func newCertFixture(t *testing.T) certFixture {
	t.Helper()
	f := certFixture{dir: t.TempDir(), clk: clocktesting.NewFakeClock(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)),
		mod: time.Date(2026, 11, 27, 11, 0, 0, 0, time.UTC)}
	f.cert, f.key = writePair(t, f.dir, "old.example", f.mod)
	var err error
	if f.c, err = NewFiles(f.cert, f.key, f.clk); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestARenewedCertificateIsServedWithoutARestart: cert-manager rewrites the
// Secret's files; the next handshake after a second gets the new pair, and
// a broken rewrite keeps the last good one.
func TestARenewedCertificateIsServedWithoutARestart(t *testing.T) {
	f := newCertFixture(t)
	dir, clk, mod, cert, key, c := f.dir, f.clk, f.mod, f.cert, f.key, f.c
	got, _ := c.GetCertificate(nil)
	if commonName(t, got) != "old.example" {
		t.Fatalf("serving %q", commonName(t, got))
	}
	writePair(t, dir, "new.example", mod.Add(time.Minute))
	got, _ = c.GetCertificate(nil)
	if commonName(t, got) != "old.example" {
		t.Errorf("re-read within a second of the last check")
	}
	clk.Step(time.Second)
	got, _ = c.GetCertificate(nil)
	if commonName(t, got) != "new.example" {
		t.Errorf("after the rewrite and a second: serving %q, want new.example", commonName(t, got))
	}
	if err := os.WriteFile(key, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	clk.Step(time.Second)
	got, _ = c.GetCertificate(nil)
	if commonName(t, got) != "new.example" || c.Err() == nil {
		t.Errorf("a broken key file: serving %q, error %v; want the last good pair and an error", commonName(t, got), c.Err())
	}
	if _, err := NewFiles(cert, key, clk); err == nil {
		t.Error("a broken pair loaded at start")
	}
}

// TestAServerHandsOutTheRenewedCertificate: a real TLS listener configured
// as the binary configures the webhook's presents the renewed pair to the
// next connection.
func TestAServerHandsOutTheRenewedCertificate(t *testing.T) {
	f := newCertFixture(t)
	dir, clk, mod, c := f.dir, f.clk, f.mod, f.c
	// As run.go: no Certificates, GetCertificate for every handshake.
	srv := &http.Server{Handler: http.NotFoundHandler(), TLSConfig: &tls.Config{GetCertificate: c.GetCertificate, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	defer srv.Close()
	served := func() string {
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reads the presented certificate only
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := served(); got != "old.example" {
		t.Fatalf("served %q", got)
	}
	writePair(t, dir, "new.example", mod.Add(time.Minute))
	clk.Step(time.Second)
	if got := served(); got != "new.example" {
		t.Errorf("after a renewal: served %q, want new.example", got)
	}
}
