# Two entry points work on a fresh machine:
#   make render   set up the pinned tools, render the prod site and validate it (strict, offline)
#   make test     set up the tools and the test servers, then run the whole test suite (make cluster included)
#   make cluster  build or reuse the control plane, then run the cluster tests against it (tests/cluster)
SHELL := /bin/bash
VENV  := .venv
GEN   := $(VENV)/bin/generator
SITE  ?= prod

.PHONY: setup setup-servers setup-cluster render test cluster cluster-tests e2e-tests suite-tests e2e bench bench-bootstrap check clean

setup:
	bash scripts/setup.sh

setup-servers: setup
	bash scripts/install-servers.sh $(VENV)

setup-cluster: setup
	bash scripts/install-cluster.sh

render: setup
	$(GEN) render --site $(SITE)
	$(GEN) validate --site $(SITE)

check: setup
	$(GEN) schema --check
	$(GEN) render --all --check
	$(GEN) validate --all

test: setup-servers setup-cluster
	$(GEN) schema --check
	$(GEN) render --all --check
	$(GEN) validate --all
	$(GEN) audit
	$(MAKE) --no-print-directory -j3 --output-sync=target suite-tests e2e-tests cluster-tests

# make test runs the three parts of the suite at once: the end-to-end and cluster tests mostly wait on
# servers and controllers (their deadlines scale with the load), so they share the 2 cores well with the
# rest (each part's output is printed whole when it ends; the slowest tests of each are listed).
cluster: setup-cluster
	$(MAKE) --no-print-directory cluster-tests

cluster-tests:
	$(VENV)/bin/pytest -q -rA --durations=5 tests/cluster

e2e-tests:
	$(VENV)/bin/pytest -q --durations=10 tests/e2e

suite-tests:
	$(VENV)/bin/pytest -q --durations=15 --ignore=tests/cluster --ignore=tests/e2e

e2e: setup-servers
	$(VENV)/bin/pytest -q -rA tests/e2e/test_full_flow.py::test_full_flow tests/e2e/test_pod_sandbox.py

bench: setup
	$(VENV)/bin/python scripts/bench_render.py

bench-bootstrap: setup-servers
	$(VENV)/bin/python scripts/bench_bootstrap.py

clean:
	rm -rf .generator .pytest_cache
