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
	"fmt"
	"net/http"
	"strings"
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

// Guard checks each request's identity and permission before its handler.
type Guard struct {
	authn  authenticator.Request
	authz  authorizer.Authorizer
	logger klog.Logger
}

// New returns a Guard asking client's API server. The controller's
// ServiceAccount needs "create" on tokenreviews and subjectaccessreviews.
func New(client kubernetes.Interface, logger klog.Logger) (*Guard, error) {
	// The API server's own retry policy for its authentication webhooks.
	backoff := &wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Steps: 5}
	authn, _, err := authenticatorfactory.DelegatingAuthenticatorConfig{
		TokenAccessReviewClient:  client.AuthenticationV1(),
		TokenAccessReviewTimeout: 10 * time.Second,
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
	return &Guard{authn: authn, authz: authz, logger: logger}, nil
}

// Wrap returns next behind the guard: 401 without a token the API server
// accepts, 403 for a user not allowed to get the path, 503 when the API
// server cannot say.
func (g *Guard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, ok, err := g.authn.AuthenticateRequest(r)
		if err != nil || !ok {
			if err != nil {
				g.logger.V(2).Info("Metrics request not authenticated", "err", err)
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="reactive-autoscaler"`)
			http.Error(w, "a bearer token the Kubernetes API server accepts is required", http.StatusUnauthorized)
			return
		}
		verb := strings.ToLower(r.Method)
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
			next.ServeHTTP(w, r)
		}
	})
}
