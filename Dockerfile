# syntax=docker/dockerfile:1
#
# The koobridge container image: a static koobridge binary on a distroless
# base, running as the non-root user 65532 with its SQLite database on the
# /data volume. docs/operations.md ("Install") shows docker build/run and
# compose.yaml; deploy/image_test.go checks this file's instructions and runs
# the same build command, file layout, user, environment and health check
# without a container engine.
#
#   docker build -t koobridge .
#   docker build --build-arg VERSION=v1.2.3 -t koobridge:v1.2.3 .
#
# Bases are pinned by tag; pin them by digest too (golang:…@sha256:…) where
# your registry policy asks for it.

# The build runs on the builder's own platform and cross-compiles for the
# target's (CGO is off, so no cross toolchain is needed).
FROM --platform=$BUILDPLATFORM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
# The context includes .git (see .dockerignore), so scripts/release stamps the
# commit, the commit's date and git describe's version, as in a release.
COPY . .
ARG TARGETARCH
# VERSION overrides git describe's version (e.g. a release tag).
ARG VERSION
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    scripts/release --binary --out /out ${VERSION:+--version "$VERSION"} "linux/$TARGETARCH"
# The volume's mount point, empty, copied below owned by the image's user: a
# new named volume takes its owner from it, so the user can write the database.
RUN mkdir /out/data

# static-debian12 holds CA certificates (the Open API is HTTPS), tzdata and
# /etc/passwd with the nonroot user 65532, and no shell.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION
LABEL org.opencontainers.image.title="koobridge" \
      org.opencontainers.image.description="Seller-side integration for Huawei Cloud KooGallery" \
      org.opencontainers.image.source="https://github.com/koobridge/koobridge" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/koobridge /usr/local/bin/koobridge
COPY --from=build --chown=65532:65532 /out/data /data
# serve's settings for the image; everything else comes from docker run -e,
# compose's environment or a --config file (docs/configuration.md).
ENV KOOBRIDGE_DB=sqlite:/data/koobridge.db \
    KOOBRIDGE_LISTEN=0.0.0.0:8080
USER 65532:65532
WORKDIR /data
VOLUME /data
EXPOSE 8080
# serve drains in-flight calls on SIGTERM for up to --shutdown-timeout (30 s):
# give docker stop/compose a longer grace period (compose.yaml does).
STOPSIGNAL SIGTERM
# No shell or curl in the image: koobridge checks itself, at the address
# KOOBRIDGE_LISTEN names. The start period covers the migrations at start.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["/usr/local/bin/koobridge", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/koobridge"]
CMD ["serve"]
