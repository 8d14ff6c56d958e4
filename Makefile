# Opti-Quality — the README's two commands:
#   make run   installs what is missing, builds, starts `opti serve --demo` on http://localhost:8080
#   make test  installs what the tests need and runs them all (fmt, clippy, Rust and Python tests)
# Every tool is installed only when missing, so a second run starts straight away.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

# Python environment for the trainer, the reference runtime (onnxruntime) and fixture scripts.
# Kept outside the checkout so that fresh clones on the same machine reuse it.
VENV ?= $(HOME)/.cache/opti-quality/venv
PY := $(VENV)/bin/python
REQ_HASH := $(shell cat trainer/requirements.txt trainer/requirements-test.txt infra/requirements.txt 2>/dev/null | sha256sum | cut -c1-16)
VENV_STAMP := $(VENV)/.opti-req-$(REQ_HASH)

PORT ?= 8080
DATA_DIR ?= data
CARGO ?= cargo
# Where cargo puts its output (honours CARGO_TARGET_DIR).
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)

export OPTI_PYTHON := $(PY)
export YOLO_OFFLINE := 1

.PHONY: run test build web venv rust-tools fmt-check clippy clippy-web test-rust test-python test-api-fuzz test-web test-aws test-infra sam-build clean help

help:
	@echo "make run    build and start opti serve --demo on http://localhost:$(PORT)"
	@echo "make test   install test tools and run every check"

rust-tools:
	@command -v cargo >/dev/null || { echo "cargo not found: install Rust (https://rustup.rs) first" >&2; exit 1; }
	@scripts/ensure-rust-components.sh

$(VENV_STAMP): trainer/requirements.txt trainer/requirements-test.txt infra/requirements.txt
	@scripts/ensure-venv.sh "$(VENV)" "$(VENV_STAMP)"

venv: $(VENV_STAMP)

# -p: only the local binary's features (a workspace-wide --bin would pull the AWS SDK in).
build: rust-tools
	$(CARGO) build --release -p opti-cli --bin opti

# The web UI (web/, Yew) built by trunk into web/dist, which `opti serve` serves.
web: rust-tools
	@scripts/ensure-web-tools.sh
	cd web && trunk build --release --offline

run: build web venv
	$(TARGET_DIR)/release/opti serve --data-dir $(DATA_DIR) --port $(PORT) --demo

fmt-check: rust-tools
	$(CARGO) fmt --all -- --check

clippy: rust-tools
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The UI's Yew code only builds for wasm32, so it is linted for that target too.
clippy-web: rust-tools
	@scripts/ensure-web-tools.sh
	$(CARGO) clippy --target wasm32-unknown-unknown -p opti-web -- -D warnings

# OPTI_REQUIRE_PARITY=1: a parity fixture that cannot be checked (model or venv absent)
# fails the run instead of being skipped (crates/vision/tests/parity.rs).
# OPTI_SKIP_BROWSER=1: the browser tests (web/browser-tests) run in test-web, once the UI is built.
test-rust: rust-tools venv
	OPTI_REQUIRE_PARITY=1 OPTI_SKIP_BROWSER=1 $(CARGO) test --workspace

test-python: venv
	cd trainer && $(PY) -m pytest -q tests

# schemathesis against a real `opti serve`: no generated request may get a 5xx.
# `test --no-run` builds target/debug/opti with the same features as test-rust (a plain
# `build --bin opti` would unify features differently and compile tract a second time).
test-api-fuzz: rust-tools venv
	$(CARGO) test --workspace --no-run
	scripts/schemathesis.sh $(TARGET_DIR)/debug/opti $(VENV)

# The UI in headless Chromium, driven from Rust (fantoccini + chromedriver, web/browser-tests),
# against a real `opti serve` with the shipped model: the journeys, and a walk through every
# page at 1366x768 and 1920x1080 (screenshots in test-output/web). `test --workspace --no-run`
# builds target/debug/opti with the same features as test-rust (no second tract build);
# `--workspace --test …` keeps that feature set for the test binaries too. The retrain
# journey (a dozen reviews in the UI, Retrain, the gate and the new version on the Models
# page) runs the real trainer from the venv for 1 epoch (OPTI_PYTHON, trainer/).
# OPTI_REQUIRE_BROWSER=1: a missing chromium, chromedriver, web/dist, opti or trainer
# Python fails the run.
test-web: rust-tools web venv
	@scripts/ensure-browser.sh
	$(CARGO) test --workspace --no-run
	OPTI_REQUIRE_BROWSER=1 WEB_DIST=web/dist OPTI_TRAINER_DIR=trainer \
	  $(CARGO) test --workspace --test journeys --test walkthrough --test retrain_journey


# AWS mode against moto server (started and stopped by the script): the DynamoDB/S3
# adapter's conformance suite and the Lambda functions' handlers (upload events, review
# API with Cognito callers, scheduled drift with SNS alerts, retrain dispatch to SageMaker
# and completion). In test-rust, without moto, they skip. Then scripts/lambda-local.py runs
# the built `upload` and `review` binaries under `cargo lambda watch` (the Lambda runtime
# emulator): object into moto's S3 -> `cargo lambda invoke upload` with the S3 event ->
# record in DynamoDB -> read back with API Gateway events through `review`.
test-aws: rust-tools venv
	scripts/test-aws.sh $(VENV) $(CARGO) test -p opti-store -p opti-lambda --features opti-store/aws
	CARGO=$(CARGO) scripts/test-aws.sh $(VENV) $(VENV)/bin/python scripts/lambda-local.py $(VENV)/bin/cargo-lambda

# The SAM template: cfn-lint, `sam validate --lint` (offline: a dummy region, no
# credentials), and the template tests (least privilege per function, table layout).
test-infra: venv
	$(VENV)/bin/cfn-lint infra/template.yaml
	env -u AWS_PROFILE AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID= AWS_SECRET_ACCESS_KEY= \
	  AWS_EC2_METADATA_DISABLED=true SAM_CLI_TELEMETRY=0 \
	  $(VENV)/bin/sam validate --lint -t infra/template.yaml
	$(PY) -m pytest -q infra/tests

# `sam build` of infra/template.yaml (arm64 release binaries of every function, cargo-lambda
# + zig from PyPI, no Docker). Slow on 2 cores (see docs/deploy.md), so not part of `test`.
sam-build: rust-tools venv
	scripts/sam-build.sh $(VENV)

test: fmt-check clippy clippy-web test-rust test-python test-api-fuzz test-aws test-infra test-web
	@echo "make test: all checks passed"

clean:
	$(CARGO) clean
