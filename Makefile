# driftloop: `make demo` runs the loop on embedded defaults; `make test` runs every test tier.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
DL     := $(BIN)/driftloop
DEMO_HOME ?= var/demo
DEMO_PORT ?= 8765

.PHONY: install demo test test-unit test-integration lint lock clean

install: $(VENV)/.installed

# The lock (requirements.txt) is installed exactly; the project itself goes in editable.
$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip sync --python $(BIN)/python requirements.txt
	$(BIN)/uv pip install --python $(BIN)/python --no-deps -e .
	touch $@

# Re-resolve the lock from requirements.in (only when changing dependencies).
lock: install
	$(BIN)/uv pip compile requirements.in --python-version 3.11 -o requirements.txt

demo: install
	rm -rf $(DEMO_HOME)
	DRIFTLOOP_STORAGE__HOME=$(DEMO_HOME) $(DL) db upgrade
	DRIFTLOOP_STORAGE__HOME=$(DEMO_HOME) $(DL) stream reference
	DRIFTLOOP_STORAGE__HOME=$(DEMO_HOME) $(DL) stream replay --scenario gradual \
		--inject-fault text-in-numeric --inject-fault wrong-separator
	DRIFTLOOP_STORAGE__HOME=$(DEMO_HOME) $(DL) batches ingest
	DRIFTLOOP_STORAGE__HOME=$(DEMO_HOME) $(DL) batches list --status quarantined
	DRIFTLOOP_STORAGE__HOME=$(DEMO_HOME) $(DL) bootstrap
	DRIFTLOOP_STORAGE__HOME=$(DEMO_HOME) $(DL) drift check --all
	DRIFTLOOP_STORAGE__HOME=$(DEMO_HOME) $(DL) retrain --latest-drift
	DRIFTLOOP_STORAGE__HOME=$(DEMO_HOME) $(DL) models
	@echo "== serving: gunicorn on 127.0.0.1:$(DEMO_PORT), 300 requests from 50 sticky clients"
	DRIFTLOOP_STORAGE__HOME=$(DEMO_HOME) DRIFTLOOP_BIND=127.0.0.1:$(DEMO_PORT) bash -c '\
		$(BIN)/gunicorn -c serving/gunicorn.conf.py "serving.app:create_app()" \
			>$(DEMO_HOME)/gunicorn.log 2>&1 & server=$$!; \
		trap "kill $$server; wait $$server" EXIT; \
		$(DL) simulate --url http://127.0.0.1:$(DEMO_PORT) --requests 300 --feedback'

test: install lint
	$(BIN)/python -m pytest -m "integration or not integration"

test-unit: install
	$(BIN)/python -m pytest -m "not integration"

test-integration: install
	$(BIN)/python -m pytest -m integration

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf var .pytest_cache .ruff_cache
