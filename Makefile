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
# The Node tools, locked in package.json and package-lock.json: the Terraform providers' schemas
# (CDKTF packages) for tests/integration/test_terraform_schema.py, and Redocly CLI, which lints
# the OpenAPI document (tests/unit/test_openapi_lint.py) and renders it (`make docs`).
NODE_DIR := node_modules
NODE_INSTALLED := $(NODE_DIR)/.installed
# Redocly CLI reports each command's use to its maker and looks for its own updates unless told not to.
REDOCLY := REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true $(NODE_DIR)/.bin/redocly

.PHONY: help run test unit lint lock bench capacity cost bootstrap deploy migrate smoke package-terraform checkov docs clean
# `make` alone lists the targets rather than doing anything.
.DEFAULT_GOAL := help

STAGE ?= dev

# Installs print a line per package, so that a first run's minutes are never silent. They install
# the lock files, every file checked against its hashes; pip itself comes from the lock too (chalice
# caps it below 26.3), so there is no separate pip upgrade to undo that cap.
$(INSTALLED): requirements.txt requirements-dev.txt
	@echo "==> $(VENV): the application and its test tools (a few minutes the first time)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --progress-bar off --disable-pip-version-check --require-hashes -r requirements-dev.txt
	@touch $@

$(CHECKOV_INSTALLED): requirements-checkov.txt
	@echo "==> $(CHECKOV_VENV): checkov, for the Terraform package's checks"
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --progress-bar off --disable-pip-version-check --require-hashes -r requirements-checkov.txt
	@touch $@

$(LOCALSTACK_INSTALLED): requirements-localstack.txt
	@echo "==> $(LOCALSTACK_VENV): LocalStack's API Gateway, for the chalice deploy test"
	@python=$$($(PYTHON) -m scripts.local.localstack_python); \
	if [ -z "$$python" ]; then echo "no Python 3.13+ found: the chalice deploy test will be skipped"; exit 0; fi; \
	{ test -x $(LOCALSTACK_VENV)/bin/python || $$python -m venv $(LOCALSTACK_VENV); } && \
	$(LOCALSTACK_VENV)/bin/python -m pip install --progress-bar off --disable-pip-version-check -r requirements-localstack.txt && \
	touch $@

# npm ci installs exactly package-lock.json (and .npmrc keeps package scripts from running).
$(NODE_INSTALLED): package.json package-lock.json .npmrc
	@echo "==> $(NODE_DIR): the Terraform providers' schemas and Redocly CLI (npm ci)"
	npm ci
	@touch $@

help:  ## List the targets and what each does.
	@awk 'BEGIN { FS = ":[^#]*## " } /^[a-z][a-z-]*:[^#]*## / { printf "  %-18s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

run: $(INSTALLED)  ## Start the whole stack locally in the foreground; Ctrl-C stops it.
	$(BIN)/python -m scripts.local.stack

test: $(INSTALLED) $(CHECKOV_INSTALLED) $(LOCALSTACK_INSTALLED) $(NODE_INSTALLED)  ## Run unit, integration, property, end-to-end and checkov tests.
	$(BIN)/python -m pytest

unit: $(INSTALLED) $(NODE_INSTALLED)  ## Only the fast in-process tests.
	$(BIN)/python -m pytest -m "not e2e"

# The same checks run as tests in make test (tests/unit/test_project_checks.py); this is the quick way to run them.
lint: $(INSTALLED)  ## ruff check, ruff format --check and mypy (strict on chalicelib), as CI runs them.
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .
	$(BIN)/python -m mypy

# pip-compile resolves each requirements*.in into its lock, requirements*.txt: every package pinned
# with the hashes of all its files (the aarch64 wheels Chalice packages too), no index or host named.
# A lock's existing pins are kept unless UPGRADE=1 (every package to the newest its ranges allow) or
# UPGRADE_PACKAGE="boto3 botocore" (those only). requirements.txt goes first: requirements-dev.in is
# constrained by it, and extras are stripped because pip refuses them in a constraints file.
# requirements-localstack.txt stays exact pins by hand: it is for Python 3.13+, which .venv is not.
LOCK := CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe \
	--strip-extras --no-emit-index-url --no-emit-trusted-host --no-emit-find-links \
	$(if $(filter-out 0,$(UPGRADE)),--upgrade) $(foreach package,$(UPGRADE_PACKAGE),--upgrade-package $(package))

