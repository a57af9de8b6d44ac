# make run: set up .venv and start the service on its defaults. make test: set up and run the tests.
PYTHON ?= python3.11
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: run test setup eval clean

setup: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

run: setup
	$(BIN)/pain serve

test: setup
	$(BIN)/pytest -q

# make eval DATASET=../shared/datasets/estensi
eval: setup
	$(BIN)/pain eval $(DATASET) --json eval.json

clean:
	rm -rf $(VENV) *.egg-info
