// Package predict holds the two predictors of docs/REFERENCE.md section 4: Client, the
// HTTP client of an external model, and Forecaster, the built-in one.
package predict

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

// MaxResponseBytes bounds an external predictor's answer.
const MaxResponseBytes = 64 << 10

// MaxReplicas bounds a predicted replica count that is still believed (and
// then bounded by the target's max-replicas); anything larger is garbage.
const MaxReplicas = 100000

// noRedirects is the default HTTP client: a redirect is answered as it
// is (a non-200, refused), never followed, so that a target's history is
// never re-posted to wherever a predictor points.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// Client asks an external model: POST {URL}/predict (docs/REFERENCE.md section 4).
type Client struct {
	URL     string // base URL; /predict is appended
	Timeout time.Duration
	HTTP    *http.Client // optional
}

// answer is the wire format of a reply. Numbers are kept as json.Number so
// that 3.5 or 1e400 replicas are refused rather than rounded.
type answer struct {
	Replicas   *json.Number `json:"replicas"`
	RPS        *json.Number `json:"rps"`
	Confidence *json.Number `json:"confidence"`
}

// Predict implements scaler.Predictor.
func (c *Client) Predict(ctx context.Context, req scaler.PredictRequest) (scaler.Prediction, error) {
	if c.URL == "" {
		return scaler.Prediction{}, fmt.Errorf("predictor external (no --predictor-url) is %w", scaler.ErrPredictorNotConfigured)
	}
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	body, err := json.Marshal(req)
	if err != nil {
		return scaler.Prediction{}, perr(ReasonInvalidAnswer, fmt.Errorf("encoding the request: %w", err))
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.URL, "/")+"/predict", bytes.NewReader(body))
	if err != nil {
		return scaler.Prediction{}, perr(ReasonUnreachable, err)
	}
	r.Header.Set("Content-Type", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = noRedirects
	}
	resp, err := hc.Do(r)
	if err != nil {
		if ctx.Err() != nil {
			return scaler.Prediction{}, perr(ReasonTimeout, fmt.Errorf("no answer within %v", c.Timeout))
		}
		return scaler.Prediction{}, perr(ReasonUnreachable, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	switch {
	case err != nil && ctx.Err() != nil:
		return scaler.Prediction{}, perr(ReasonTimeout, fmt.Errorf("answer not complete within %v", c.Timeout))
	case err != nil:
		return scaler.Prediction{}, perr(ReasonUnreachable, fmt.Errorf("reading the answer: %w", err))
	case len(data) > MaxResponseBytes:
		return scaler.Prediction{}, perr(ReasonTooLarge, fmt.Errorf("answer larger than %d bytes", MaxResponseBytes))
	case resp.StatusCode != http.StatusOK:
		return scaler.Prediction{}, perr(ReasonHTTPStatus, fmt.Errorf("answered %s", resp.Status))
	}
	p, err := Decode(data)
	if err != nil {
		return scaler.Prediction{}, perr(ReasonInvalidAnswer, err)
	}
	p.Source = "external"
	return p, nil
}

// Decode parses and checks an answer: replicas must be an integer from 0 to
// MaxReplicas (counts outside the target's bounds are kept and bounded by
// the decision, which names them); rps, when given, a finite number >= 0.
func Decode(data []byte) (scaler.Prediction, error) {
	var a answer
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&a); err != nil {
		return scaler.Prediction{}, fmt.Errorf("answer is not the JSON object {\"replicas\": <int>}: %w", err)
	}
	if dec.More() {
		return scaler.Prediction{}, errors.New("answer has data after its JSON object")
	}
	if a.Replicas == nil {
		return scaler.Prediction{}, errors.New(`answer has no "replicas"`)
	}
	var p scaler.Prediction
	n, err := a.Replicas.Int64()
	if err != nil || n < 0 || n > MaxReplicas {
		return scaler.Prediction{}, fmt.Errorf(`"replicas" must be an integer from 0 to %d, got %s`, MaxReplicas, a.Replicas.String())
	}
	p.Replicas, p.HasReplicas = int32(n), true
	if a.RPS != nil {
		v, err := a.RPS.Float64()
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return scaler.Prediction{}, fmt.Errorf(`"rps" must be a finite number >= 0, got %s`, a.RPS.String())
		}
		p.RPS, p.HasRPS = v, true
	}
	if a.Confidence != nil {
		if v, err := a.Confidence.Float64(); err != nil || math.IsNaN(v) || v < 0 || v > 1 {
			return scaler.Prediction{}, fmt.Errorf(`"confidence" must be a number from 0 to 1, got %s`, a.Confidence.String())
		}
	}
	return p, nil
}
