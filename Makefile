# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
SOURCES := pyproject.toml setup.py $(wildcard protos/payswitch/v1/*.proto ext/payswitch/_speedups/*.pyx ext/payswitch/_speedups/*.pxd)

.PHONY: demo test test-compiled test-pure lint lint-protos fuzz bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Editable install: generates src/payswitch/v1 from protos/ and compiles ext/ in place.
$(INSTALLED): $(BIN)/python $(SOURCES)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: $(INSTALLED)
	$(BIN)/payswitch demo

# The whole suite twice: with the compiled hot path (a missing build fails a test) and with the twins.
test: test-compiled test-pure

# Property tests draw the same examples every run here; `make fuzz` draws new ones.
test-compiled: $(INSTALLED)
	PAYSWITCH_HYPOTHESIS=repeatable $(BIN)/python -m pytest -q

test-pure: $(INSTALLED)
	PAYSWITCH_HYPOTHESIS=repeatable PAYSWITCH_NO_EXTENSIONS=1 $(BIN)/python -m pytest -q

# Every linter, each its own target; `lint` runs them all.
lint: lint-protos

# buf from the npm registry, pinned in tools/buf/package-lock.json and installed beside it, never globally.
BUF_DIR := tools/buf
BUF := $(BUF_DIR)/node_modules/.bin/buf

$(BUF): $(BUF_DIR)/package.json $(BUF_DIR)/package-lock.json
	npm ci --prefix $(BUF_DIR) --no-audit --no-fund --loglevel=error
	touch $@

# The contract against buf's STANDARD rules (exceptions named in buf.yaml), then against the latest
# release tag v* for breaking changes; until a release is tagged there is nothing to compare with.
lint-protos: $(BUF)
	$(BUF) lint
	@release=$$(git describe --tags --abbrev=0 --match 'v*' 2>/dev/null || true); \
	if [ -n "$$release" ]; then \
		echo "buf breaking against $$release"; \
		git archive "$$release" | $(BUF) breaking --against '-#format=tar'; \
	else \
		echo "buf breaking: skipped, no release tag v* yet"; \
	fi

fuzz: $(INSTALLED)
	PAYSWITCH_HYPOTHESIS=explore $(BIN)/python -m pytest -q $$(grep -rl '@given' tests)

bench: $(INSTALLED)
	$(BIN)/python -m pytest benchmarks/micro --benchmark-group-by=group -q

clean:
	rm -rf $(VENV) $(BUF_DIR)/node_modules build src/*.egg-info src/payswitch/v1/*_pb2*.py* src/payswitch/_speedups/*.so
