// Tools module: builds the OCI image tarball of `make image` without a
// Docker engine or a registry, with go-containerregistry. Its own module so
// that the product's go.mod does not carry an image library.
module github.com/autoscale-io/reactive-autoscaler/hack/tools/image

go 1.26

require github.com/google/go-containerregistry v0.22.1

require (
	github.com/klauspost/compress v1.19.2 // indirect
	github.com/opencontainers/go-digest v1.0.0 // indirect
	github.com/opencontainers/image-spec v1.1.1 // indirect
)
