# syntax=docker/dockerfile:1
#
# canaryd and canaryctl as static binaries on a distroless base, run as a
# non-root user, with the SQLite store on a volume.
#
#   docker build -t canaryd:1.0.0 --build-arg VERSION=1.0.0 .
#   docker run --rm -p 8080:8080 -p 127.0.0.1:8081:8081 \
#     -v "$PWD/canaryd.yaml:/etc/canaryd/canaryd.yaml:ro" -v canaryd-data:/var/lib/canaryd \
#     -e CANARYD_ADMIN_TOKEN canaryd:1.0.0
#
# `canaryd version` reports VERSION and the commit: COMMIT when given
# (--build-arg COMMIT=$(git rev-parse --short HEAD)), else the one the Go
# toolchain stamps when the build context holds the .git directory.
# docs/operations.md explains the choices.

FROM golang:1.26 AS build
WORKDIR /src
# Modules first: a change to the code does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=
ENV CGO_ENABLED=0
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath \
      -ldflags "-s -w -X github.com/canaryd/canaryd/internal/version.Version=${VERSION} -X github.com/canaryd/canaryd/internal/version.BuildCommit=${COMMIT}" \
      -o /out/ ./cmd/canaryd ./cmd/canaryctl
# The store's directory, owned by the image's non-root user (uid 65532).
RUN mkdir -p /out/data && chown 65532:65532 /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/canaryd /out/canaryctl /usr/local/bin/
COPY --from=build --chown=65532:65532 /out/data /var/lib/canaryd
USER 65532:65532
WORKDIR /var/lib/canaryd
VOLUME ["/var/lib/canaryd"]
# 8080: the data plane (clients); 8081: the admin listener (API, /metrics).
EXPOSE 8080 8081
# canaryd drains in-flight requests on SIGTERM (proxy.shutdown_timeout).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/canaryd"]
CMD ["serve", "--config", "/etc/canaryd/canaryd.yaml"]
