# syntax=docker/dockerfile:1
# The trusthub-operator image: only the `trusthub-operator` binary on distroless, non-root.
#
# Why glibc + distroless/cc rather than a static musl binary on scratch: TLS comes from rustls
# with aws-lc-rs, whose aws-lc-sys builds a C/assembly library; on musl that needs a musl C
# cross toolchain, and musl's allocator is slow under tokio's multi-threaded runtime. The
# glibc build in the same Debian release as the runtime image (bookworm, glibc 2.36) needs no
# extra toolchain, and distroless/cc-debian12 adds only glibc, libgcc and CA certificates — no
# shell, no package manager — to the binary.
#
#   docker build -t trusthub-operator .

FROM rust:1-bookworm AS builder
# aws-lc-sys may fall back to CMake for its C build.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin trusthub-operator \
 && install -D -m 0755 target/release/trusthub-operator /out/trusthub-operator

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/trusthub-operator /usr/local/bin/trusthub-operator
# 65532 is distroless' "nonroot"; numeric so runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/trusthub-operator", "run"]
