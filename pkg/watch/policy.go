package watch

import (
	"fmt"
	"slices"

	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

// QueryPolicy says whether a Deployment's autoscale.io/query is honoured.
type QueryPolicy string

// The query policies.
const (
	QueryAllowed   QueryPolicy = "allowed"   // any query
	QueryOff       QueryPolicy = "off"       // only the built-in queries
	QueryAllowList QueryPolicy = "allowlist" // only Config.AllowedQueries
)

// admit applies the controller's policy to a valid spec: who may edit a
// Deployment may choose its query (which runs with the controller's
// Prometheus access) only as far as the policy allows, and no interval
// below the controller's minimum.
func (c *Controller) admit(spec *scaler.Spec, ann map[string]string) error {
	if min := c.minimumInterval(); spec.Interval < min {
		return &scaler.FieldError{Key: scaler.KeyInterval, Value: spec.Interval.String(), Source: "annotation",
			Rule: fmt.Sprintf("must be at least this controller's minimum %v", min)}
	}
	q, ok := ann[scaler.AnnotationPrefix+scaler.KeyQuery]
	if !ok || q == scaler.DefaultQuery || q == scaler.FastQuery {
		return nil
	}
	switch c.queryPolicy {
	case QueryOff:
		return &scaler.FieldError{Key: scaler.KeyQuery, Value: q, Source: "annotation",
			Rule: "custom queries are off on this controller (--query-policy=off)"}
	case QueryAllowList:
		if !slices.Contains(c.allowedQueries, q) {
			return &scaler.FieldError{Key: scaler.KeyQuery, Value: q, Source: "annotation",
				Rule: "not one of this controller's --allowed-queries"}
		}
	}
	return nil
}
