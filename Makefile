# driftloop: `make demo` runs the loop on embedded defaults; `make test` runs every test tier.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
DL     := $(BIN)/driftloop

.PHONY: install demo test test-unit test-integration lint lock clean bench-smoke

install: $(VENV)/.installed

# The lock (requirements.txt) is installed exactly; the project itself goes in editable.
# Bytecode is compiled at install, as a deployed image has it: without it every fresh process
# (each DAG parse, each task) compiles Airflow's and pydantic's sources again, which takes a
# DAG file's parse from about 0.2 s to 0.6 s where PYTHONDONTWRITEBYTECODE is set.
$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip sync --compile-bytecode --python $(BIN)/python requirements.txt
	$(BIN)/uv pip install --python $(BIN)/python --no-deps -e .
	touch $@

# Re-resolve the lock from requirements.in (only when changing dependencies).
lock: install
	$(BIN)/uv pip compile requirements.in --python-version 3.11 -o requirements.txt

# The whole loop on embedded defaults (SQLite, local files): see driftloop.demo.yaml.
demo: install
	$(DL) --config driftloop.demo.yaml demo

# Two pytest-xdist workers, each file whole on one of them (module fixtures start once), the
# slowest files first (tests/conftest.py): the suite waits on servers and subprocesses for about
# a third of its time, which the second worker fills. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2

test: install lint
	$(BIN)/python -m pytest -m "integration or not integration" -n $(TEST_WORKERS) \
	  --dist loadfile --no-loadscope-reorder --durations=40

test-unit: install
	$(BIN)/python -m pytest -m "not integration"

test-integration: install
	$(BIN)/python -m pytest -m integration

# Every benchmark at its --smoke size, one after the other (CI runs it after the wheel check).
bench-smoke: install
	ci/benchmarks_smoke.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf var .pytest_cache .ruff_cache
