# Two commands do everything on a fresh machine (Python 3.11+, Node.js 20+, Java 17+ with Maven):
#   make demo   set up, then run the main job on the embedded defaults
#   make test   set up, then run the whole test suite (what .ci/run calls)
# Each set-up step is idempotent and keyed on its pinned input file.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TOOLS  := .tools

.PHONY: setup demo test build-ig clean-tools
.DEFAULT_GOAL := help

help:
	@echo "make demo | make test | make setup | make build-ig"

setup: $(VENV)/.stamp node_modules/.stamp $(TOOLS)/java/.stamp $(TOOLS)/keycloak/.stamp $(TOOLS)/fhir-home/.stamp

$(VENV)/.stamp: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -r requirements.lock
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	touch $@

node_modules/.stamp: package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts
	touch $@

$(TOOLS)/java/.stamp: tools/java/pom.xml $(wildcard tools/java/src/main/java/*/*/*/*.java)
	mvn -q -B -f tools/java/pom.xml -Dtools.dir=$(abspath $(TOOLS)) package
	touch $@

$(TOOLS)/keycloak/.stamp: tools/keycloak/pom.xml
	rm -rf $(TOOLS)/keycloak
	mvn -q -B -f tools/keycloak/pom.xml -Dtools.dir=$(abspath $(TOOLS)) process-resources
	touch $@

$(TOOLS)/fhir-home/.stamp: $(VENV)/.stamp
	$(BIN)/fhir-export fetch-core
	touch $@

build-ig: setup
	$(BIN)/fhir-export build-ig

demo: setup
	$(BIN)/python -m tools.demo

test: setup
	$(BIN)/python -m pytest

clean-tools:
	rm -rf $(VENV) node_modules $(TOOLS) tools/java/target
