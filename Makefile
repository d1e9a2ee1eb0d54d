# The two commands a new machine needs:  make chat  (start the chat)  and  make test  (run the tests).
# Both create .venv on first use and reinstall when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: chat test ingest demo browser fonts

chat: $(VENV)/.installed-chat
	$(PY) app.py

ingest: $(VENV)/.installed-chat
	$(VENV)/bin/rag ingest

# The chat and, on port 7861, a demo intranet page that embeds the widget.
demo: $(VENV)/.installed-chat
	$(PY) app.py --demo-port 7861

# torch is pinned first: 2.13.0 is a CPU build; a bare `torch` requirement would pull a CUDA one.
test: $(VENV)/.installed-test browser fonts
	$(PY) -m pytest

# The browser tests drive Debian's chromium through Playwright (never `playwright install`).
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  elif command -v sudo >/dev/null; then sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; \
	  else echo "The browser tests need chromium: apt-get install chromium" >&2; exit 1; fi; }

# The PDF tests write Vietnamese text with Debian's DejaVu font (fpdf2's own fonts are Latin-1 only).
fonts:
	@test -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq fonts-dejavu-core >/dev/null; \
	  elif command -v sudo >/dev/null; then sudo apt-get update -qq && sudo apt-get install -y -qq fonts-dejavu-core >/dev/null; \
	  else echo "The PDF tests need fonts-dejavu-core: apt-get install fonts-dejavu-core" >&2; exit 1; fi; }

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
