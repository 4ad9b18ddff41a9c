package webhook

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"os"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// TokenFile holds the webhook's bearer token, read from a file and read again
// when the file changes (a rotated Secret), checked at most once a second.
type TokenFile struct {
	path  string
	clock clock.PassiveClock

	mu      sync.Mutex
	token   []byte
	modTime time.Time
	size    int64
	checked time.Time
}

// NewTokenFile reads the token at path; an empty file is an error.
func NewTokenFile(path string, clk clock.PassiveClock) (*TokenFile, error) {
	if clk == nil {
		clk = clock.RealClock{}
	}
	t := &TokenFile{path: path, clock: clk}
	if err := t.reload(); err != nil {
		return nil, err
	}
	if len(t.token) == 0 {
		return nil, errEmptyToken
	}
	return t, nil
}

var errEmptyToken = errors.New("the webhook token file is empty")

func (t *TokenFile) reload() error {
	st, err := os.Stat(t.path)
	if err != nil {
		return err
	}
	if st.ModTime().Equal(t.modTime) && st.Size() == t.size && t.token != nil {
		return nil
	}
	b, err := os.ReadFile(t.path)
	if err != nil {
		return err
	}
	t.token = bytes.TrimSpace(b)
	t.modTime, t.size = st.ModTime(), st.Size()
	return nil
}

// Valid reports, in constant time, whether got is the current token. An
// unreadable or empty file keeps the last good token.
func (t *TokenFile) Valid(got string) bool {
	if t == nil {
		return false
	}
	t.mu.Lock()
	if now := t.clock.Now(); now.Sub(t.checked) >= time.Second {
		t.checked = now
		old := t.token
		if err := t.reload(); err != nil || len(t.token) == 0 {
			t.token = old
		}
	}
	want := t.token
	t.mu.Unlock()
	return len(want) > 0 && subtle.ConstantTimeCompare([]byte(got), want) == 1
}
