# Two commands on a fresh machine: `make run` (execute every notebook, write build/) and `make test`.
# Each target lists the plain commands it runs, for people without make (see README).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test lint lab bench cassettes clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# The profile comes first, so the site that `opusclip run` builds links this run's profile.
run: $(STAMP)
	$(BIN)/python -m opusclip_lib.profile_run --out build/profile.html
	$(BIN)/opusclip run

# --durations lists the slowest tests at the end: where the suite's time goes.
# -n 3: three pytest-xdist workers. The suite mostly waits (sandbox latencies, servers, kernels,
# subprocesses; its CPU time is a third of its wall time or less), so three share two cores well.
# tests/conftest.py says which tests share a worker (the nbval notebooks) and which go first.
test: $(STAMP)
	$(BIN)/python -m pytest -n 3 --durations=25

# .ci/run runs this before the tests: the layer contracts ([tool.importlinter] in pyproject.toml),
# ruff's rule families ([tool.ruff]) and mypy --strict on the core ([tool.mypy]).
lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check opusclip_lib tests scripts
	$(BIN)/mypy

# Jupyter refuses to start as root ("Running as root is not recommended. Use --allow-root to
# bypass."). Containers and cloud notebooks often run everything as root, where the refusal only
# stops the learner, so `make lab` passes --allow-root when it runs as root. LAB_FLAGS adds
# options (the test uses `LAB_FLAGS="--no-browser --port=N"`).
ALLOW_ROOT := $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root)
LAB_FLAGS ?=

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/ $(ALLOW_ROOT) $(LAB_FLAGS)

bench: $(STAMP)
	$(BIN)/opusclip bench db --json build/bench/db.json --plot build/bench/db.png
	$(BIN)/opusclip bench api --json build/bench/api.json --plot build/bench/api.png
	$(BIN)/opusclip bench pipeline --json build/bench/pipeline.json --plot build/bench/pipeline.png
	$(BIN)/opusclip bench observability --json build/bench/observability.json --plot build/bench/observability.png
	$(BIN)/opusclip bench stream --json build/bench/stream.json --plot build/bench/stream.png
	$(BIN)/opusclip bench transcribe --json build/bench/transcribe.json --plot build/bench/transcribe.png
	@if [ -n "$$OPUSCLIP_POSTGRES_URL" ]; then \
	  $(BIN)/opusclip bench scale --json build/bench/scale.json --plot build/bench/scale.png; \
	else echo "bench scale skipped: it needs a server database (set OPUSCLIP_POSTGRES_URL)"; fi

# Re-record every cassette against the local sandbox; OPUSCLIP_RECORD=live records against the real APIs.
cassettes: $(STAMP)
	OPUSCLIP_RECORD=$${OPUSCLIP_RECORD:-sandbox} $(BIN)/python -m opusclip_lib.cassettes record

clean:
	rm -rf build work .pytest_cache
