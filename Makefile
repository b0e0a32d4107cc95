# Entry points for people and CI. The logic lives in the scripts each target calls.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: all build test unit-test demo static bench bench-small lint fmt k8s-binaries clean

all: build

build:
	$(CARGO) build --release --locked

# Every test: unit tests, then the integration tests on a local kube-apiserver and etcd that
# hack/with-cluster.sh starts and stops.
test:
	hack/test.sh

unit-test:
	$(CARGO) test --locked --lib

# Starts a local API server, creates sample TrainJobs, runs trainjob-gc in dry-run and for real.
demo:
	hack/demo.sh

# A fully static release binary for x86_64-unknown-linux-gnu, checked with file and ldd.
static:
	hack/static.sh

# The full benchmark against the alternatives; writes BENCHMARKS.md.
bench:
	bench/run.sh

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

fmt:
	$(CARGO) fmt

# Builds (once) or finds the local Kubernetes binaries and prints their folder.
k8s-binaries:
	hack/k8s-binaries.sh

clean:
	$(CARGO) clean
