package simulate

import (
	"bytes"
	"encoding/xml"
	"math"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

// TestSeedWalkthroughThroughSimulate: the seed's walkthrough replayed by
// the simulator (an ideal world: the decision sees each 30 s row as it is,
// replicas are ready at once) gives exactly the replica sequence that
// pkg/scaler's TestSeedWalkthrough derives by hand: the same code decides.
func TestSeedWalkthroughThroughSimulate(t *testing.T) {
	var load []float64
	for r := 0.0; r <= 120; r += 10 {
		load = append(load, r)
	}
	for range 6 {
		load = append(load, 120)
	}
	for range 12 {
		load = append(load, 0)
	}
	spec, err := scaler.Parse("seed", map[string]string{"autoscale.io/reactive": "true"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &Ours{Label: "seed", Spec: spec, RateWindow: 0}
	ideal := World{Capacity: 25, Startup: 0, Scrape: time.Second, Tick: time.Second, Initial: 1}
	Run(ideal, &Trace{Name: "walkthrough", Step: 30 * time.Second, RPS: load}, p)
	var got []int32
	for _, d := range p.Decisions {
		got = append(got, d.Replicas)
	}
	want := []int32{
		1, 1, 2, 2, 3, 3, 3, 4, 4, 4, 4, 5, 5, // ramp 0..120
		5, 5, 5, 5, 5, 5, // peak
		3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, // load stops
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("replicas (-want +got):\n%s", diff)
	}
}

func TestHPAFollowsItsDocumentedAlgorithm(t *testing.T) {
	const target = 10.0
	t.Run("4 pods at 200% of target -> 8", func(t *testing.T) {
		h := NewHPA("hpa", target, time.Minute, 0, 1, 100)
		if got := h.Recommend(0, 4, 4*2*target); got != 8 {
			t.Errorf("got %d, want 8", got)
		}
	})
	t.Run("within the 10% tolerance nothing changes", func(t *testing.T) {
		h := NewHPA("hpa", target, time.Minute, 0, 1, 100)
		if got := h.Recommend(0, 10, 10*1.08*target); got != 10 {
			t.Errorf("ratio 1.08: got %d, want 10", got)
		}
		if got := h.Recommend(15*time.Second, 10, 10*1.12*target); got != 12 {
			t.Errorf("ratio 1.12: got %d, want ceil(11.2) = 12", got)
		}
	})
	t.Run("without behavior a scale-up goes to at most max(2 x current, 4)", func(t *testing.T) {
		for _, c := range []struct {
			current int32
			load    float64 // in targets
			want    int32
		}{
			{1, 2, 2},    // 1 pod at 200 %: wants 2, limit 4
			{2, 6, 4},    // 2 pods at 300 %: wants 6, limit max(4, 4)
			{1, 10, 4},   // 1 pod at 1000 %: limit 4, not 1+4
			{10, 50, 20}, // 10 pods at 500 %: limit 2 x 10
		} {
			h := NewHPA("hpa", target, time.Minute, 0, 1, 100)
			if got := h.Recommend(0, c.current, c.load*target); got != c.want {
				t.Errorf("%d pods at %.0f%%: got %d, want %d", c.current, 100*c.load/float64(c.current), got, c.want)
			}
		}
	})
	t.Run("scale-down waits for the 300 s stabilization window", func(t *testing.T) {
		h := NewHPA("hpa", target, time.Minute, 0, 1, 100)
		h.Recommend(0, 8, 8*target) // 8 recommended at t=0
		for at := 15 * time.Second; at < 300*time.Second; at += 15 * time.Second {
			if got := h.Recommend(at, 8, 2*target); got != 8 {
				t.Fatalf("at %v (inside the window after a recommendation of 8): got %d", at, got)
			}
		}
		if got := h.Recommend(300*time.Second, 8, 2*target); got != 2 {
			t.Errorf("at 300s the 8 left the window: got %d, want 2", got)
		}
	})
}

func TestHPABehaviorFollowsHorizontalGo(t *testing.T) {
	const target = 10.0
	withBehavior := func(b Behavior, tol float64) *HPA {
		return NewHPAWith("hpa", target, HPAConfig{Window: time.Minute, Tolerance: tol, Behavior: b}, 0, 1, 100)
	}
	t.Run("a new HPA's down window starts at the current count", func(t *testing.T) {
		h := NewHPA("hpa", target, time.Minute, 0, 1, 100)
		if got := h.Recommend(0, 8, 2*target); got != 8 {
			t.Errorf("first sync at 8 replicas with load for 2: got %d, want 8 (maybeInitScaleDownStabilizationWindow)", got)
		}
		if got := h.Recommend(300*time.Second, 8, 2*target); got != 2 {
			t.Errorf("after the 300 s window: got %d, want 2", got)
		}
	})
	t.Run("scale-up policies: the larger of percent and pods per sync", func(t *testing.T) {
		b := Behavior{UpPercent: 100, UpPods: 4, DownPercent: 100}
		for _, c := range []struct {
			current int32
			load    float64
			want    int32
		}{
			{1, 50, 5},    // +4 pods beats +100 %
			{10, 50, 20},  // +100 % beats +4 pods
			{10, 14, 14},  // within both limits
			{30, 100, 60}, // doubling caps it
		} {
			h := withBehavior(b, 0.1)
			h.recs = []rec{{-time.Hour, c.current}} // an HPA that has run before
			if got := h.Recommend(0, c.current, c.load*target); got != c.want {
				t.Errorf("%d replicas, load for %.0f: got %d, want %d", c.current, c.load, got, c.want)
			}
		}
	})
	t.Run("scale-down policy and windows", func(t *testing.T) {
		h := withBehavior(Behavior{UpPercent: 100, UpPods: 4, DownStabilization: time.Minute, DownPercent: 50}, 0.1)
		h.Recommend(0, 10, 10*target)
		if got := h.Recommend(15*time.Second, 10, 1*target); got != 10 {
			t.Errorf("inside the 60 s down window: got %d, want 10", got)
		}
		if got := h.Recommend(60*time.Second, 10, 1*target); got != 5 {
			t.Errorf("after the window, at most 50 %% down: got %d, want 5", got)
		}
		up := withBehavior(Behavior{UpStabilization: 30 * time.Second, UpPercent: 1000, UpPods: 4, DownPercent: 100}, 0.1)
		up.Recommend(0, 2, 2*target)
		if got := up.Recommend(15*time.Second, 2, 8*target); got != 2 {
			t.Errorf("a scale-up window holds at the lowest recommendation of the last 30 s: got %d, want 2", got)
		}
		if got := up.Recommend(30*time.Second, 2, 8*target); got != 8 {
			t.Errorf("once every recommendation of the window wants 8: got %d, want 8", got)
		}
	})
	t.Run("a tolerance of 0 follows every change", func(t *testing.T) {
		h := withBehavior(Behavior{UpPercent: 100, UpPods: 4, DownPercent: 100}, 0)
		if got := h.Recommend(0, 10, 10.5*target); got != 11 {
			t.Errorf("ratio 1.05 at tolerance 0: got %d, want 11", got)
		}
	})
}

func TestKPAPanicsAndCalmsDownAsDocumented(t *testing.T) {
	const target = 10.0
	k := NewKPA("kpa", target, 1, 100)
	// Steady: 2 pods for 20 RPS; no panic.
	if got := k.Recommend(0, 2, 2, 20, 20); got != 2 || len(k.Panicked) != 0 {
		t.Fatalf("steady: %d, panic changes %v", got, k.Panicked)
	}
	// The 6 s window wants 4 pods = 200% of the 2 ready: panic, and the
	// panic window decides though the stable one lags.
	if got := k.Recommend(2*time.Second, 2, 2, 22, 40); got != 4 || len(k.Panicked) != 1 || !k.Panicked[0].Enter {
		t.Fatalf("at 200%%: %d, panic changes %v; want 4 in panic", got, k.Panicked)
	}
	// In panic it never scales down, even when the load falls away.
	if got := k.Recommend(4*time.Second, 4, 4, 15, 5); got != 4 {
		t.Errorf("in panic with a falling load: %d, want 4 (no scale-down)", got)
	}
	// Panic ends once more than 60 s have passed since the condition last
	// held (t=2 s): still at 62 s, over at 64 s, and the stable window
	// decides, halving at most per tick.
	if got := k.Recommend(62*time.Second, 4, 4, 15, 5); got != 4 || len(k.Panicked) != 1 {
		t.Errorf("at 62 s: %d, %v; still panicking (60 s since the condition)", got, k.Panicked)
	}
	if got := k.Recommend(64*time.Second, 4, 4, 15, 5); got != 2 || len(k.Panicked) != 2 || k.Panicked[1].Enter {
		t.Errorf("at 64 s: %d, %v; want panic over and ceil(15/10) = 2", got, k.Panicked)
	}
	if got := k.Recommend(66*time.Second, 8, 8, 1, 1); got != 4 {
		t.Errorf("8 ready, load 1: %d, want 4 (at most halved per tick)", got)
	}
	// In panic the stable count counts too, when it is the higher.
	k = NewKPA("kpa", target, 1, 100)
	if got := k.Recommend(0, 2, 2, 90, 40); got != 9 {
		t.Errorf("panicking with the stable window above the panic one: %d, want ceil(90/10) = 9", got)
	}
	// A new KPA above one pod starts in panic at its count: it keeps the
	// scale until it has data.
	k = NewKPA("kpa", target, 1, 100)
	tr := &Trace{Name: "idle", Step: 10 * time.Second, RPS: []float64{1, 1, 1}}
	if got := k.Step(0, &View{trace: tr, world: DefaultWorld, current: 6, ready: 6}); got != 6 || !k.panicking {
		t.Errorf("a new KPA at 6 pods and an idle load: %d (panicking %v), want 6 in panic", got, k.panicking)
	}
}

// TestKPAScaleDownDelayHoldsTheHighestCount: with a scale-down delay the
// KPA goes no lower than the highest count it decided over the delay, as
// the autoscaler's delay window; the panic window is the configured share
// of the stable one, and at least a bucket.
func TestKPAScaleDownDelayHoldsTheHighestCount(t *testing.T) {
	const target = 10.0
	k := NewKPAWith("kpa", target, KPAConfig{Stable: 2 * time.Minute, PanicPercent: 5, PanicThreshold: 4, MaxScaleDown: 2,
		ScaleDownDelay: 30 * time.Second}, 1, 100)
	if k.Panic != 6*time.Second {
		t.Errorf("panic window %v, want 5 %% of 2m = 6s", k.Panic)
	}
	if short := NewKPAWith("kpa", target, KPAConfig{Stable: 10 * time.Second, PanicPercent: 5, PanicThreshold: 2, MaxScaleDown: 2}, 1, 100); short.Panic != time.Second {
		t.Errorf("panic window %v for 5 %% of 10s, want one 1 s bucket", short.Panic)
	}
	if got := k.Recommend(0, 2, 2, 50, 50); got != 5 {
		t.Fatalf("50 RPS: %d, want 5", got)
	}
	if got := k.Recommend(10*time.Second, 5, 5, 20, 20); got != 5 {
		t.Errorf("10 s later at 20 RPS: %d, want 5 (held by the 30 s delay)", got)
	}
	if got := k.Recommend(30*time.Second, 5, 5, 20, 20); got != 2 {
		t.Errorf("30 s after the high count: %d, want ceil(20/10) = 2", got)
	}
	k = NewKPAWith("kpa", target, KPAConfig{Stable: time.Minute, PanicPercent: 10, PanicThreshold: 4, MaxScaleDown: 2}, 1, 100)
	k.Recommend(0, 2, 2, 50, 50)
	if got := k.Recommend(2*time.Second, 5, 5, 20, 20); got != 2 {
		t.Errorf("without a delay: %d, want 2 at once", got)
	}
}

func TestOursNeverScalesDownInAnOutage(t *testing.T) {
	scores, err := Compare(Options{World: DefaultWorld, Utilization: 0.8, Alerting: DefaultAlerting,
		Only: []string{PolicyReactive, PolicyHPA, PolicyKPA}}, Shapes["outage-gap"]())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range scores {
		for _, p := range s.Series {
			if p.T >= 900*time.Second && p.T < 1200*time.Second && p.Replicas < 8 {
				t.Errorf("%s has %d replicas at %v, inside the metrics outage at 150 RPS (8 needed)", s.Policy, p.Replicas, p.T)
				break
			}
		}
	}
}

// TestSpikePathHelpsOnAFlashCrowd: at a 5 s scrape the repository's rule
// (a 10 s rate) has two samples and fires; the spike path then serves more
// of a flash crowd than the interval alone, and the oracle (the recommended
// profile told the peak ahead) more still.
func TestSpikePathHelpsOnAFlashCrowd(t *testing.T) {
	world := DefaultWorld.WithScrape(5 * time.Second)
	o := Options{World: world, Utilization: 0.8, Alerting: DefaultAlerting,
		Only: []string{PolicyReactive, PolicySpike, PolicyOracle}}
	policies, err := Policies(o)
	if err != nil {
		t.Fatal(err)
	}
	tr := Shapes["flash-crowd"]()
	var scores []Score
	for _, p := range policies {
		scores = append(scores, Run(world, tr, p))
	}
	reactive, spike, perfect := scores[0], scores[1], scores[2]
	if n := len(policies[1].(*Ours).Notified); n != 1 {
		t.Errorf("the rule notified %d times, want once for the one step", n)
	}
	if spike.UnservedRequests >= reactive.UnservedRequests {
		t.Errorf("the spike path left %v requests unserved, the interval alone %v", spike.UnservedRequests, reactive.UnservedRequests)
	}
	if perfect.UnservedRequests >= spike.UnservedRequests {
		t.Errorf("the oracle left %v unserved, more than the spike path's %v", perfect.UnservedRequests, spike.UnservedRequests)
	}
}

// TestRateNeedsTwoScrapes: rate(x[w]) is the counter's slope between the
// first and last scrape in (t-w, t]; fewer than two scrapes is no data. At
// a 15 s scrape a 10 s rate never has a value, so the repository's spike
// rule never fires there.
func TestRateNeedsTwoScrapes(t *testing.T) {
	tr := &Trace{Name: "step", Step: 10 * time.Second, RPS: []float64{10, 10, 10, 40, 40, 40, 40, 40, 40, 40, 40, 40}}
	for at := time.Duration(0); at < tr.Duration(); at += time.Second {
		if v := tr.rate(at, 10*time.Second, 15*time.Second); !math.IsNaN(v) {
			t.Fatalf("rate[10s] at %v with a 15 s scrape = %v, want no data", at, v)
		}
	}
	// At 37 s the 1m window holds the scrapes at 0, 15 and 30 s: the
	// counter went from 0 to 300 in those 30 s.
	if v := tr.rate(37*time.Second, time.Minute, 15*time.Second); v != 10 {
		t.Errorf("rate[1m] at 37 s = %v, want 10 (scrapes at 0 and 30 s; the step at 30 s is not seen yet)", v)
	}
	// At 52 s: scrapes at 0..45 s; the counter at 45 s is 300 + 40*15.
	if v, want := tr.rate(52*time.Second, time.Minute, 15*time.Second), (300+40*15)/45.0; v != want {
		t.Errorf("rate[1m] at 52 s = %v, want %v", v, want)
	}
	// A 5 s scrape gives a 10 s window two samples.
	if v := tr.rate(52*time.Second, 10*time.Second, 5*time.Second); v != 40 {
		t.Errorf("rate[10s] at 52 s with a 5 s scrape = %v, want 40", v)
	}
	// An outage: no scrape succeeds in the window.
	out := &Trace{Name: "gap", Step: 10 * time.Second, RPS: []float64{10, 10, nan, nan, nan, nan, nan, nan, nan, 10}}
	if v := out.rate(85*time.Second, time.Minute, 15*time.Second); !math.IsNaN(v) {
		t.Errorf("rate[1m] in an outage = %v, want no data", v)
	}
	world := DefaultWorld
	scores, err := Compare(Options{World: world, Utilization: 0.8, Alerting: DefaultAlerting, Only: []string{PolicySpike}}, Shapes["flash-crowd"]())
	if err != nil {
		t.Fatal(err)
	}
	if scores[0].ScaleActions == 0 {
		t.Fatal("no scale action on the flash crowd")
	}
	p, _ := Policies(Options{World: world, Utilization: 0.8, Alerting: DefaultAlerting, Only: []string{PolicySpike}})
	Run(world, Shapes["flash-crowd"](), p[0])
	if n := p[0].(*Ours).Notified; len(n) != 0 {
		t.Errorf("the 10 s rule notified at %v at a 15 s scrape", n)
	}
}

// TestTheChartsRuleFiresOneScrapeAfterAStep: the rule the chart renders
// for a scrape interval (ChartAlerting) notifies once on the flash crowd,
// no later than the second scrape after the step plus one rule evaluation
// and Alertmanager's group_wait, at 15 s and 30 s, where the 10 s rule
// above never fires.
func TestTheChartsRuleFiresOneScrapeAfterAStep(t *testing.T) {
	tr := Shapes["flash-crowd"]()
	step := time.Duration(-1)
	for i := 1; i < len(tr.RPS) && step < 0; i++ {
		if tr.RPS[i] > 2*tr.RPS[i-1] {
			step = time.Duration(i) * tr.Step
		}
	}
	for _, scrape := range []time.Duration{15 * time.Second, 30 * time.Second} {
		world := DefaultWorld.WithScrape(scrape)
		a := ChartAlerting(scrape)
		p, err := Policies(Options{World: world, Utilization: 0.8, Alerting: a, Only: []string{PolicySpike}})
		if err != nil {
			t.Fatal(err)
		}
		Run(world, tr, p[0])
		n := p[0].(*Ours).Notified
		latest := step.Truncate(scrape) + 2*scrape + a.EvalInterval + a.GroupWait
		if len(n) != 1 || n[0] < step || n[0] > latest {
			t.Errorf("at a %v scrape the chart's rule notified at %v, want once in [%v, %v]", scrape, n, step, latest)
		}
	}
}

var nan = math.NaN()

// TestLoopsRunAtTheirPhase: ours and the HPA read Prometheus at the world's
// phase after a scrape (7 s at 15 s), the KPA every 2 s from 0.
func TestLoopsRunAtTheirPhase(t *testing.T) {
	world := DefaultWorld
	policies, err := Policies(Options{World: world, Utilization: 0.8, Alerting: DefaultAlerting, Only: []string{PolicyReactive}})
	if err != nil {
		t.Fatal(err)
	}
	r := policies[0].(*Ours)
	Run(world, Shapes["ramp"](), r)
	for i, d := range r.Decisions[:5] {
		if want := world.Phase + time.Duration(i)*30*time.Second; d.At != want {
			t.Errorf("evaluation %d at %v, want %v (phase %v, interval 30 s)", i, d.At, want, world.Phase)
		}
	}
	h := NewHPA("hpa", 10, time.Minute, world.Phase, 1, 100)
	var syncs []time.Duration
	tr := Shapes["ramp"]()
	for now := time.Duration(0); now < time.Minute; now += time.Second {
		before := len(h.recs)
		h.Step(now, &View{trace: tr, world: world, now: now, current: 1, ready: 1})
		if len(h.recs) != before {
			syncs = append(syncs, now)
		}
	}
	// The service ran before the trace: the first sync at 7 s has data too.
	if diff := cmp.Diff([]time.Duration{7 * time.Second, 22 * time.Second, 37 * time.Second, 52 * time.Second}, syncs); diff != "" {
		t.Errorf("HPA syncs with data (-want +got):\n%s", diff)
	}
	if world.Phase != 7*time.Second || DefaultWorld.WithScrape(5*time.Second).Phase != 2*time.Second {
		t.Errorf("phases %v and %v, want 7 s and 2 s (half the scrape, rounded down)", world.Phase, DefaultWorld.WithScrape(5*time.Second).Phase)
	}
}

// TestRateExtrapolatesAsPrometheus: with evenly spaced scrapes the
// extrapolated rate is the slope; beside a gap in the scrapes Prometheus
// extrapolates by half an interval, not to the window's edge; before t=0
// the service ran at its first rate, so a window there has data.
func TestRateExtrapolatesAsPrometheus(t *testing.T) {
	tr := &Trace{Name: "flat", Step: 10 * time.Second, RPS: []float64{30, 30, 30, 30, nan, nan, nan, 30, 30, 30, 30, 30}}
	if v := tr.rate(39*time.Second+500*time.Millisecond, time.Minute, 15*time.Second); math.Abs(v-30) > 1e-9 {
		t.Errorf("even scrapes: %v, want 30", v)
	}
	if v := tr.rate(0, time.Minute, 15*time.Second); math.Abs(v-30) > 1e-9 {
		t.Errorf("at t=0 (scrapes before the trace): %v, want 30", v)
	}
	// At 105 s the window (45 s, 105 s] holds the scrapes at 75, 90 and
	// 105 s (45 and 60 s fell in the outage): 30 s sampled, 30 s to the
	// window's start, 2.0x the average interval: extrapolated by 7.5 s
	// only, so rate = 30 x (30+7.5)/60.
	if v, want := tr.rate(105*time.Second, time.Minute, 15*time.Second), 30*37.5/60; math.Abs(v-want) > 1e-9 {
		t.Errorf("beside an outage: %v, want %v (Prometheus extrapolates by half an interval)", v, want)
	}
	if v := tr.mean(40*time.Second, 70*time.Second); v != 30 {
		t.Errorf("the KPA reads its pods through a Prometheus outage: %v, want 30", v)
	}
	if v := tr.mean(-30*time.Second, 10*time.Second); v != 30 {
		t.Errorf("the KPA's window before t=0: %v, want 30", v)
	}
}

// TestHalvesReplayEachHalfFromTheStart: the two halves hold every row once,
// in order, the first taking the odd one; the second is a trace of its own
// from t=0 (an outage at its start is filled from its own first rate, not
// from the first half's last), and neither shares the original's rows.
func TestHalvesReplayEachHalfFromTheStart(t *testing.T) {
	tr := &Trace{Name: "week.csv", Step: 10 * time.Second, RPS: []float64{1, 2, 3, nan, 5}}
	a, b := tr.Halves()
	if a.Name != "week-a.csv" || b.Name != "week-b.csv" || a.Step != tr.Step || b.Step != tr.Step {
		t.Fatalf("halves %q %v and %q %v, want week-a.csv and week-b.csv at 10 s", a.Name, a.Step, b.Name, b.Step)
	}
	if diff := cmp.Diff([]float64{1, 2, 3}, a.RPS); diff != "" {
		t.Errorf("first half (-want +got):\n%s", diff)
	}
	if len(b.RPS) != 2 || !math.IsNaN(b.RPS[0]) || b.RPS[1] != 5 {
		t.Errorf("second half %v, want [NaN 5]", b.RPS)
	}
	if got := b.demand(0); got != 5 {
		t.Errorf("second half's demand at 0 = %v, want 5 (its own first rate, no memory of the first half)", got)
	}
	a.RPS[0] = 100
	if tr.RPS[0] != 1 {
		t.Errorf("a half shares the original's rows")
	}
	if a, b := (&Trace{Name: "noext", Step: time.Second, RPS: []float64{1, 2}}).Halves(); a.Name != "noext-a" || b.Name != "noext-b" {
		t.Errorf("halves of a name without an extension: %q, %q", a.Name, b.Name)
	}
}

func TestReadCSV(t *testing.T) {
	tr, err := ReadCSV("t", strings.NewReader("seconds,rps\n0,1.5\n10,\n20,NaN\n30,4\n"))
	if err != nil || tr.Step != 10*time.Second || len(tr.RPS) != 4 || tr.RPS[0] != 1.5 || !math.IsNaN(tr.RPS[1]) || !math.IsNaN(tr.RPS[2]) {
		t.Fatalf("ReadCSV = %+v, %v", tr, err)
	}
	if tr.demand(15*time.Second) != 1.5 {
		t.Errorf("demand in an outage = %v, want the last value 1.5", tr.demand(15*time.Second))
	}
	tr, err = ReadCSV("t", strings.NewReader("2026-11-26T10:00:00Z,5\n2026-11-26T10:00:30Z,6\n2026-11-26T10:01:00Z,7\n"))
	if err != nil || tr.Step != 30*time.Second || tr.RPS[2] != 7 {
		t.Fatalf("RFC 3339 rows: %+v, %v", tr, err)
	}
	for in, want := range map[string]string{
		"0,1\n10,2\n25,3\n":  "evenly spaced",
		"0,1\n10,-2\n":       "must be a number >= 0",
		"0,1,2\n":            "want 2 columns",
		"0,1\n":              "at least two rows",
		"0,1\nyesterday,2\n": "seconds or RFC 3339",
		"10,1\n0,2\n":        "times must increase",
	} {
		if _, err := ReadCSV("t", strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ReadCSV(%q) = %v, want an error containing %q", in, err, want)
		}
	}
}

func FuzzReadCSV(f *testing.F) {
	f.Add("seconds,rps\n0,1\n10,2\n")
	f.Add("2026-11-26T10:00:00Z,5\n2026-11-26T10:00:30Z,\n")
	f.Fuzz(func(t *testing.T, in string) {
		tr, err := ReadCSV("fuzz", strings.NewReader(in))
		if err != nil {
			return
		}
		if tr.Step <= 0 || len(tr.RPS) < 2 {
			t.Fatalf("accepted %q as %+v", in, tr)
		}
		for _, v := range tr.RPS {
			if v < 0 || math.IsInf(v, 0) {
				t.Fatalf("accepted rate %v from %q", v, in)
			}
		}
	})
}

func TestSVGIsWellFormed(t *testing.T) {
	scores, err := Compare(Options{World: DefaultWorld, Utilization: 0.8, Alerting: DefaultAlerting}, Shapes["ramp"]())
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := SVG(&b, "ramp <test>", DefaultWorld, scores); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(&b)
	lines, texts := 0, 0
	for {
		tok, err := dec.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("not well-formed XML: %v", err)
			}
			break
		}
		if se, ok := tok.(xml.StartElement); ok {
			switch se.Name.Local {
			case "polyline":
				lines++
			case "text":
				texts++
			}
		}
	}
	if lines != 3*len(PolicyNames) {
		t.Errorf("%d polylines, want demand, capacity and replicas for each of %d policies", lines, len(PolicyNames))
	}
}

// TestIngestDelaysWhatReadsPrometheusNotTheKPA: with samples queryable 30 s
// after their scrape, the HPA (and with it KEDA, ours and the alert rule,
// which read the same Prometheus) first scales up for a step at least a
// scrape later than without; Knative's autoscaler, which reads its pods,
// decides exactly as before.
func TestIngestDelaysWhatReadsPrometheusNotTheKPA(t *testing.T) {
	rps := make([]float64, 120) // 20 min at 10 s
	for i := range rps {
		rps[i] = 10
		if i >= 30 {
			rps[i] = 100
		}
	}
	tr := &Trace{Name: "step", Step: 10 * time.Second, RPS: rps}
	firstUp := func(s Score) time.Duration {
		for _, p := range s.Series {
			if p.Replicas > s.Series[0].Replicas {
				return p.T
			}
		}
		t.Fatalf("%s never scaled up", s.Policy)
		return 0
	}
	world := DefaultWorld
	world.Initial = 1
	late := world
	late.Ingest = 30 * time.Second
	hpa, hpaLate := Run(world, tr, NewHPA("hpa", 20, time.Minute, world.Phase, 1, 50)), Run(late, tr, NewHPA("hpa", 20, time.Minute, late.Phase, 1, 50))
	if d := firstUp(hpaLate) - firstUp(hpa); d < world.Scrape {
		t.Errorf("the HPA scaled up %v later with a 30 s ingestion delay, want at least a scrape (%v) later", d, world.Scrape)
	}
	kpa, kpaLate := Run(world, tr, NewKPA("kpa", 20, 1, 50)), Run(late, tr, NewKPA("kpa", 20, 1, 50))
	if kpa.ReplicaSeconds != kpaLate.ReplicaSeconds || kpa.UnservedRequests != kpaLate.UnservedRequests || firstUp(kpa) != firstUp(kpaLate) {
		t.Errorf("the KPA changed with an ingestion delay: %+v -> %+v", kpa, kpaLate)
	}
	// What the delay hides: a rate over samples not yet ingested.
	if v, want := tr.irateSeen(330*time.Second, 30*time.Second, time.Minute, 15*time.Second), tr.irate(300*time.Second, 30*time.Second, 15*time.Second); v != want {
		t.Errorf("irate[1m] at 330 s with 30 s ingestion = %v, want the irate of the samples to 300 s, %v", v, want)
	}
}

// TestWeightedExponentialAverage is Knative's weightedExponential
// aggregation: weights m(1-m)^i newest first that sum to 0.9999 over the
// window's buckets, with m at least 0.2; so a 60 s window 5 s after a step
// from 10 to 100 reads 100(1-0.8^5) + 10(0.8^5-0.8^60), where the linear
// average reads 17.5.
func TestWeightedExponentialAverage(t *testing.T) {
	flat := &View{trace: &Trace{Name: "flat", Step: time.Second, RPS: []float64{50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50}}, now: 12 * time.Second}
	if v := flat.DirectWeighted(10*time.Second, 0); math.Abs(v-50*0.9999) > 1e-9 {
		t.Errorf("weighted average of a flat 50 over 10 buckets = %v, want %v", v, 50*0.9999)
	}
	rps := make([]float64, 120)
	for i := range rps {
		rps[i] = 10
		if i >= 100 {
			rps[i] = 100
		}
	}
	step := &View{trace: &Trace{Name: "step", Step: time.Second, RPS: rps}, now: 105 * time.Second}
	want := 100*(1-math.Pow(0.8, 5)) + 10*(math.Pow(0.8, 5)-math.Pow(0.8, 60))
	if v := step.DirectWeighted(time.Minute, 0); math.Abs(v-want) > 1e-9 {
		t.Errorf("weighted 60 s average 5 s after a step = %v, want %v", v, want)
	}
	if v := step.Direct(time.Minute, 0); math.Abs(v-17.5) > 1e-9 {
		t.Errorf("linear 60 s average 5 s after a step = %v, want 17.5", v)
	}
	// The KPA with it: a step's first scale-up no later than linear's.
	tr := &Trace{Name: "step", Step: time.Second, RPS: rps}
	world := DefaultWorld
	world.Initial = 1
	lin := Run(world, tr, NewKPAWith("kpa", 20, KPAConfig{Stable: time.Minute, PanicPercent: 10, PanicThreshold: 2, MaxScaleDown: 2}, 1, 50))
	wexp := Run(world, tr, NewKPAWith("kpa", 20, KPAConfig{Stable: time.Minute, PanicPercent: 10, PanicThreshold: 2, MaxScaleDown: 2, Weighted: true}, 1, 50))
	if wexp.UnservedRequests > lin.UnservedRequests {
		t.Errorf("weightedExponential left %v unserved after a step, linear %v: want no more", wexp.UnservedRequests, lin.UnservedRequests)
	}
}

// TestKEDAIsTheHPAOnOursQuery: the peers are reported both ways on the
// query. keda runs the HPA's algorithm on the recommended profile's own
// query (an irate over 1m); hpa on a prometheus-adapter rule's usual
// rate over 2m. So the HPA given ours' query is keda, decision for
// decision, and each peer's query choice is in the table.
func TestKEDAIsTheHPAOnOursQuery(t *testing.T) {
	o := Options{World: DefaultWorld, Utilization: 0.7}
	rec, err := o.Spec(map[string]string{"autoscale.io/profile": "recommended"})
	if err != nil {
		t.Fatal(err)
	}
	o.Only = []string{PolicyKEDA, PolicyHPA}
	ps, err := Policies(o)
	if err != nil {
		t.Fatal(err)
	}
	keda, hpa := ps[0].(*HPA), ps[1].(*HPA)
	if keda.Window != time.Minute || keda.Instant != rec.Instant || !rec.Instant {
		t.Errorf("keda reads window %v instant %v; the recommended profile an irate over 1m (instant %v)", keda.Window, keda.Instant, rec.Instant)
	}
	if hpa.Window != 2*time.Minute || hpa.Instant {
		t.Errorf("hpa reads window %v instant %v, want the adapter's usual rate[2m]", hpa.Window, hpa.Instant)
	}
	tr := Shapes["flash-crowd"]()
	world := o.initial(tr).World
	sameQuery := NewHPAWith(PolicyHPA, hpa.Target, HPAConfig{Window: time.Minute, Instant: true, Tolerance: hpa.Tolerance, Behavior: hpa.Behavior}, hpa.Phase, hpa.Min, hpa.Max)
	a, b := Run(world, tr, sameQuery), Run(world, tr, keda)
	if a.ReplicaSeconds != b.ReplicaSeconds || a.UnservedRequests != b.UnservedRequests {
		t.Errorf("the HPA on ours' query: %v replica-seconds, %v unserved; keda: %v, %v", a.ReplicaSeconds, a.UnservedRequests, b.ReplicaSeconds, b.UnservedRequests)
	}
}

// TestTheSpikePathIsTheShippedOne: the model's spike path waits what the
// shipped route makes Alertmanager wait (group_wait in the chart's NOTES
// and in deploy/alertmanager) and evaluates the rule at the chart's
// prometheusRule.interval.
func TestTheSpikePathIsTheShippedOne(t *testing.T) {
	a := ChartAlerting(15 * time.Second)
	waits := regexp.MustCompile(`group_wait: *(\S+)`)
	for _, f := range []string{"../../charts/reactive-autoscaler/templates/NOTES.txt", "../../deploy/alertmanager/alertmanager.yaml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m := waits.FindAllSubmatch(b, -1)
		if len(m) == 0 {
			t.Fatalf("%s sets no group_wait", f)
		}
		for _, w := range m {
			if d, err := time.ParseDuration(string(w[1])); err != nil || d != a.GroupWait {
				t.Errorf("%s: group_wait %s, the model waits %v", f, w[1], a.GroupWait)
			}
		}
	}
	b, err := os.ReadFile("../../charts/reactive-autoscaler/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^prometheusRule:(?:\n .*)*?\n  interval: *(\S+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("values.yaml: no prometheusRule.interval")
	}
	if d, err := time.ParseDuration(string(m[1])); err != nil || d != a.EvalInterval {
		t.Errorf("prometheusRule.interval %s, the model evaluates the rule every %v", m[1], a.EvalInterval)
	}
}
