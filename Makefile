# The two commands: `make run` (local stack) and `make test` (every test). Both create the
# virtual environment in .venv on first use and refresh it when the requirements change.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# checkov gets its own environment: it pins boto3 and packaging versions the tests cannot use.
CHECKOV_VENV := .venv-checkov
CHECKOV_INSTALLED := $(CHECKOV_VENV)/.installed
# LocalStack emulates API Gateway for tests/e2e/test_chalice_deploy.py. It runs on Python 3.13 or newer
# only, in its own environment with its own pins; without such a Python that test is skipped.
LOCALSTACK_VENV := .venv-localstack
LOCALSTACK_INSTALLED := $(LOCALSTACK_VENV)/.installed
# The Terraform providers' schemas, as the CDKTF npm packages carry them, for tests/integration/test_terraform_schema.py.
NODE_DIR := .node
NODE_PACKAGES := @cdktf/provider-aws@19.65.1 @cdktf/provider-random@11.1.1 @cdktf/provider-null@10.0.2
NODE_INSTALLED := $(NODE_DIR)/.installed

.PHONY: help run test unit bench capacity cost bootstrap deploy migrate smoke package-terraform checkov clean
# `make` alone lists the targets rather than doing anything.
.DEFAULT_GOAL := help

STAGE ?= dev

# Installs print a line per package, so that a first run's minutes are never silent.
$(INSTALLED): requirements.txt requirements-dev.txt
	@echo "==> $(VENV): the application and its test tools (a few minutes the first time)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --progress-bar off --disable-pip-version-check -r requirements-dev.txt
	@touch $@

$(CHECKOV_INSTALLED): requirements-checkov.txt
	@echo "==> $(CHECKOV_VENV): checkov, for the Terraform package's checks"
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --progress-bar off --disable-pip-version-check -r requirements-checkov.txt
	@touch $@

$(LOCALSTACK_INSTALLED): requirements-localstack.txt
	@echo "==> $(LOCALSTACK_VENV): LocalStack's API Gateway, for the chalice deploy test"
	@python=$$($(PYTHON) -m scripts.localstack_python); \
	if [ -z "$$python" ]; then echo "no Python 3.13+ found: the chalice deploy test will be skipped"; exit 0; fi; \
	{ test -x $(LOCALSTACK_VENV)/bin/python || $$python -m venv $(LOCALSTACK_VENV); } && \
	$(LOCALSTACK_VENV)/bin/python -m pip install --progress-bar off --disable-pip-version-check -r requirements-localstack.txt && \
	touch $@

$(NODE_INSTALLED): Makefile
	@echo "==> $(NODE_DIR): the Terraform providers' schemas (npm)"
	npm install --prefix $(NODE_DIR) --no-save --ignore-scripts --no-audit --no-fund $(NODE_PACKAGES)
	@touch $@

help:  ## List the targets and what each does.
	@awk 'BEGIN { FS = ":[^#]*## " } /^[a-z][a-z-]*:[^#]*## / { printf "  %-18s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

run: $(INSTALLED)  ## Start the whole stack locally in the foreground; Ctrl-C stops it.
	$(BIN)/python -m scripts.local_stack

test: $(INSTALLED) $(CHECKOV_INSTALLED) $(LOCALSTACK_INSTALLED) $(NODE_INSTALLED)  ## Run unit, integration, property, end-to-end and checkov tests.
	$(BIN)/python -m pytest

unit: $(INSTALLED) $(NODE_INSTALLED)  ## Only the fast in-process tests.
	$(BIN)/python -m pytest -m "not e2e"

bench: $(INSTALLED)  ## Print cold-start figures, and warm requests against a bare Chalice app.
	$(BIN)/python -m scripts.bench

capacity: $(INSTALLED)  ## Print DynamoDB units per route and the busiest partition keys at each tier's rate.
	$(BIN)/python -m scripts.capacity

# Measures in-process (about a minute), then rewrites cost/measured.json and README's cost block from it.
cost: $(INSTALLED)  ## Print dollars per million requests by line, per tenant and per stage; update the snapshot and README.
	$(BIN)/python -m scripts.cost --write

# Deploying to AWS with Chalice (README "Deploy to AWS", path A); STAGE defaults to dev.
bootstrap: $(INSTALLED)  ## Create the STAGE's table, user pool, secret and usage plans before its first deploy.
	$(BIN)/python -m scripts.bootstrap --stage $(STAGE)

# chalice deploy re-imports the API with the HEADER key source and no gateway responses, so protected
# routes answer 403 until post-deploy has run: both run here back to back. ALARM_EMAIL=addr subscribes it.
deploy: $(INSTALLED)  ## chalice deploy STAGE, then post-deploy at once.
	$(BIN)/chalice deploy --stage $(STAGE)
	$(BIN)/python -m scripts.post_deploy --stage $(STAGE) $(if $(ALARM_EMAIL),--alarm-email $(ALARM_EMAIL))

# Moves a stage's items from the layout before per-product partitions; safe to rerun (DRY_RUN=1 only counts).
migrate: $(INSTALLED)  ## Move the STAGE's products, orders and idempotency records to the current layout.
	$(BIN)/python -m scripts.migrate_layout --stage $(STAGE) $(if $(DRY_RUN),--dry-run)

smoke: $(INSTALLED)  ## Walk the deployed STAGE's flow (TENANT, OTHER_TENANT, BASIC_TENANT default to the demo ones).
	$(BIN)/python -m scripts.smoke --stage $(STAGE) $(if $(TENANT),--tenant $(TENANT)) \
		$(if $(OTHER_TENANT),--other-tenant $(OTHER_TENANT)) $(if $(BASIC_TENANT),--basic-tenant $(BASIC_TENANT))

package-terraform: $(INSTALLED)  ## Package the STAGE (default dev) for Terraform into build/terraform-$(STAGE).
	$(BIN)/python -m scripts.package_terraform --stage $(STAGE)

checkov: $(INSTALLED) $(CHECKOV_INSTALLED)  ## Package STAGE for Terraform and check it with checkov.
	$(BIN)/python -m scripts.package_terraform --stage $(STAGE) --checkov

clean:  ## Remove the virtual environments, installed schemas, packages and the local stack's files.
	rm -rf $(VENV) $(CHECKOV_VENV) $(LOCALSTACK_VENV) $(NODE_DIR) build .local .pytest_cache .hypothesis
