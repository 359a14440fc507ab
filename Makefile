# The project's commands. Each target installs what it needs first (package-lock.json,
# requirements-dev.txt, the rustup arm64 target), so `make demo` and `make test` work on a fresh clone.
#
#   make demo     the pipeline end to end on the embedded AWS emulator, with a summary
#   make test     every check and test (what CI runs)
#   make run      the local pipeline, kept running for `order-producer --local` (flags: ARGS="...")
#   make build    the arm64 Lambda bootstraps (cargo lambda)
#   make synth / deploy / destroy   the CDK stack (context: CDK_ARGS="-c stage=prod")
#   make bench    the benchmarks (docs/benchmarks.md)
#   make fuzz     the parser and item fuzzer for FUZZ_SECONDS (600; docs/reliability.md)
#   make soak     SOAK_ORDERS (10,000) orders with faults injected (docs/reliability.md)
#   make flash-sale  FLASH_ORDERS (5,000) orders for 3 hot skus, with transaction conflicts
#   make setup    install the project's tools (qemu too); make lint   fmt, clippy and tsc only

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# The project-local tools (moto_server, cargo-lambda, zig, cfn-lint) come first on PATH.
export PATH := $(CURDIR)/.venv/bin:$(PATH)
VENV_STAMP := .venv/.installed
NPM_STAMP := node_modules/.installed
TARGET_STAMP := target/.aarch64-target
QEMU_STAMP := target/.qemu-arm64
# apt-get needs root: sudo when not root.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Where cargo puts the builds (CARGO_TARGET_DIR when set, as cargo does).
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)

help:
	@sed -n '4,13p' Makefile | sed 's/^# //'

$(VENV_STAMP): requirements-dev.txt
	@echo "== $$(date +%T) Python tools into .venv (moto, cargo-lambda, zig, cfn-lint): about a minute the first time"
	python3 -m venv .venv
	.venv/bin/pip install --quiet --upgrade pip
	.venv/bin/pip install --quiet -r requirements-dev.txt
	@touch $@

$(NPM_STAMP): package.json package-lock.json
	@echo "== $$(date +%T) npm packages"
	# `npm install` (not `npm ci`): it installs the versions package-lock.json pins, and unlike
	# `npm ci` it accepts a lock written without registry URLs, whose optional platform-specific
	# packages for other systems are then not listed.
	npm install --no-audit --no-fund
	@touch $@

$(TARGET_STAMP):
	@echo "== $$(date +%T) Rust arm64 target for the Lambda builds"
	rustup target add aarch64-unknown-linux-gnu
	rustup component add clippy rustfmt
	@mkdir -p target && touch $@

$(QEMU_STAMP):
	@echo "== $$(date +%T) qemu-user and an arm64 C library (Debian packages), to run the arm64 bootstraps here"
	if ! command -v qemu-aarch64 >/dev/null || [ ! -d /usr/aarch64-linux-gnu/lib ]; then \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq qemu-user libc6-arm64-cross; fi
	@mkdir -p target && touch $@

# What every command needs; only `make test` runs the arm64 bootstraps, so only it needs qemu.
tools: $(VENV_STAMP) $(NPM_STAMP) $(TARGET_STAMP)

setup: tools $(QEMU_STAMP)

lint: tools
	@echo "== $$(date +%T) cargo fmt, clippy, tsc"
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	npx tsc --noEmit

# `make test` lints while it builds: cargo runs clippy-driver (rustc with clippy's lints) for the
# workspace's own crates and plain rustc for the dependencies, with `-D warnings`, so the test
# build is also the clippy check of every target (`--all-targets`: libraries, binaries, tests and
# the bench), and the dependencies are compiled once, not twice (`cargo clippy` first checks all
# of them again as metadata: about 3 minutes of a fresh CI run on two cores). The tests then run
# under the same settings, so nothing is built again. `make lint` is the plain `cargo clippy`.
# (After `make test`, a plain `cargo test` compiles the workspace's crates again, not the
# dependencies: the wrapper is part of their fingerprint.)
CLIPPY_BUILD := RUSTC_WORKSPACE_WRAPPER=clippy-driver CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__

