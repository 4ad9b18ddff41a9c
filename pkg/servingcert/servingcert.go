// Package servingcert serves the controller's TLS certificates from files
// that are replaced in place (a renewed Secret), for both of its servers.
package servingcert

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Files serves a TLS certificate (the webhook's, the metrics server's)
// from a certificate and a key file, read again when either changes (cert-manager renews the Secret
// in place), checked at most once a second. A pair that does not load
// keeps the last good one in service.
type Files struct {
	certFile, keyFile string
	clock             clock.PassiveClock

	mu      sync.Mutex
	current *tls.Certificate
	stamp   string // modification times and sizes of both files
	checked time.Time
	lastErr error
}

// NewFiles loads the pair; one that does not load is an error.
func NewFiles(certFile, keyFile string, clk clock.PassiveClock) (*Files, error) {
	if clk == nil {
		clk = clock.RealClock{}
	}
	c := &Files{certFile: certFile, keyFile: keyFile, clock: clk}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Files) reload() error {
	stamp := ""
	for _, f := range []string{c.certFile, c.keyFile} {
		st, err := os.Stat(f)
		if err != nil {
			return err
		}
		stamp += fmt.Sprintf("%s/%d;", st.ModTime().UTC().Format(time.RFC3339Nano), st.Size())
	}
	if stamp == c.stamp && c.current != nil {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("loading the webhook's TLS certificate: %w", err)
	}
	c.current, c.stamp = &cert, stamp
	return nil
}

// GetCertificate is tls.Config's GetCertificate: the current pair.
func (c *Files) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.clock.Now(); now.Sub(c.checked) >= time.Second {
		c.checked = now
		c.lastErr = c.reload() // on error the last good pair stays
	}
	return c.current, nil
}

// Err is the last reload's error (nil: the files loaded).
func (c *Files) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}
