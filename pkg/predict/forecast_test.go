package predict

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

func TestForecastFollowsATrendAndNeverGoesNegative(t *testing.T) {
	var ramp, fall []scaler.Sample
	for i := 0; i < 20; i++ {
		ramp = append(ramp, scaler.Sample{T: float64(30 * i), RPS: float64(100 + 10*i)})
		fall = append(fall, scaler.Sample{T: float64(30 * i), RPS: math.Max(0, float64(100-20*i))})
	}
	up, err := DefaultForecaster().Forecast(ramp, 5*time.Minute)
	ema := ramp[0].RPS
	for _, s := range ramp[1:] {
		ema = DefaultForecaster().Alpha*s.RPS + (1-DefaultForecaster().Alpha)*ema
	}
	if err != nil || up <= ema+10 {
		t.Errorf("ramp ending at 290 RPS, +10 per step: forecast %v (%v), want the trend to lift it above the smoothed level %v", up, err, ema)
	}
	if down, _ := DefaultForecaster().Forecast(fall, 5*time.Minute); down < 0 {
		t.Errorf("forecast %v below zero", down)
	}
	if _, err := DefaultForecaster().Forecast(ramp[:2], time.Minute); err == nil {
		t.Error("two samples forecast without an error")
	}
	if _, err := DefaultForecaster().Predict(context.Background(), scaler.PredictRequest{HorizonSeconds: 300, History: []scaler.Sample{{T: 5, RPS: 1}, {T: 5, RPS: 2}, {T: 5, RPS: 3}}}); err == nil {
		t.Error("a history whose timestamps do not increase was accepted")
	}
}
