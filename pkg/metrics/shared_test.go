package metrics

import (
	"testing"
	"time"
)

// TestALargeAnswerIsDroppedAfterItsTime: an answer kept with a ttl serves
// every caller of its key until then, and is gone after (the next caller
// runs the query again), so a week of history for every target does not
// stay in memory once the targets have read it.
func TestALargeAnswerIsDroppedAfterItsTime(t *testing.T) {
	var s shared[int]
	runs := 0
	run := func() (int, error) { runs++; return runs, nil }
	if v, _ := s.getFor("k", 50*time.Millisecond, run); v != 1 {
		t.Fatalf("first answer %d", v)
	}
	if v, _ := s.getFor("k", 50*time.Millisecond, run); v != 1 || runs != 1 {
		t.Fatalf("within its time: answer %d after %d runs, want the kept 1", v, runs)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		gone := s.key == ""
		s.mu.Unlock()
		if gone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the answer was still kept 5 s after its 50 ms")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if v, _ := s.getFor("k", 50*time.Millisecond, run); v != 2 {
		t.Errorf("after its time: answer %d, want a second run", v)
	}
	// Without a ttl it is kept until the key changes.
	var kept shared[int]
	kept.get("k", run)
	if v, _ := kept.get("k", run); v != 3 {
		t.Errorf("kept answer %d, want 3", v)
	}
}
