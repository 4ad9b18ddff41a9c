# reactive-autoscaler: a static binary on an empty base, run as uid 65532.
# `make docker` builds it where a Docker engine exists; `make image` writes
# the same image as a tarball without one.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
ARG TARGETOS=linux
ARG TARGETARCH=amd64
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath \
      -ldflags "-s -w -X main.version=$VERSION -X main.commit=$COMMIT" \
      -o /out/reactive-autoscaler ./cmd/reactive-autoscaler

# No distribution at all: the binary, the CA bundle (HTTPS to Prometheus
# and the predictor), a numeric non-root user. Nothing to patch, no shell.
FROM scratch
ARG VERSION=dev
ARG COMMIT=unknown
LABEL org.opencontainers.image.title=reactive-autoscaler \
      org.opencontainers.image.version=$VERSION \
      org.opencontainers.image.revision=$COMMIT
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/reactive-autoscaler /reactive-autoscaler
USER 65532:65532
ENTRYPOINT ["/reactive-autoscaler"]
CMD ["run"]
