# Two commands on a fresh Debian machine with Python 3.11:
#   make demo   - install, then run the whole loop on the embedded sandbox CRM
#   make test   - install, start PostgreSQL/Redis/Chromium where missing, run every test
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/salesloop demo

test: install
	bash .ci/services
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/mypy --strict jobs/loops crm_adapters/model.py
	bash ui_extensions/hubspot/check.sh
	. .ci/test-env && $(VENV)/bin/pytest -q

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/mypy --strict jobs/loops crm_adapters/model.py

bench: install
	for b in bench/[!_]*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) var
