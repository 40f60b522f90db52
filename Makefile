# spikedet: the two set-up commands of the README.
#   make demo   create .venv, install spikedet, detect objects in a sample image, print detections and energy
#   make test   create .venv, install spikedet with its test and crosscheck extras, run the test suite (what CI runs)

PYTHON ?= python3
VENV ?= .venv
# torch / torchvision versions the project is tested with (override: make TORCH_SPEC="torch torchvision")
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo test install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e ".[test,crosscheck]"
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/spikedet demo

test: $(VENV)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info
