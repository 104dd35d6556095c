# ServicePLUS: `make run` starts the whole system with demo data, `make test`
# runs the whole suite. Both install what a fresh machine lacks first.

VENV        := .venv
BIN         := $(VENV)/bin
STAMP       := $(VENV)/.installed
SUDO        := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages: WeasyPrint's Pango and fonts for letters; Graphviz for the
# definition diagrams; Chromium for browser tests; systemd-analyze to check
# the units in deploy/systemd.
RUN_DEBS    := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core graphviz
TEST_DEBS   := $(RUN_DEBS) chromium postgresql systemd

.PHONY: run test lint format bench bench-all install translations debs-run debs-test pg-up clean

run: install debs-run
	SERVICEPLUS_DEMO=1 $(BIN)/serviceplus run

# The whole suite twice: on SQLite (the embedded default), then with the app
# database and the Prefect server on PostgreSQL (127.0.0.1:5432, user postgres).
# The benchmark smoke runs start their own stacks, so once is enough; several
# workers share one server only on PostgreSQL (docs/operations.md).
test: install debs-test pg-up
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest --ignore=tests/test_workers.py
	SERVICEPLUS_TEST_DATABASE=postgresql $(BIN)/pytest --ignore=tests/test_bench.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The figures of docs/performance.md: `make bench` the everyday set,
# `make bench-all` also 100,000 tasks and the knob sweep (PostgreSQL rows).
# Issue 18's goals are judged on one `make bench`: resume latency and the
# clerks' load on both databases, throughput against bare Prefect, the profile.
PG_BENCH := BENCH_POSTGRES=postgres@127.0.0.1:5432
bench: install debs-test pg-up
	$(BIN)/python -m bench.foundation --write docs/performance.md
	$(PG_BENCH) $(BIN)/python -m bench.foundation --write docs/performance.md
	$(BIN)/python -m bench.pages --tasks 10000 --write docs/performance.md
	$(BIN)/python -m bench.throughput --write docs/performance.md
	$(BIN)/python -m bench.profile --write docs/performance.md
	$(BIN)/python -m bench.cli --write docs/performance.md
	$(BIN)/python -m bench.load --write docs/performance.md
	$(PG_BENCH) $(BIN)/python -m bench.load --write docs/performance.md

bench-all: bench
	$(BIN)/python -m bench.pages --tasks 100000 --write docs/performance.md
	$(BIN)/python -m bench.knobs --write docs/performance.md

install: $(STAMP) translations

# The status page's English catalog: .po in git, the compiled .mo built here.
CATALOGS := $(patsubst %.po,%.mo,$(wildcard webui/translations/*/LC_MESSAGES/messages.po))
translations: $(CATALOGS)
webui/translations/%.mo: webui/translations/%.po $(STAMP)
	$(BIN)/pybabel compile --use-fuzzy -i $< -o $@

# Locked: every version comes from constraints.txt (regenerate with
# `.venv/bin/pip freeze --exclude-editable > constraints.txt` after a change).
$(STAMP): pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# Installs only the packages that are missing (apt-get update once, if needed).
define install_debs
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; fi
endef

debs-run:
	$(call install_debs,$(RUN_DEBS))

debs-test:
	$(call install_debs,$(TEST_DEBS))

# Start the local PostgreSQL cluster when it is installed but not running.
pg-up:
	@for version in $$(ls /etc/postgresql 2>/dev/null); do \
	  pg_ctlcluster $$version main status >/dev/null 2>&1 || \
	    $(SUDO) pg_ctlcluster --skip-systemctl-redirect $$version main start; \
	done
	@pg_isready -h 127.0.0.1 -p 5432 -q || (echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
