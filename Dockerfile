# syntax=docker/dockerfile:1
#
# Mamba's container image: one static binary, `mamba`, on a distroless base
# that runs as a non-root user. Build from the repository root:
#
#   docker build -t mamba:dev .
#
# The image runs `mamba serve` listening on :8080 (the API, /healthz,
# /readyz and /metrics). It refuses to start without MAMBA_AUTH=true (API
# tokens) or MAMBA_INSECURE_NO_AUTH=true (no authentication), since :8080
# is reachable from outside the container (docs/security.md). With
# MAMBA_AUTH=true, MAMBA_BOOTSTRAP_TOKEN_FILE names a file holding the
# deployment's first admin token (made by `mamba auth token generate`),
# which the node creates in Redis at start unless it is there; /run/mamba,
# owned by the node's user, is the place for it (a volume mounted there
# starts out owned by that user). Set the rest with MAMBA_* variables (every
# flag of `mamba serve` has one, docs/operations.md) and the bucket's
# credentials with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
# (docs/objectstore.md).

FROM golang:1.26.8-bookworm AS build
WORKDIR /src
# Modules first, so editing the source does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# CGO_ENABLED=0: a static binary that needs no libc in the final image.
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" -o /out/mamba ./cmd/mamba
RUN mkdir -p /out/run-mamba

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/mamba /mamba
# An empty directory for the bootstrap token file, owned by the node's user.
COPY --from=build --chown=65532:65532 /out/run-mamba /run/mamba
# A static wget (busybox, which runs the applet named by argv[0]) for
# container health checks that cannot reach the pod from outside, such as
# docker compose's: wget -q -O /dev/null http://127.0.0.1:8080/readyz.
# Kubernetes probes do not need it.
COPY --from=busybox:1.37.0-musl /bin/busybox /usr/local/bin/wget
# 65532 is distroless's "nonroot" user; numeric so that Kubernetes'
# runAsNonRoot can verify it.
USER 65532:65532
ENV MAMBA_LISTEN=:8080
EXPOSE 8080
ENTRYPOINT ["/mamba"]
CMD ["serve"]
