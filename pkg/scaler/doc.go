// Package scaler is the scaling policy of reactive-autoscaler, with no
// cluster, network or clock: it parses and validates a target's settings
// (Spec, Table), smooths the request rate (EMA), applies the hysteresis
// table, the bounds and the per-direction cooldowns, combines the reactive
// answer with a predictive one, and returns a Decision with its reason.
//
// Time is always an argument. The package imports the standard library only,
// so the whole policy can be tested and replayed (simulate) without a cluster.
package scaler