# The set-up (.venv, npm packages, qemu: downloads and unpacking, little CPU) runs beside the Rust
# test build, which needs only the rustup components; its output goes to SETUP_LOG and is printed
# when it ends. tsc follows it.
#
# The arm64 bundling (`cdk synth`, cargo lambda) starts when the set-up is done, at the lowest CPU
# priority: the build and the tests keep the CPU they want (their timings stay as when run
# alone) and the bundling takes what they leave idle (single-threaded links and build scripts of
# the build, the tests' waits). Its cargo builds another target and profile (aarch64, release), so
# neither waits for the other's build lock. It runs in its own session (so a failed step stops
# all of it) whose autogroup is also set to nice 19: with Linux's autogroup scheduling, nice
# alone would only rank it within its own session. The demo on its bootstraps (mostly waits: the
# emulator, qemu, the payment stage's timeouts) starts as soon as the bundling is done, beside
# the tests, at normal priority; its output goes to DEMO_LOG and is printed at the end, and the
# run fails when it fails (docs/benchmarks.md, section 9).
SYNTH_LOG := $(TARGET_DIR)/synth-check.log
SETUP_LOG := $(TARGET_DIR)/setup.log
DEMO_LOG := $(TARGET_DIR)/demo-arm64.log
SYNTH_STATUS := $(TARGET_DIR)/synth-check.status
test: $(TARGET_STAMP)
	@echo "== $$(date +%T) cargo fmt"
	cargo fmt --all --check
	@echo "== $$(date +%T) set-up (.venv with moto, cargo-lambda, zig and cfn-lint; npm packages; qemu) and tsc beside the Rust test build: $(SETUP_LOG)"
	@mkdir -p $(TARGET_DIR); rm -f $(SYNTH_STATUS)
	{ $(MAKE) --no-print-directory -j3 $(VENV_STAMP) $(NPM_STAMP) $(QEMU_STAMP) && npx tsc --noEmit; } > $(SETUP_LOG) 2>&1 & setup=$$!; \
	synth=; demo=; trap 'kill $$setup 2>/dev/null; for g in $$synth $$demo; do kill -- -$$g 2>/dev/null; done' EXIT; \
	echo "== $$(date +%T) Rust test builds, linted by clippy (-D warnings) as they compile"; \
	$(CLIPPY_BUILD) cargo test --workspace --all-targets --locked --no-run & build=$$!; \
	status=0; wait $$setup || status=$$?; \
	echo "== $$(date +%T) set-up and tsc done (exit $$status):"; cat $(SETUP_LOG); \
	if [ $$status -ne 0 ]; then kill $$build 2>/dev/null; echo "the set-up or tsc failed (exit $$status): see the lines above"; exit $$status; fi; \
	echo "== $$(date +%T) cdk synth with real bundling (every function as an arm64 bootstrap, glibc <= 2.34) started beside the build and the tests, at nice 19: $(SYNTH_LOG)"; \
	setsid sh -c 'echo 19 > /proc/self/autogroup 2>/dev/null || true; nice -n 19 npx ts-node test/synth-check.ts > $(SYNTH_LOG) 2>&1; echo $$? > $(SYNTH_STATUS)' & synth=$$!; \
	wait $$build; \
	echo "== $$(date +%T) the demo on the arm64 bootstraps (under qemu-aarch64, behind a local Lambda runtime API) starts when they are built, beside the tests: $(DEMO_LOG)"; \
	setsid sh -c 'while [ ! -s $(SYNTH_STATUS) ]; do sleep 1; done; [ "$$(cat $(SYNTH_STATUS))" = 0 ] || exit 0; exec $(TARGET_DIR)/debug/order-local demo --assembly cdk.out' > $(DEMO_LOG) 2>&1 & demo=$$!; \
	echo "== $$(date +%T) Rust tests: unit, property, contract table, deadline, moto integration, template parity, end to end"; \
	$(CLIPPY_BUILD) cargo test --workspace --locked; \
	echo "== $$(date +%T) CDK tests: snapshot, assertions, stage construct, cdk-nag, config, cfn-lint"; \
	npx jest --ci; \
	echo "== $$(date +%T) waiting for cdk synth's arm64 bootstraps"; \
	wait $$synth || true; status=$$(cat $(SYNTH_STATUS) 2>/dev/null || echo 1); \
	grep -v '^ *Compiling ' $(SYNTH_LOG); \
	if [ "$$status" != 0 ]; then echo "cdk synth with real bundling failed (exit $$status): the whole log is $(SYNTH_LOG)"; exit 1; fi; \
	echo "== $$(date +%T) waiting for the demo on those bootstraps"; \
	status=0; wait $$demo || status=$$?; trap - EXIT; \
	cat $(DEMO_LOG); \
	if [ $$status -ne 0 ]; then echo "the demo on the arm64 bootstraps failed (exit $$status): its output is above and in $(DEMO_LOG)"; exit $$status; fi
	@echo "== $$(date +%T) done"

