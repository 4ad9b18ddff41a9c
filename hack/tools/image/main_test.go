package main

import (
	"archive/tar"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestImage builds the real binary, writes the image, opens the tarball as
// an importer would, checks its config and runs the binary taken out of it.
func TestImage(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the image holds a linux binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "reactive-autoscaler")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=v9.9.9-test", "-o", bin, "./cmd/reactive-autoscaler")
	build.Dir = "../../.."
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the binary: %v\n%s", err, out)
	}
	out := filepath.Join(dir, "image.tar")
	if err := Build(Options{Binary: bin, CABundle: "/etc/ssl/certs/ca-certificates.crt", Tag: "reactive-autoscaler:v9.9.9-test",
		Arch: runtime.GOARCH, Version: "v9.9.9-test", Revision: "abc1234", Out: out}); err != nil {
		t.Fatal(err)
	}

	tag, _ := name.NewTag("reactive-autoscaler:v9.9.9-test")
	img, err := tarball.ImageFromPath(out, &tag)
	if err != nil {
		t.Fatalf("opening the tarball as reactive-autoscaler:v9.9.9-test: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "65532:65532" || !slices.Equal(cf.Config.Entrypoint, []string{"/reactive-autoscaler"}) ||
		cf.Architecture != runtime.GOARCH || cf.OS != "linux" || cf.Config.Labels["org.opencontainers.image.version"] != "v9.9.9-test" {
		t.Errorf("config: user %q, entrypoint %v, %s/%s, labels %v", cf.Config.User, cf.Config.Entrypoint, cf.OS, cf.Architecture, cf.Config.Labels)
	}

	// The files of the image, as a runtime would lay them out.
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var names []string
	extracted := filepath.Join(dir, "from-image")
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Name == "reactive-autoscaler" {
			if h.Mode != 0o755 || h.Uid != 0 {
				t.Errorf("binary mode %o uid %d, want 755 owned by root (not writable by 65532)", h.Mode, h.Uid)
			}
			f, err := os.OpenFile(extracted, os.O_CREATE|os.O_WRONLY, 0o755)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
	}
	if !slices.Contains(names, "etc/ssl/certs/ca-certificates.crt") || !slices.Contains(names, "reactive-autoscaler") {
		t.Errorf("image files %v", names)
	}
	v, err := exec.Command(extracted, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(v), "v9.9.9-test") {
		t.Errorf("the image's binary, version: %v %q", err, v)
	}
}
