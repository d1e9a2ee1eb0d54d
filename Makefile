# The two commands a new machine needs:  make chat  (start the chat)  and  make test  (run the tests).
# Both create .venv on first use and reinstall when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: chat test ingest

chat: $(VENV)/.installed-chat
	$(PY) app.py

ingest: $(VENV)/.installed-chat
	$(VENV)/bin/rag ingest

# torch is pinned first: 2.13.0 is a CPU build; a bare `torch` requirement would pull a CUDA one.
test: $(VENV)/.installed-test
	$(PY) -m pytest

$(VENV)/.installed-chat: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0 -e '.[test]'
	touch $@ $(VENV)/.installed-chat
