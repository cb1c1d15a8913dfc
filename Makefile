# The two commands the README starts with: `make demo` and `make test`.
SHELL := /bin/bash
.ONESHELL:
.PHONY: demo test unit lint guest vm-demo deb rpm bench clean

VENVS = $(shell tools/bootstrap)
NEWEST = $(lastword $(VENVS))

demo:
	venv=$$(tools/bootstrap | tail -n1)
	PYTHONPATH=$(CURDIR) $$venv/bin/python tools/demo.py

test:
	set -e
	venvs=$$(tools/bootstrap)
	for v in $$venvs; do
	  echo "=== tests on $$($$v/bin/python --version)"
	  PYTHONPATH=$(CURDIR) $$v/bin/python -m pytest -q -m "not guest" tests
	done
	newest=$$(echo "$$venvs" | tail -n1)
	echo "=== real-guest tests on $$($$newest/bin/python --version)"
	PYTHONPATH=$(CURDIR) $$newest/bin/python -m pytest -q -m guest tests

vm-demo:
	tools/vm-demo

bench:
	venv=$$(tools/bootstrap | tail -n1)
	$$venv/bin/python bench/boot_cost.py

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