lock: $(INSTALLED)  ## Rewrite the locks requirements*.txt from requirements*.in, pins kept unless UPGRADE=1.
	$(LOCK) --output-file requirements.txt requirements.in
	$(LOCK) --output-file requirements-dev.txt requirements-dev.in
	$(LOCK) --output-file requirements-checkov.txt requirements-checkov.in

bench: $(INSTALLED)  ## Print cold-start figures, and warm requests against a bare Chalice app.
	$(BIN)/python -m scripts.measure.bench

capacity: $(INSTALLED)  ## Print DynamoDB units per route and the busiest partition keys at each tier's rate.
	$(BIN)/python -m scripts.measure.capacity

# Measures in-process (about a minute), then rewrites cost/measured.json and README's cost block from it.
cost: $(INSTALLED)  ## Print dollars per million requests by line, per tenant and per stage; update the snapshot and README.
	$(BIN)/python -m scripts.measure.cost --write

# Deploying to AWS with Chalice (README "Deploy to AWS", path A); STAGE defaults to dev.
bootstrap: $(INSTALLED)  ## Create the STAGE's table, user pool, secret and usage plans before its first deploy.
	$(BIN)/python -m scripts.deploy.bootstrap --stage $(STAGE)

# chalice deploy re-imports the API with the HEADER key source and no gateway responses, so protected
# routes answer 403 until post-deploy has run: both run here back to back. ALARM_EMAIL=addr subscribes it.
# PIP_CONSTRAINT: Chalice fetches the functions' aarch64 wheels by name==version, outside requirements.txt;
# with the lock as pip's constraints file they are checked against its hashes too.
deploy: $(INSTALLED)  ## chalice deploy STAGE, then post-deploy at once.
	PIP_CONSTRAINT=$(CURDIR)/requirements.txt $(BIN)/chalice deploy --stage $(STAGE)
	$(BIN)/python -m scripts.deploy.post_deploy --stage $(STAGE) $(if $(ALARM_EMAIL),--alarm-email $(ALARM_EMAIL))

# Moves a stage's items from the layout before per-product partitions; safe to rerun (DRY_RUN=1 only counts).
migrate: $(INSTALLED)  ## Move the STAGE's products, orders and idempotency records to the current layout.
	$(BIN)/python -m scripts.deploy.migrate_layout --stage $(STAGE) $(if $(DRY_RUN),--dry-run)

smoke: $(INSTALLED)  ## Walk the deployed STAGE's flow (TENANT, OTHER_TENANT, BASIC_TENANT default to the demo ones).
	$(BIN)/python -m scripts.deploy.smoke --stage $(STAGE) $(if $(TENANT),--tenant $(TENANT)) \
		$(if $(OTHER_TENANT),--other-tenant $(OTHER_TENANT)) $(if $(BASIC_TENANT),--basic-tenant $(BASIC_TENANT))

package-terraform: $(INSTALLED)  ## Package the STAGE (default dev) for Terraform into build/terraform-$(STAGE).
	$(BIN)/python -m scripts.deploy.terraform.package --stage $(STAGE)

checkov: $(INSTALLED) $(CHECKOV_INSTALLED)  ## Package STAGE for Terraform and check it with checkov.
	$(BIN)/python -m scripts.deploy.terraform.package --stage $(STAGE) --checkov

# The document as the stage's API serves it: the running local stack's unless STAGE is given (STAGE's
# default, dev, is the deploy targets'). The page inlines Redoc's scripts, so it opens offline.
docs: $(INSTALLED) $(NODE_INSTALLED)  ## Render the API reference of the running local stack (or STAGE) to build/docs/api.html.
	$(BIN)/python -m scripts.docs.openapi_document --stage $(if $(filter file,$(origin STAGE)),local,$(STAGE)) \
		--out build/docs/openapi.json
	$(REDOCLY) build-docs build/docs/openapi.json --output build/docs/api.html --inlineBundle

clean:  ## Remove the virtual environments, installed schemas, packages and the local stack's files.
	rm -rf $(VENV) $(CHECKOV_VENV) $(LOCALSTACK_VENV) $(NODE_DIR) build .local .pytest_cache .hypothesis
