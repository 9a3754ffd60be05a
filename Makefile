# Two entry points for a newcomer: `make demo` and `make test`.
# Both create .venv with the pinned dependencies on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# rarfile's source distribution, for its compressed RAR test archives: no free
# RAR compressor exists to make one (tests/rarkit.py). The version is the pinned one.
RAR_SDIST := $(VENV)/sdist/.fetched

.PHONY: demo test install clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

$(RAR_SDIST): $(STAMP)
	$(BIN)/pip download -q --no-binary :all: --no-deps -d $(VENV)/sdist \
		"rarfile==$$($(BIN)/python -c 'import importlib.metadata as m; print(m.version("rarfile"))')"
	touch $(RAR_SDIST)

install: $(STAMP) $(RAR_SDIST)

demo: $(STAMP)
	$(BIN)/updmirror demo

test: $(STAMP) $(RAR_SDIST)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build src/*.egg-info
