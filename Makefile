# Two entry points, both self-bootstrapping: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
NODE_PREFIX := .node
AZURITE := $(NODE_PREFIX)/node_modules/.bin/azurite-blob

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

# Azurite (the Azure Blob emulator) comes from npm; the tests start and stop it themselves.
$(AZURITE):
	npm install --silent --prefix $(NODE_PREFIX) --no-audit --no-fund --no-save azurite@3 >/dev/null

demo: $(STAMP)
	$(BIN)/python -m tui.demo

lint: $(STAMP)
	$(BIN)/ruff check engine tui tests bench
	$(BIN)/lint-imports

test: $(STAMP) $(AZURITE) lint
	SKYSYNC_AZURITE=$(abspath $(AZURITE)) $(BIN)/python -m pytest -q -p no:cacheprovider -n 4 --dist loadgroup

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) $(NODE_PREFIX) .demo
