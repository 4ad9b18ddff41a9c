// Package metricsauth lets only the cluster's authorized identities read
// the controller's /metrics, the way kube-rbac-proxy and controller-runtime's
// secure metrics do: a request carries a bearer token the API server
// accepts (a TokenReview) for a user allowed the "get" verb on the
// non-resource URL it asks for (a SubjectAccessReview). Both answers are
// cached, so a scrape every 15 s costs the API server two reviews a few
// times an hour. It is built on the API server's own delegating
// authenticator and authorizer (k8s.io/apiserver).
package metricsauth

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// Cache lifetimes of the reviews. An allowed scraper is re-checked every
// AllowTTL; a refused one may retry after DenyTTL (an operator who just
// bound the role does not wait long).
const (
	TokenTTL = 2 * time.Minute
	AllowTTL = 5 * time.Minute
	DenyTTL  = 10 * time.Second
)

// Bounds on what an unauthenticated request may cost. Every request
// that is not a cached allowed scrape takes one of MaxInFlight slots for
// its reviews, or is answered 429 at once: a flood of random tokens costs
// the API server at most MaxInFlight reviews at a time, on a client of
// the guard's own. A token longer than MaxTokenBytes (a service account
// token is about 1 KB) is refused without a review.
const (
	DefaultMaxInFlight = 4
	MaxTokenBytes      = 4096
	allowedCacheSize   = 1024
)

// Options tune a Guard.
type Options struct {
	// Audiences the token must be issued for (empty: the API server's
	// own). With an audience of its own, a token Prometheus sends here is
	// no use to whoever reads it at the API server.
	Audiences []string
	// MaxInFlight bounds the requests under review at once (0:
	// DefaultMaxInFlight).
	MaxInFlight int
}

// Guard checks each request's identity and permission before its handler.
type Guard struct {
	authn  authenticator.Request
	authz  authorizer.Authorizer
	logger klog.Logger
	slots  chan struct{}

	mu sync.Mutex
	// allowed remembers, by hash of token and path, the requests allowed
	// recently, so that a scraper is served without waiting for a slot.
	allowed map[[sha256.Size]byte]time.Time
	clock   func() time.Time
}

// New returns a Guard asking client's API server. The controller's
// ServiceAccount needs "create" on tokenreviews and subjectaccessreviews.
// Give it a client of its own (its own rate limiter), so that reviews
// never delay the controller's other API calls.
func New(client kubernetes.Interface, logger klog.Logger, opts Options) (*Guard, error) {
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	// The API server's own retry policy for its authentication webhooks.
	backoff := &wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Steps: 5}
	authn, _, err := authenticatorfactory.DelegatingAuthenticatorConfig{
		TokenAccessReviewClient:  client.AuthenticationV1(),
		TokenAccessReviewTimeout: 10 * time.Second,
		APIAudiences:             authenticator.Audiences(opts.Audiences),
		WebhookRetryBackoff:      backoff,
		CacheTTL:                 TokenTTL,
	}.New()
	if err != nil {
		return nil, fmt.Errorf("metrics authentication: %w", err)
	}
	authz, err := authorizerfactory.DelegatingAuthorizerConfig{
		SubjectAccessReviewClient: client.AuthorizationV1(),
		AllowCacheTTL:             AllowTTL,
		DenyCacheTTL:              DenyTTL,
		WebhookRetryBackoff:       backoff,
	}.New()
	if err != nil {
		return nil, fmt.Errorf("metrics authorization: %w", err)
	}
	return &Guard{authn: authn, authz: authz, logger: logger, slots: make(chan struct{}, opts.MaxInFlight),
		allowed: map[[sha256.Size]byte]time.Time{}, clock: time.Now}, nil
}

// allowedTTL is how long an allowed request is remembered: no longer than
// either review's cache would.
const allowedTTL = min(TokenTTL, AllowTTL)

func allowKey(token, path string) [sha256.Size]byte {
	return sha256.Sum256([]byte(token + "\x00" + path))
}

func (g *Guard) recentlyAllowed(k [sha256.Size]byte) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	at, ok := g.allowed[k]
	return ok && g.clock().Sub(at) < allowedTTL
}

func (g *Guard) remember(k [sha256.Size]byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.allowed) >= allowedCacheSize {
		clear(g.allowed)
	}
	g.allowed[k] = g.clock()
}

// bearer returns the request's bearer token ("" if none).
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// Wrap returns next behind the guard: 405 for a method other than GET and
// HEAD, 401 without a token the API server accepts (or one longer than
// MaxTokenBytes), 403 for a user not allowed to get the path, 429 when
// MaxInFlight requests are already under review, 503 when the API server
// cannot say. Only the first three cost no review.
func (g *Guard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "only GET and HEAD", http.StatusMethodNotAllowed)
			return
		}
		token := bearer(r)
		if token == "" || len(token) > MaxTokenBytes {
			w.Header().Set("WWW-Authenticate", `Bearer realm="reactive-autoscaler"`)
			http.Error(w, fmt.Sprintf("a bearer token (at most %d bytes) the Kubernetes API server accepts is required", MaxTokenBytes), http.StatusUnauthorized)
			return
		}
		k := allowKey(token, r.URL.Path)
		if g.recentlyAllowed(k) {
			next.ServeHTTP(w, r)
			return
		}
		select {
		case g.slots <- struct{}{}:
			defer func() { <-g.slots }()
		default:
			w.Header().Set("Retry-After", "1")
			http.Error(w, "too many requests under review; try again", http.StatusTooManyRequests)
			return
		}
		res, ok, err := g.authn.AuthenticateRequest(r)
		if err != nil || !ok {
			if err != nil {
				g.logger.V(2).Info("Metrics request not authenticated", "err", err)
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="reactive-autoscaler"`)
			http.Error(w, "a bearer token the Kubernetes API server accepts is required", http.StatusUnauthorized)
			return
		}
		verb := "get" // HEAD reads what GET does
		decision, reason, err := g.authz.Authorize(r.Context(), authorizer.AttributesRecord{
			User: res.User, Verb: verb, Path: r.URL.Path, ResourceRequest: false,
		})
		switch {
		case err != nil:
			g.logger.Error(err, "Authorizing a metrics request", "user", res.User.GetName())
			http.Error(w, "authorization failed; try again", http.StatusServiceUnavailable)
		case decision != authorizer.DecisionAllow:
			g.logger.V(2).Info("Metrics request forbidden", "user", res.User.GetName(), "reason", reason)
			http.Error(w, fmt.Sprintf("user %q may not %s %s", res.User.GetName(), verb, r.URL.Path), http.StatusForbidden)
		default:
			g.remember(k)
			next.ServeHTTP(w, r)
		}
	})
}
