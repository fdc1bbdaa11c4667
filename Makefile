# Two entry points work on a fresh machine:
#   make render   set up the pinned tools, render the prod site and validate it (strict, offline)
#   make test     set up the tools and the test servers, then run the whole test suite
SHELL := /bin/bash
VENV  := .venv
GEN   := $(VENV)/bin/generator
SITE  ?= prod

.PHONY: setup setup-servers render test e2e bench bench-bootstrap check clean

setup:
	bash scripts/setup.sh

setup-servers: setup
	bash scripts/install-servers.sh $(VENV)

render: setup
	$(GEN) render --site $(SITE)
	$(GEN) validate --site $(SITE)

check: setup
	$(GEN) schema --check
	$(GEN) render --all --check
	$(GEN) validate --all

test: setup-servers
	$(GEN) schema --check
	$(GEN) render --all --check
	$(GEN) validate --all
	$(GEN) audit
	$(VENV)/bin/pytest -q

e2e: setup-servers
	$(VENV)/bin/pytest -q -rA tests/e2e/test_full_flow.py::test_full_flow tests/e2e/test_pod_sandbox.py

bench: setup
	$(VENV)/bin/python scripts/bench_render.py

bench-bootstrap: setup-servers
	$(VENV)/bin/python scripts/bench_bootstrap.py

clean:
	rm -rf .generator .pytest_cache
