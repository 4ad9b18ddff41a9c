// Package promql checks, with Prometheus' own PromQL parser, that no value a
// tenant controls can make the controller's queries read another namespace.
// It is a module of its own so that the product's go.mod does not carry
// Prometheus' server code (make test runs it).
package promql
