# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install -q -c constraints.txt
# The project's machines keep the datasets beside the checkout; elsewhere they are downloaded once.
SHARED_DATA := $(wildcard $(CURDIR)/../shared/data)
ifneq ($(SHARED_DATA),)
export LSTM_TEXT_DATA ?= $(abspath $(SHARED_DATA))
endif

.PHONY: install demo test test-all lint bench checks pretrained clean

$(BIN)/.installed: pyproject.toml setup.py lstm_text/infer/_cell.c constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) -e '.[dev,serve,export]'
	touch $@

install: $(BIN)/.installed

demo: install  ## train on tiny-shakespeare for two minutes, then generate and evaluate
	rm -rf runs/demo
	$(BIN)/lstm-text train tinyshakespeare --out runs/demo --time-budget 120 --seed 0
	$(BIN)/lstm-text generate runs/demo "ROMEO:" --max-tokens 300 --temperature 0.8 --seed 1
	$(BIN)/lstm-text evaluate runs/demo

test: install  ## the fast suite (CI); slow tests: make test-all
	$(BIN)/pytest -q -m "not slow"

test-all: install
	$(BIN)/pytest -q

lint: install  ## ruff, then mypy on the package (pinned in the dev extra; settings in pyproject.toml)
	$(BIN)/ruff check lstm_text tests benchmarks setup.py
	$(BIN)/mypy lstm_text

bench: install  ## speed figures for benchmarks/README.md (not a test)
	$(BIN)/python benchmarks/speed.py

checks: install  ## the public checks in ../shared/checks
	../shared/checks/contract && ../shared/checks/generation && ../shared/checks/bpc-300s

# The built-in classifiers, made by the project's own commands from ../shared/data (benchmarks/README.md: figures, time).
# Dev sets are benchmarks/splits.py's cuts (published dev files, else a crc32 hash of the text), never trained on.
SPLITS = runs/splits
GLOVE = $(LSTM_TEXT_DATA)/glove/glove.6B.100d.100k.txt
CLF = --vectors $(GLOVE) --tune-vectors 20000 --hidden 64 --dropout 0.3 --embed-dropout 0.1 --batch-size 32 --seed 0
pretrained: install
	rm -rf runs/sentiment runs/sentiment3 runs/langid $(SPLITS)
	PYTHONPATH=benchmarks $(BIN)/python -c "from splits import write_splits; write_splits('$(SPLITS)')"
	$(BIN)/lstm-text train-classifier $(SPLITS)/train/sst2-phrases.tsv $(SPLITS)/train/imdb.tsv \
		$(SPLITS)/train/pros_cons.tsv --dev $(SPLITS)/dev/sst2.tsv --dev $(SPLITS)/dev/imdb.tsv \
		--dev $(SPLITS)/dev/pros_cons.tsv $(CLF) --vocab-size 6000 --epochs 4 --out runs/sentiment
	$(BIN)/lstm-text train-classifier $(SPLITS)/train/sst5-3.tsv $(SPLITS)/train/sst5-3.tsv \
		$(SPLITS)/train/objective.tsv $(SPLITS)/train/objective.tsv $(SPLITS)/train/objective.tsv \
		$(SPLITS)/train/tweets.tsv $(SPLITS)/train/reddit.tsv --dev $(SPLITS)/dev/sst5-3.tsv \
		--dev $(SPLITS)/dev/objective.tsv --dev $(SPLITS)/dev/tweets.tsv --dev $(SPLITS)/dev/reddit.tsv \
		--init runs/sentiment --balance --dropout 0.5 --batch-size 64 --epochs 4 --seed 0 --out runs/sentiment3
	mkdir -p lstm_text/pretrained/sentiment lstm_text/pretrained/sentiment3 lstm_text/pretrained/langid
	PYTHONPATH=benchmarks $(BIN)/python benchmarks/langid_data.py --out runs/langid --seed 0
	$(BIN)/python benchmarks/langid_fit.py runs/langid --seed 0 --out lstm_text/pretrained/langid/langid.safetensors
	PYTHONPATH=benchmarks $(BIN)/python benchmarks/multilingual_fit.py \
		--out lstm_text/pretrained/multilingual/multilingual.safetensors
	cp runs/sentiment/model.safetensors lstm_text/pretrained/sentiment/model.safetensors
	cp runs/sentiment3/model.safetensors lstm_text/pretrained/sentiment3/model.safetensors
	$(BIN)/python -c "from lstm_text.card import write_card; write_card('sentiment'); write_card('sentiment3')"
	for s in sst2 imdb pros_cons; do $(BIN)/lstm-text evaluate sentiment $(SPLITS)/dev/$$s.tsv; done
	for s in sst5-3 objective tweets reddit; do $(BIN)/lstm-text evaluate sentiment3 $(SPLITS)/dev/$$s.tsv; done

clean:
	rm -rf $(VENV) runs build *.egg-info .pytest_cache .hypothesis
