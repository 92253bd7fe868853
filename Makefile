# newsletter — every target installs the project into .venv first when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CONFIG ?= config.toml

.DEFAULT_GOAL := help
.PHONY: help install test lint demo fetch send preview serve bench schedule status clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-9s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required (found %s)" % sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install the project with its dev tools

test: $(STAMP) ## Run the test suite (installs Debian's chromium and postgresql first when missing, as root)
	@sh scripts/ensure-chromium
	@sh scripts/ensure-postgres
	$(BIN)/python -m pytest -q

# All three checks report before the target fails.
lint: $(STAMP) ## Run ruff (check, format) on the code and tests, and mypy
	@rc=0; for check in "ruff check newsletter tests" "ruff format --check newsletter tests" mypy; do \
	  echo "$(BIN)/$$check"; $(BIN)/$$check || rc=1; \
	done; exit $$rc

demo: $(STAMP) ## Offline demo: sample day, demo subscribers, real local SMTP, previews
	$(BIN)/newsletter demo

fetch: $(STAMP) ## Fetch today's papers with config.toml
	$(BIN)/newsletter --config $(CONFIG) fetch

send: $(STAMP) ## Fetch, then send today's digests (what cron runs)
	$(BIN)/newsletter --config $(CONFIG) run

preview: $(STAMP) ## Serve previews of the demo digests on localhost
	$(BIN)/newsletter demo --preview

# Without a config.toml, after `make demo`: the site on the demo, its mail in demo/maildir.
serve: $(STAMP) ## Run the web app (with no config.toml after `make demo`: on the demo)
	@if [ ! -f $(CONFIG) ] && [ -f demo/config.toml ]; then \
	  echo "no $(CONFIG): serving the demo (demo/config.toml); sent mail: /outbox"; \
	  exec $(BIN)/newsletter --config demo/config.toml serve; fi; \
	exec $(BIN)/newsletter --config $(CONFIG) serve

schedule: $(STAMP) ## Run the APScheduler daemon (alternative to cron)
	$(BIN)/newsletter --config $(CONFIG) schedule

status: $(STAMP) ## Show subscribers, fetches, sends and failures
	$(BIN)/newsletter --config $(CONFIG) status

bench: $(STAMP) ## Print ranking, rendering, sending, fetch, LaTeX, public-site, serve and send-worker benchmarks (installs smtp-sink as root)
	@sh scripts/ensure-smtp-sink
	$(BIN)/python -m newsletter.bench

clean: ## Remove .venv, caches and demo output
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache demo *.egg-info
