# Two commands on a fresh machine (Python 3.10+ and make):
#   make demo   release the assignments, grade three example submissions, print the table
#   make test   run the test suite
# Both create (or reuse) the virtual environment .venv from pyproject.toml.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: demo test lab release clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(PY) -m autograder demo

test: $(VENV)/.installed
	$(PY) -m pytest

lab: $(VENV)/.installed
	$(VENV)/bin/jupyter lab assignments/

release: $(VENV)/.installed
	$(PY) -m autograder release

clean:
	rm -rf grading/ .pytest_cache/
