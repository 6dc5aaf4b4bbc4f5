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

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) -e '.[dev]'
	touch $@

install: $(BIN)/.installed

demo: install  ## train on tiny-shakespeare for two minutes, then generate and evaluate
	rm -rf runs/demo
	$(BIN)/lstm-text train tinyshakespeare --out runs/demo --time-budget 120 --seed 0
	$(BIN)/lstm-text generate runs/demo "ROMEO:" --max-tokens 300 --temperature 0.8 --seed 1
	$(BIN)/python -c "import lstm_text.data as d; t = d.read_corpus(['tinyshakespeare']); open('runs/val.txt', 'w').write(d.split_text(t, 0.1)[1])"
	$(BIN)/lstm-text evaluate runs/demo runs/val.txt

test: install  ## the fast suite (CI); slow tests: make test-all
	$(BIN)/pytest -q -m "not slow"

test-all: install
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check lstm_text tests benchmarks

bench: install  ## speed figures for the README (not a test)
	$(BIN)/python benchmarks/speed.py

checks: install  ## the public checks in ../shared/checks
	../shared/checks/contract && ../shared/checks/generation && ../shared/checks/bpc-300s

# The built-in classifiers, made by the project's own commands from the SST data (README: figures, time).
SST2 = $(LSTM_TEXT_DATA)/sst2
SST5 = $(LSTM_TEXT_DATA)/sst5
pretrained: install
	rm -rf runs/sentiment runs/sentiment3
	$(BIN)/lstm-text train-classifier $(SST2)/train_phrases.tsv --dev $(SST2)/dev.tsv --out runs/sentiment \
		--seed 0 --epochs 8 --batch-size 32 --vocab-size 16000
	$(BIN)/lstm-text train-classifier $(SST5)/train.tsv --dev $(SST5)/dev.tsv --out runs/sentiment3 \
		--label-map "very negative=negative,very positive=positive" --seed 0 --epochs 20 --balance
	mkdir -p lstm_text/pretrained/sentiment lstm_text/pretrained/sentiment3
	cp runs/sentiment/model.safetensors lstm_text/pretrained/sentiment/model.safetensors
	cp runs/sentiment3/model.safetensors lstm_text/pretrained/sentiment3/model.safetensors
	$(BIN)/lstm-text evaluate sentiment $(SST2)/dev.tsv
	$(BIN)/lstm-text evaluate sentiment3 $(SST5)/dev.tsv

clean:
	rm -rf $(VENV) runs build *.egg-info .pytest_cache .hypothesis
