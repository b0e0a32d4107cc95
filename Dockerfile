# syntax=docker/dockerfile:1
# Image of trainjob-gc: one static binary on distroless/static, run as user 65532.
#
# Both stages are pinned to linux/amd64 because hack/static.sh builds for
# x86_64-unknown-linux-gnu only. On another host architecture the build stage needs QEMU
# emulation (Docker Desktop includes it), which is slow but gives the same image.

FROM --platform=linux/amd64 docker.io/library/rust:1.95-trixie AS build
WORKDIR /src
COPY . .
# hack/static.sh runs `cargo build --release --locked` with +crt-static and fails unless file
# and ldd report a static binary. The cache mounts keep the crate downloads and the build
# folder between builds, so the binary is copied out within the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    hack/static.sh \
 && install -D -m 0555 target/x86_64-unknown-linux-gnu/release/trainjob-gc /out/trainjob-gc

# distroless/static has no shell and no package manager, but it has CA certificates, time zone
# data and an /etc/passwd entry for 65532 ("nonroot").
# NOTE: glibc warns that getaddrinfo in a static binary needs glibc's shared NSS modules at run
# time, and this image has none. In a pod trainjob-gc reaches the API server at the IP address
# in KUBERNETES_SERVICE_HOST, so it resolves no name. A binary built with glibc 2.36 resolved a
# name from /etc/hosts in an empty chroot, but DNS lookups without those modules are untested.
FROM --platform=linux/amd64 gcr.io/distroless/static-debian13:nonroot
LABEL org.opencontainers.image.title="trainjob-gc" \
      org.opencontainers.image.description="Deletes finished Kubeflow TrainJobs once their retention time has passed" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/trainjob-gc /trainjob-gc
# Numeric, so that Kubernetes can check runAsNonRoot without reading /etc/passwd.
USER 65532:65532
ENTRYPOINT ["/trainjob-gc"]