# Flags for the runner, e.g. make run ARGS="--decline-rate 0.2" (order-local run --help lists them)
ARGS ?=

demo: tools
	cargo run --locked -p order-local --bin orders -- demo $(ARGS)

run: tools
	cargo run --locked -p order-local --bin orders -- run $(ARGS)

build: tools
	cargo lambda build --release --arm64 --locked $(addprefix -p ,$(FUNCTIONS))

# Extra CDK arguments, e.g. make deploy CDK_ARGS="-c stage=prod -c alarmEmail=ops@example.com"
CDK_ARGS ?=

synth: tools
	npx cdk synth $(CDK_ARGS)

deploy: tools
	npx cdk deploy --outputs-file cdk-outputs.json $(CDK_ARGS)

destroy: tools
	npx cdk destroy $(CDK_ARGS)

# Every Lambda function of the workspace (each a binary of the same name), as the function
# registry lists them (functions/registry.json, generated from order_pipeline::registry).
FUNCTIONS := $(shell python3 -c 'import json; print(" ".join(f["name"] for f in json.load(open("functions/registry.json"))["functions"]))')
BENCH_ORDERS ?= 300

bench: tools
	@echo "== $$(date +%T) arm64 bootstraps, zipped as Lambda takes them"
	cargo lambda build --release --arm64 --output-format zip --locked $(addprefix -p ,$(FUNCTIONS))
	@echo "== $$(date +%T) host release builds of the functions and the benchmark"
	# Two builds: order-bench uses the local tools (order-local), whose extra aws-config features
	# would otherwise be unified into the functions' binaries and measured as theirs.
	cargo build --release --locked $(addprefix -p ,$(FUNCTIONS))
	cargo build --release --locked -p order-bench
	@echo "== $$(date +%T) per-record cost and the handler over a batch of 10 (criterion)"
	cargo bench --locked -p order-bench --bench records
	@echo "== $$(date +%T) 1-6: cold start, per-record cost, batch latency, memory and size, cost per million orders"
	$(TARGET_DIR)/release/order-bench
	@echo "== $$(date +%T) 7. every function as a process on the emulator, over the demo and $(BENCH_ORDERS) generated orders"
	cargo run --locked -p order-local --bin order-local -- demo --generate $(BENCH_ORDERS) --bootstraps $(TARGET_DIR)/release --no-traces
	@echo "== $$(date +%T) 8. the same with the functions' AWS calls 10 ms each on connections kept open (a proxy in front of the emulator)"
	cargo run --locked -p order-local --bin order-local -- demo --generate $(BENCH_ORDERS) --bootstraps $(TARGET_DIR)/release --aws-latency-ms 10 --no-traces

# The fuzzer is a time-budgeted property test (stable toolchain); make test runs it for 5 s.
FUZZ_SECONDS ?= 600
fuzz:
	@echo "== $$(date +%T) fuzzing the parser and the item round-trip for $(FUZZ_SECONDS) s (replay a failure with FUZZ_SEED=...)"
	FUZZ_SECONDS=$(FUZZ_SECONDS) cargo test --release --locked -p order-domain --test fuzz -- --nocapture

# make test runs 500 orders with faults; this runs SOAK_ORDERS (10,000) and prints the figures.
SOAK_ORDERS ?= 10000
soak: tools
	@echo "== $$(date +%T) $(SOAK_ORDERS) orders through the whole pipeline with faults injected (tens of minutes)"
	SOAK_ORDERS=$(SOAK_ORDERS) cargo test --release --locked -p order-local --test soak soak -- --ignored --exact --nocapture

# A flash sale (docs/benchmarks.md, "Flash sale"): FLASH_ORDERS orders for 3 hot skus with stock
# for a third of them, plus a tenth as many background orders, through the whole lifecycle on an
# emulator that cancels transactions on a busy item. ARGS="--conflict-tries 1" measures the
# stages without their in-process conflict retry (the "before" column).
FLASH_ORDERS ?= 5000
flash-sale: tools
	@echo "== $$(date +%T) the local runner, release build"
	cargo build --release --locked -p order-local --bin order-local
	@echo "== $$(date +%T) $(FLASH_ORDERS) orders of a flash sale (a few minutes)"
	$(TARGET_DIR)/release/order-local flash-sale --orders $(FLASH_ORDERS) --background $$(( $(FLASH_ORDERS) / 10 )) $(ARGS)

.PHONY: help tools setup lint test demo run build synth deploy destroy bench fuzz soak flash-sale
