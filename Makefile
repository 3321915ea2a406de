# retrace — see README.md. Targets: setup, test, e2e, bench, run, site, fmt, vet, wasm.
SHELL := /bin/bash
GO ?= go
export XDG_RUNTIME_DIR ?= /tmp
# System packages: the native tests need a Vulkan driver (lavapipe on
# machines without a GPU), the loader and a C compiler (cgo); the browser
# tests need Debian's chromium (never a browser downloaded by a tool).
BUILD_PACKAGES := mesa-vulkan-drivers libvulkan1 gcc
APT_PACKAGES := $(BUILD_PACKAGES) chromium
# Where `make run` serves the site.
ADDR ?= 127.0.0.1:8080
SITE ?= dist/site

.PHONY: setup setup-build test test-go test-wasm e2e bench run site fmt vet wasm golden train train-judge train-safesd

# apt_ensure installs the Debian packages in $(1) that are missing.
define apt_ensure
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	else echo "system packages present: $(1)"; fi
endef

setup:
	$(call apt_ensure,$(APT_PACKAGES))

# What building and serving the site needs (no browser).
setup-build:
	$(call apt_ensure,$(BUILD_PACKAGES))

# The whole test suite: formatting, vet, native tests (GPU kernels on the
# WebGPU adapter, compared with the Go reference), the wasm build and the
# browser tests (tools/e2e: headless chromium, WebGPU on SwiftShader).
test: setup vet test-wasm test-go

# The Go reference's product also has an AVX2/FMA kernel behind Go's
# experimental simd package (nn/gemm_kernel_simd.go); its tests run too.
test-go:
	$(GO) test -count=1 -timeout 30m ./...
	GOEXPERIMENT=simd $(GO) test -count=1 -run 'Conv2dReference|MatMulReference|LinearMatches|Golden' ./nn/

# The browser end-to-end tests alone; screenshots and logs go to dist/e2e/.
e2e: setup
	$(GO) test -count=1 -timeout 20m -v ./tools/e2e/

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
	GOEXPERIMENT=simd $(GO) run ./tools/retrace bench --json

golden:
	$(GO) test -count=1 ./... -run Golden -v

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

# The Safe-SD-style watermark's injector and detector (models/fashion/safesd,
# docs/WATERMARK.md), its golden pairs, and its bit accuracy per attack.
train-safesd:
	sh tools/train/setup.sh
	$(TRAIN_ENV) /usr/bin/python3 tools/train/safesd.py train --steps 6000 --minutes 45 --inj-ch 32 --det-ch 48
	$(TRAIN_ENV) /usr/bin/python3 tools/train/safesd.py golden
	$(TRAIN_ENV) /usr/bin/python3 tools/train/safesd.py test --n 1000

# The static site (wasm runtime, pages, default pack), minified and
# content-hashed, in $(SITE).
site: setup-build
	$(GO) run ./tools/retrace site --out $(SITE)

wasm: site

# Build the site and serve it with the default model; prints the URL.
run: site
	$(GO) run ./tools/retrace serve --addr $(ADDR) --site $(SITE)
