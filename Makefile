# Two entry points work on a fresh machine:
#   make render   set up the pinned tools, render the prod site and validate it (strict, offline)
#   make test     set up the tools and the test servers, then run the whole test suite (make cluster included)
#   make release  tag v<version> after the checks (refuses a dirty tree or an existing tag)
#   make cluster  build or reuse the control plane, then run the cluster tests against it (tests/cluster)
SHELL := /bin/bash
VENV  := .venv
GEN   := $(VENV)/bin/generator
SITE  ?= prod

# Bytecode is cached outside the clone, in ~/.cache: an environment that sets PYTHONDONTWRITEBYTECODE (to keep
# __pycache__ out of the tree) would otherwise make every generator process the tests start compile the package
# again, as an installed tool never does.
unexport PYTHONDONTWRITEBYTECODE
export PYTHONPYCACHEPREFIX ?= $(or $(GENERATOR_CACHE),$(HOME)/.cache/litellm-gitops)/pycache

.PHONY: release setup setup-servers setup-cluster render test cluster cluster-tests e2e-tests suite-tests suite-a suite-b e2e bench bench-bootstrap check clean

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

# Tag this commit v<version> (pyproject.toml) after the checks; the ref `generator ci init` then pins.
release: setup
	bash scripts/release.sh

test: setup-servers setup-cluster
	$(GEN) schema --check
	$(GEN) render --all --check
	$(GEN) validate --all
	$(GEN) audit
	$(MAKE) --no-print-directory -j4 --output-sync=target suite-a suite-b e2e-tests cluster-tests

# make test runs the four parts of the suite at once: the end-to-end and cluster tests mostly wait on
# servers and controllers (their deadlines scale with the load), so they share the 2 cores well with the
# rest, and the unit and integration tests are split in two halves (the Keycloak users in one) so that no
# part runs alone at the end (each part's output is printed whole when it ends; the slowest tests are listed).
cluster: setup-cluster
	$(MAKE) --no-print-directory cluster-tests

cluster-tests:
	$(VENV)/bin/pytest -q -rA --durations=5 tests/cluster

e2e-tests:
	$(VENV)/bin/pytest -q --durations=10 tests/e2e

SUITE_A := tests/unit $(addprefix tests/integration/,test_bootstrap.py test_servers_smoke.py test_ci_init.py \
	test_pre_commit_hooks.py test_caches.py test_status.py test_diff_input.py test_audit_shapes.py)

suite-tests: suite-a suite-b

suite-a:
	$(VENV)/bin/pytest -q --durations=10 $(SUITE_A)

suite-b:
	$(VENV)/bin/pytest -q --durations=10 tests/integration $(addprefix --ignore=,$(filter tests/integration/%,$(SUITE_A)))

e2e: setup-servers
	$(VENV)/bin/pytest -q -rA tests/e2e/test_full_flow.py::test_full_flow tests/e2e/test_pod_sandbox.py

bench: setup
	$(VENV)/bin/python scripts/bench_render.py

bench-bootstrap: setup-servers
	$(VENV)/bin/python scripts/bench_bootstrap.py

clean:
	rm -rf .generator .pytest_cache
