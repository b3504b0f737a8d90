# romp_ros developer entry points. `make test` is the CI contract.
SHELL := /bin/bash
.DEFAULT_GOAL := help
ENV := source scripts/env.sh
PYTEST_ARGS ?=
# pytest-xdist workers for `make test`: two keep this 2-core machine busy while tests wait on
# child processes (ROS nodes, CLI runs); files stay whole on one worker (module fixtures)
TEST_WORKERS ?= 2
XDIST = $(if $(filter-out 0 1,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadfile,)

.PHONY: help setup build test test-jazzy test-fast lint demo bench clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

setup:  ## idempotent: venv, ROS 2 wheels, torch, colcon build (scripts/setup.sh)
	@bash scripts/setup.sh

build: setup  ## alias of setup (the colcon build is part of it)

# The ROS suites again against ROS 2 Jazzy (scripts/setup_jazzy.sh); ROMP_ROS_JAZZY=0 skips it.
JAZZY_TESTS = if [ "$${ROMP_ROS_JAZZY:-1}" = 0 ]; then echo 'ROMP_ROS_JAZZY=0: Jazzy pass skipped'; \
	else source scripts/env_jazzy.sh && pytest -v -m ros $(XDIST) --durations=10 $(PYTEST_ARGS); fi

test: setup  ## the whole suite, as CI runs it (slow suites included), then the ROS suites on Jazzy
	@$(ENV) && pytest -v $(XDIST) --durations=25 $(PYTEST_ARGS)
	@$(JAZZY_TESTS)

test-jazzy: setup  ## only the ROS-marked tests, against the ROS 2 Jazzy wheels
	@$(JAZZY_TESTS)

test-fast: setup  ## the suite without the slow tests
	@$(ENV) && pytest -m 'not slow' $(XDIST) $(PYTEST_ARGS)

lint: setup  ## ruff with the ROS-flavoured flake8 rules
	@$(ENV) && ruff check romp_ros test bench scripts launch

demo: setup  ## run the main job on a bundled input (see README)
	@$(ENV) && python scripts/demo.py

bench: setup  ## speed, side by side with the reference; writes docs/performance.md
	@$(ENV) && PYTHONPATH="$(CURDIR)/test:$$PYTHONPATH" python bench/run_all.py

clean:  ## remove the colcon builds of this checkout (Kilted and Jazzy; the venvs are kept)
	rm -rf build install log
