package localenv

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestAPortIsScrapedUnderItsNewestLabelsOnly: a second target at an address
// replaces the first (a stopped process's port handed to a new one would
// otherwise be scraped twice, doubling every sum over it), other targets
// stay, and a removed target leaves the file.
func TestAPortIsScrapedUnderItsNewestLabelsOnly(t *testing.T) {
	e := &Env{Dir: t.TempDir()}
	if err := os.MkdirAll(filepath.Join(e.Dir, "prometheus"), 0o755); err != nil {
		t.Fatal(err)
	}
	read := func() []targetGroup {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(e.Dir, "prometheus", "targets.json"))
		if err != nil {
			t.Fatal(err)
		}
		var g []targetGroup
		if err := json.Unmarshal(b, &g); err != nil {
			t.Fatalf("targets.json %q: %v", b, err)
		}
		return g
	}
	for _, add := range [][]string{
		{"fixture-0", "127.0.0.1:4000", "namespace", "old"},
		{"demo", "127.0.0.1:5000", "namespace", "other"},
		{"demo", "127.0.0.1:4000", "namespace", "new"},
	} {
		if err := e.AddScrapeTarget(add[0], add[1], add[2:]...); err != nil {
			t.Fatal(err)
		}
	}
	want := []targetGroup{
		{Targets: []string{"127.0.0.1:5000"}, Labels: map[string]string{"job": "demo", "namespace": "other"}},
		{Targets: []string{"127.0.0.1:4000"}, Labels: map[string]string{"job": "demo", "namespace": "new"}},
	}
	if diff := cmp.Diff(want, read()); diff != "" {
		t.Errorf("targets after a port was reused (-want +got):\n%s", diff)
	}
	if err := e.RemoveScrapeTarget("127.0.0.1:4000"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want[:1], read()); diff != "" {
		t.Errorf("targets after a removal (-want +got):\n%s", diff)
	}
	if err := e.RemoveScrapeTarget("127.0.0.1:5000"); err != nil {
		t.Fatal(err)
	}
	if got := read(); got == nil || len(got) != 0 {
		t.Errorf("no targets left: %#v, want an empty list", got)
	}
}
