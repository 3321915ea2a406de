# retrace — see README.md. Targets: setup, test, bench, run, fmt, vet, wasm.
SHELL := /bin/bash
GO ?= go
export XDG_RUNTIME_DIR ?= /tmp
# System packages the native tests need: a Vulkan driver (lavapipe on
# machines without a GPU) and the loader.
APT_PACKAGES := mesa-vulkan-drivers libvulkan1 gcc

.PHONY: setup test test-go test-wasm bench run fmt vet wasm golden train train-judge

setup:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	else echo "system packages present: $(APT_PACKAGES)"; fi

# The whole test suite: formatting, vet, native tests (GPU kernels on the
# WebGPU adapter, compared with the Go reference) and the wasm build.
test: setup vet test-wasm test-go

test-go:
	$(GO) test -count=1 ./...

test-wasm:
	GOOS=js GOARCH=wasm $(GO) build ./...

vet:
	@bad=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$bad" ]; then echo "gofmt needed:"; echo "$$bad"; exit 1; fi
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

# Op benchmarks on the GPU path and the Go reference in the same run, one
# JSON object per line.
bench: setup
	$(GO) run ./tools/retrace bench --json

golden:
	$(GO) test -count=1 ./... -run Golden -v

run: setup
	@echo "retrace: no demo yet (the browser product is a later issue); 'go run ./tools/retrace info' shows the GPU."

# Train the default model (tools/train/README.md): Debian python3-torch on
# the CPU, single-threaded (threads fight on a shared 2-core machine), then
# export models/fashion and testdata/golden-fashion from the EMA weights.
TRAIN_ENV := OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
train:
	sh tools/train/setup.sh
	$(TRAIN_ENV) /usr/bin/python3 tools/train/train.py --out tools/train/out --steps 2500 --decay-start 1180 --minutes 75
	$(TRAIN_ENV) /usr/bin/python3 tools/train/export.py --ckpt tools/train/out/ckpt.pt

# The classifier judge (tools/train/judge/).
train-judge:
	sh tools/train/setup.sh
	$(TRAIN_ENV) /usr/bin/python3 tools/train/judge.py train
