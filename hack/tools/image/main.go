// Command image writes reactive-autoscaler's container image as a tarball
// (docker-archive, which `docker load`, `k3s ctr images import` and
// `ctr images import` accept) without any engine or registry: one layer on
// an empty base holding the static binary and the CA bundle, run as uid
// 65532, entrypoint the binary. With --entrypoint and --cmd it writes any
// one-binary image the same way: the demo app's and the pause image a
// local node's pods need.
//
//	go run . --binary ../../../bin/linux_amd64/reactive-autoscaler --tag reactive-autoscaler:v0.1.0 --out image.tar
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Options describe the image.
type Options struct {
	Binary string // the static linux binary
	// Entrypoint is the binary's path in the image, its entrypoint
	// (default /reactive-autoscaler); Cmd its arguments (default run).
	Entrypoint string
	Cmd        []string
	// Title is the image's title label (default reactive-autoscaler).
	Title    string
	CABundle string // copied to /etc/ssl/certs/ca-certificates.crt; empty = none
	Tag      string
	Arch     string
	Version  string
	Revision string
	Out      string
}

func main() {
	var o Options
	flag.StringVar(&o.Binary, "binary", "", "static linux binary of reactive-autoscaler")
	flag.StringVar(&o.CABundle, "ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "CA certificates for HTTPS to Prometheus and the predictor; empty = none")
	flag.StringVar(&o.Tag, "tag", "reactive-autoscaler:dev", "image name and tag")
	flag.StringVar(&o.Arch, "arch", "amd64", "architecture of the binary")
	flag.StringVar(&o.Version, "version", "dev", "version label")
	flag.StringVar(&o.Revision, "revision", "unknown", "commit label")
	flag.StringVar(&o.Out, "out", "bin/reactive-autoscaler-image.tar", "tarball to write")
	flag.StringVar(&o.Entrypoint, "entrypoint", "/reactive-autoscaler", "the binary's path in the image, its entrypoint")
	cmd := flag.String("cmd", "run", "the entrypoint's arguments, space-separated")
	flag.StringVar(&o.Title, "title", "reactive-autoscaler", "the image's title label")
	flag.Parse()
	o.Cmd = strings.Fields(*cmd)
	if err := Build(o); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
	fmt.Printf("wrote %s (%s, %s)\n", o.Out, o.Tag, o.Arch)
}

// Build writes the image tarball.
func Build(o Options) error {
	if o.Entrypoint == "" {
		o.Entrypoint = "/reactive-autoscaler"
	}
	if o.Title == "" {
		o.Title = "reactive-autoscaler"
	}
	if o.Cmd == nil {
		o.Cmd = []string{"run"}
	}
	files := map[string]string{o.Entrypoint: o.Binary}
	if o.CABundle != "" {
		files["/etc/ssl/certs/ca-certificates.crt"] = o.CABundle
	}
	layerTar, err := layerOf(files, o.Entrypoint)
	if err != nil {
		return err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerTar)), nil })
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", o.Arch
	cf.Created = v1.Time{Time: time.Unix(0, 0).UTC()} // reproducible
	cf.Config.User = "65532:65532"
	cf.Config.Entrypoint = []string{o.Entrypoint}
	cf.Config.Cmd = o.Cmd
	cf.Config.Labels = map[string]string{
		"org.opencontainers.image.title":    o.Title,
		"org.opencontainers.image.version":  o.Version,
		"org.opencontainers.image.revision": o.Revision,
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	tag, err := name.NewTag(o.Tag)
	if err != nil {
		return err
	}
	return tarball.WriteToFile(o.Out, tag, img)
}

// layerOf builds an uncompressed layer holding each source file at its
// path, owned by root and not writable by the process (uid 65532); the
// entrypoint is executable.
func layerOf(files map[string]string, entrypoint string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, path := range []string{"/etc/ssl/certs/ca-certificates.crt", entrypoint} {
		src, ok := files[path]
		if !ok {
			continue
		}
		for _, d := range parents(path) {
			if !dirs[d] {
				dirs[d] = true
				if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d[1:] + "/", Mode: 0o755, ModTime: time.Unix(0, 0)}); err != nil {
					return nil, err
				}
			}
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return nil, err
		}
		mode := int64(0o644)
		if path == entrypoint {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: path[1:], Mode: mode, Size: int64(len(data)), ModTime: time.Unix(0, 0)}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), tw.Close()
}

// parents returns the directories above path, outermost first.
func parents(path string) []string {
	var out []string
	for i := 1; i < len(path); i++ {
		if path[i] == '/' {
			out = append(out, path[:i])
		}
	}
	return out
}
