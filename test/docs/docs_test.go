// Package docs checks the repository's documentation: every relative link
// and anchor resolves, the README stays a README, and git holds no binary.
package docs

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// root is the repository's top directory.
const root = "../.."

// markdownFiles are the tracked Markdown files (every *.md under root when
// git is not there).
func markdownFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, f := range trackedFiles(t) {
		if strings.HasSuffix(f, ".md") && !strings.HasPrefix(f, "testdata/") && !strings.Contains(f, "/testdata/") {
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		t.Fatal("no Markdown files found")
	}
	return files
}

func trackedFiles(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("git", "-C", root, "ls-files", "-z").Output()
	if err != nil {
		t.Skipf("git ls-files: %v (not a git checkout)", err)
	}
	var files []string
	for _, f := range bytes.Split(out, []byte{0}) {
		if len(f) > 0 {
			files = append(files, string(f))
		}
	}
	return files
}

var (
	// [text](target) outside code; images too.
	linkRE    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	headingRE = regexp.MustCompile("^#{1,6} +(.+?) *#*$")
	fenceRE   = regexp.MustCompile("^ *(```|~~~)")
)

// anchors returns the GitHub anchors of a Markdown file's headings.
func anchors(text string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	inFence := false
	for _, line := range strings.Split(text, "\n") {
		if fenceRE.MatchString(line) {
			inFence = !inFence
			continue
		}
		m := headingRE.FindStringSubmatch(line)
		if inFence || m == nil {
			continue
		}
		slug := slugify(m[1])
		if n := seen[slug]; n > 0 {
			out[fmt.Sprintf("%s-%d", slug, n)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	}
	return out
}

// slugify is GitHub's heading anchor: lower case, punctuation dropped,
// spaces to hyphens.
func slugify(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteRune('-')
		}
	}
	return b.String()
}

// links returns the link targets of a Markdown file, outside code blocks
// and inline code.
func links(text string) []string {
	var out []string
	inFence := false
	for _, line := range strings.Split(text, "\n") {
		if fenceRE.MatchString(line) {
			inFence = !inFence
			continue
		}
		if inFence {
			continue
		}
		parts := strings.Split(line, "`")
		for i := 0; i < len(parts); i += 2 { // even parts are outside inline code
			for _, m := range linkRE.FindAllStringSubmatch(parts[i], -1) {
				out = append(out, m[1])
			}
		}
	}
	return out
}

func TestEveryRelativeLinkAndAnchorResolves(t *testing.T) {
	for _, file := range markdownFiles(t) {
		text, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		for _, target := range links(string(text)) {
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, anchor, _ := strings.Cut(target, "#")
			dest := file
			if path != "" {
				dest = filepath.Join(filepath.Dir(file), path)
				if _, err := os.Stat(filepath.Join(root, dest)); err != nil {
					t.Errorf("%s: link %q: %s does not exist", file, target, dest)
					continue
				}
			}
			if anchor == "" || !strings.HasSuffix(dest, ".md") {
				continue
			}
			destText, err := os.ReadFile(filepath.Join(root, dest))
			if err != nil {
				t.Errorf("%s: link %q: %v", file, target, err)
				continue
			}
			if !anchors(string(destText))[anchor] {
				t.Errorf("%s: link %q: no heading of %s has the anchor #%s", file, target, dest, anchor)
			}
		}
	}
}

func TestTheREADMEIsShort(t *testing.T) {
	text, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(text, []byte("\n")); n >= 200 {
		t.Errorf("README.md has %d lines; keep it under 200 (details belong in docs/)", n)
	}
}

// TestGitHoldsNoBinary: no compiled program or other binary file is
// committed (build output belongs in bin/, which is ignored). A file with
// a NUL byte in its first 8 KB is binary, as git itself decides.
func TestGitHoldsNoBinary(t *testing.T) {
	for _, f := range trackedFiles(t) {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			if os.IsNotExist(err) {
				continue // deleted in the work tree, not yet committed
			}
			t.Fatal(err)
		}
		if bytes.IndexByte(data[:min(len(data), 8000)], 0) >= 0 {
			t.Errorf("%s is binary", f)
		}
	}
}

func TestSlugsAreGitHubs(t *testing.T) {
	for heading, want := range map[string]string{
		"Unserved requests at equal cost (`make bench-quality`)": "unserved-requests-at-equal-cost-make-bench-quality",
		"4. The predictor":                            "4-the-predictor",
		"What would it have done? `simulate`":         "what-would-it-have-done-simulate",
		"Spikes in seconds: the Alertmanager webhook": "spikes-in-seconds-the-alertmanager-webhook",
	} {
		if got := slugify(heading); got != want {
			t.Errorf("slugify(%q) = %q, want %q", heading, got, want)
		}
	}
}

// TestTheArchitectureDrawsTheImportsAsTheyAre: the import list in
// docs/ARCHITECTURE.md names every package under pkg/, cmd/ and hack/ (but
// the separate modules) with exactly the packages of ours it imports.
func TestTheArchitectureDrawsTheImportsAsTheyAre(t *testing.T) {
	const module = "github.com/autoscale-io/reactive-autoscaler/"
	text, err := os.ReadFile(filepath.Join(root, "docs", "ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(text), "checks it against `go list`")
	if !ok {
		t.Fatal("docs/ARCHITECTURE.md has no import list")
	}
	_, block, _ := strings.Cut(after, "```\n")
	block, _, _ = strings.Cut(block, "```")
	drawn := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
		from, to, ok := strings.Cut(line, "──>")
		if !ok {
			t.Fatalf("import list line %q has no arrow", line)
		}
		var ours []string
		for _, f := range strings.Fields(to) {
			if strings.HasPrefix(f, "pkg/") || strings.HasPrefix(f, "cmd/") || strings.HasPrefix(f, "hack/") {
				ours = append(ours, f)
			}
		}
		slices.Sort(ours)
		drawn[strings.TrimSpace(from)] = strings.Join(ours, " ")
	}
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}}:{{join .Imports " "}}`, "./pkg/...", "./cmd/...", "./hack/...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	actual := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, ":")
		var ours []string
		for _, imp := range strings.Fields(imports) {
			if p, ok := strings.CutPrefix(imp, module); ok {
				ours = append(ours, p)
			}
		}
		slices.Sort(ours)
		actual[strings.TrimPrefix(pkg, module)] = strings.Join(ours, " ")
	}
	for pkg, imports := range actual {
		if d, ok := drawn[pkg]; !ok {
			t.Errorf("%s (imports %q) is not in docs/ARCHITECTURE.md's import list", pkg, imports)
		} else if d != imports {
			t.Errorf("docs/ARCHITECTURE.md draws %s importing %q; it imports %q", pkg, d, imports)
		}
	}
	for pkg := range drawn {
		if _, ok := actual[pkg]; !ok {
			t.Errorf("docs/ARCHITECTURE.md draws %s, which is not a package", pkg)
		}
	}
}
