//go:build e2e

package e2e

import (
	"net"
	"sync"
	"testing"
	"time"
)

// faultProxy is a TCP proxy to one backend that a test can break: pass
// bytes through, add latency to every chunk in both directions (requests
// and answers alike, keeping throughput), or blackhole everything (open
// connections hang, new ones are accepted and hang too), as a network
// partition does.
type faultProxy struct {
	Addr    string
	backend string
	mu      sync.Mutex
	delay   time.Duration
	hole    bool
	changed chan struct{} // closed and replaced on every change
}

func newFaultProxy(t *testing.T, backend string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{Addr: ln.Addr().String(), backend: backend, changed: make(chan struct{})}
	t.Cleanup(func() {
		ln.Close()
		p.set(0, false) // release what the blackhole holds
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.DialTimeout("tcp", backend, 5*time.Second)
				if err != nil {
					return
				}
				defer u.Close()
				done := make(chan struct{}, 2)
				go func() { p.pipe(u, c); done <- struct{}{} }()
				go func() { p.pipe(c, u); done <- struct{}{} }()
				<-done
			}()
		}
	}()
	return p
}

// Blackhole stops all traffic until Heal.
func (p *faultProxy) Blackhole() { p.set(0, true) }

// Delay adds d to every chunk in both directions until Heal.
func (p *faultProxy) Delay(d time.Duration) { p.set(d, false) }

// Heal passes traffic through again.
func (p *faultProxy) Heal() { p.set(0, false) }

func (p *faultProxy) set(delay time.Duration, hole bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay, p.hole = delay, hole
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *faultProxy) state() (time.Duration, bool, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.delay, p.hole, p.changed
}

type chunk struct {
	data []byte
	due  time.Time
}

// pipe copies src to dst: a reader stamps each chunk with when it may be
// written (now + delay), a writer holds it until then, and neither moves
// while the proxy is a blackhole.
func (p *faultProxy) pipe(dst, src net.Conn) {
	chunks := make(chan chunk, 1024)
	go func() {
		defer close(chunks)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				delay, _, _ := p.state()
				chunks <- chunk{buf[:n], time.Now().Add(delay)}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range chunks {
		for {
			_, hole, changed := p.state()
			if !hole {
				break
			}
			<-changed
		}
		time.Sleep(time.Until(c.due))
		if _, err := dst.Write(c.data); err != nil {
			return
		}
	}
	if tcp, ok := dst.(*net.TCPConn); ok {
		_ = tcp.CloseWrite()
	}
}
