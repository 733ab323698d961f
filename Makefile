# Local development and CI entry points. `make` alone lists the targets.

PYTHON ?= python3
VENV := .venv
VENV_PYTHON := $(VENV)/bin/python
# pip install runs again only when one of these is newer than the stamp.
INSTALL_INPUTS := $(wildcard requirements*.txt) pyproject.toml
INSTALL_STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv run servers stop-servers test smoke bench clean clean-data

help:
	@echo "Targets:"
	@echo "  make venv          create .venv and install requirements-dev.txt and the project (editable)"
	@echo "  make run           run the whole service locally: NATS, PostgreSQL, Graph sandbox, functions, worker"
	@echo "  make smoke         send one mail through a running 'make run' and check that it arrived"
	@echo "  make test          run the tests (PYTEST_ARGS='-k name' selects some)"
	@echo "  make bench         run the benchmark (scripts/bench.py)"
	@echo "  make servers       start NATS and PostgreSQL in the background unless they run"
	@echo "  make stop-servers  stop the servers that 'make servers' started"
	@echo "  make clean         delete .venv"
	@echo "  make clean-data    delete .local (the servers' data when make run started them, sandbox CA, admin token)"

$(VENV_PYTHON):
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or newer," \
		"or run make with PYTHON=/path/to/python3.11." >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
		echo "error: $(PYTHON) is Python $$($(PYTHON) -c 'import platform; print(platform.python_version())'); \
this project needs 3.11 or newer. Run make with PYTHON=/path/to/python3.11 or newer." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(INSTALL_STAMP): $(VENV_PYTHON) $(INSTALL_INPUTS)
	$(VENV_PYTHON) -m pip install --disable-pip-version-check -r requirements-dev.txt -e .
	@touch $@

venv: $(INSTALL_STAMP)

run: venv
	$(VENV_PYTHON) -m devstack run

servers: venv
	$(VENV_PYTHON) -m devstack servers

stop-servers: venv
	$(VENV_PYTHON) -m devstack servers --stop

# pytest exits 5 when it collected no test; that is a failure here, not a pass.
test: venv
	@$(VENV_PYTHON) -m pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; \
	exit $$status

smoke: venv
	$(VENV_PYTHON) -m devstack smoke

bench: venv
	$(VENV_PYTHON) -m scripts.bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV)

# nats-server leaves its pid file behind after a clean stop, so only a running process (not a zombie
# that init has yet to reap) blocks the delete.
clean-data:
	@for pid_file in .local/nats.pid .local/postgres/postmaster.pid; do \
		pid=$$(head -n 1 $$pid_file 2>/dev/null) || continue; \
		state=$$(ps -o stat= -p "$$pid" 2>/dev/null) || continue; \
		if [ -n "$$state" ] && [ "$${state#Z}" = "$$state" ]; then \
			echo "error: a server still runs from .local (pid $$pid in $$pid_file). Stop it with" \
				"'make stop-servers', or end 'make run', then run 'make clean-data' again." >&2; \
			exit 1; \
		fi; \
	done
	rm -rf .local
