# The two commands: `make run` (local stack) and `make test` (every test). Both create the
# virtual environment in .venv on first use and refresh it when the requirements change.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# checkov gets its own environment: it pins boto3 and packaging versions the tests cannot use.
CHECKOV_VENV := .venv-checkov
CHECKOV_INSTALLED := $(CHECKOV_VENV)/.installed

.PHONY: run test unit bench package-terraform checkov clean

STAGE ?= dev

$(INSTALLED): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

$(CHECKOV_INSTALLED): requirements-checkov.txt
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	@touch $@

run: $(INSTALLED)  ## Start the whole stack locally in the foreground; Ctrl-C stops it.
	$(BIN)/python -m scripts.local_stack

test: $(INSTALLED) $(CHECKOV_INSTALLED)  ## Run unit, integration, property, end-to-end and checkov tests.
	$(BIN)/python -m pytest

unit: $(INSTALLED)  ## Only the fast in-process tests.
	$(BIN)/python -m pytest -m "not e2e"

bench: $(INSTALLED)  ## Print cold-start and request latency figures.
	$(BIN)/python -m scripts.bench

package-terraform: $(INSTALLED)  ## Package the STAGE (default dev) for Terraform into build/terraform-$(STAGE).
	$(BIN)/python -m scripts.package_terraform --stage $(STAGE)

checkov: $(INSTALLED) $(CHECKOV_INSTALLED)  ## Package STAGE for Terraform and check it with checkov.
	$(BIN)/python -m scripts.package_terraform --stage $(STAGE) --checkov

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) build .local .pytest_cache .hypothesis
