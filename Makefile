# Two commands do everything on a fresh machine (Python 3.11+, Node.js 20+, Java 17+ with Maven):
#   make demo   set up, then run the main job on the embedded defaults
#   make test   set up, then run the whole test suite (what .ci/run calls)
# Each set-up step is idempotent and keyed on its pinned input file.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TOOLS  := .tools
# FHIR package for the HL7 reference validator, from npm (see the $(XVER_STAMP) rule)
XVER_ID     := hl7.fhir.xver-extensions
XVER_VER    := 0.1.0
XVER_SHA256 := 83122134f299c16262591a498cada83fad5206177166ee46750afad8e36b251f
XVER_STAMP  := $(TOOLS)/fhir-home/.$(XVER_ID)-$(XVER_VER).stamp
# FHIR's own R4 examples from npm, the corpus of the XML round trip and of the validator differential
# (see the $(EXAMPLES_STAMP) rule)
EXAMPLES_ID     := hl7.fhir.r4.examples
EXAMPLES_VER    := 4.0.1
EXAMPLES_SHA256 := dce87f1b5b9341867033f7d1f544fa1b5232503f6d62813887ac6b8a8b6cb682
EXAMPLES_STAMP  := $(TOOLS)/fhir-examples/.$(EXAMPLES_ID)-$(EXAMPLES_VER).stamp

.PHONY: setup demo test unit lint build-ig clean-tools
.DEFAULT_GOAL := help

help:
	@echo "make demo | make test | make unit | make lint | make setup | make build-ig"

setup: $(VENV)/.stamp node_modules/.stamp $(TOOLS)/java/.stamp $(TOOLS)/keycloak/.stamp $(TOOLS)/fhir-home/.stamp \
       $(XVER_STAMP) $(TOOLS)/fhir-xml/.stamp $(EXAMPLES_STAMP) $(TOOLS)/verapdf/.stamp \
       $(TOOLS)/.debian-packages.stamp

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

# The HL7 reference validator (tools/java) loads hl7.fhir.xver-extensions#0.1.0 unconditionally. npm serves it
# (CC0-1.0, 182,343 bytes); `npm pack` fetches just the tarball (an npm install would fail: its dependency
# hl7.fhir.r4.core has no versions on npm). Checked against a pinned sha256 (XVER_* above), unpacked into the cache.
$(XVER_STAMP):
	rm -rf $(TOOLS)/npm-pack "$(TOOLS)/fhir-home/.fhir/packages/$(XVER_ID)#$(XVER_VER)"
	mkdir -p $(TOOLS)/npm-pack "$(TOOLS)/fhir-home/.fhir/packages/$(XVER_ID)#$(XVER_VER)"
	npm pack --silent --ignore-scripts --pack-destination $(TOOLS)/npm-pack $(XVER_ID)@$(XVER_VER)
	echo "$(XVER_SHA256)  $(TOOLS)/npm-pack/$(XVER_ID)-$(XVER_VER).tgz" | sha256sum -c --quiet -
	tar -xzf $(TOOLS)/npm-pack/$(XVER_ID)-$(XVER_VER).tgz -C "$(TOOLS)/fhir-home/.fhir/packages/$(XVER_ID)#$(XVER_VER)"
	rm -rf $(TOOLS)/npm-pack
	touch $@

# The official R4 XML schema (fhir-single.xsd) and the R4 definitions in XML, from Maven Central
# (ca.uhn.hapi.fhir:hapi-fhir-validation-resources-r4, pinned in the pom): the XML oracles of the tests.
$(TOOLS)/fhir-xml/.stamp: tools/fhir-xml/pom.xml
	rm -rf $(TOOLS)/fhir-xml
	mvn -q -B -f tools/fhir-xml/pom.xml -Dtools.dir=$(abspath $(TOOLS)) process-resources
	touch $@

# hl7.fhir.r4.examples#4.0.1 (CC0-1.0, 18,849,311 bytes, 5,306 resources): `npm pack` fetches just the tarball,
# checked against a pinned sha256 (EXAMPLES_* above) and unpacked; the XML round-trip corpus of the tests and
# the corpus of tools/devstack/examples_differential.py (our validator against the HL7 validator).
$(EXAMPLES_STAMP):
	rm -rf $(TOOLS)/fhir-examples
	mkdir -p $(TOOLS)/fhir-examples
	npm pack --silent --ignore-scripts --pack-destination $(TOOLS)/fhir-examples $(EXAMPLES_ID)@$(EXAMPLES_VER)
	echo "$(EXAMPLES_SHA256)  $(TOOLS)/fhir-examples/$(EXAMPLES_ID)-$(EXAMPLES_VER).tgz" | sha256sum -c --quiet -
	tar -xzf $(TOOLS)/fhir-examples/$(EXAMPLES_ID)-$(EXAMPLES_VER).tgz -C $(TOOLS)/fhir-examples
	rm $(TOOLS)/fhir-examples/$(EXAMPLES_ID)-$(EXAMPLES_VER).tgz
	touch $@

# veraPDF (PDF/A validator, Maven Central) judges every PDF the tests write (tools/devstack/verapdf.py)
$(TOOLS)/verapdf/.stamp: tools/verapdf/pom.xml
	mvn -q -B -f tools/verapdf/pom.xml -Dtools.dir=$(abspath $(TOOLS)) process-resources
	touch $@

# Debian packages of the human-readable export: Pango (WeasyPrint's text layout, >= 1.44), HarfBuzz's font
# subsetter (without it WeasyPrint subsets fonts in Python, ~3x slower PDFs), the DejaVu fonts the PDF
# embeds, and poppler-utils (pdftotext/pdfinfo/pdfdetach: tests and benchmarks read the PDFs back).
DEBIAN_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core poppler-utils
$(TOOLS)/.debian-packages.stamp:
	dpkg -s $(DEBIAN_PACKAGES) >/dev/null 2>&1 || (apt-get update -q && apt-get install -y -q $(DEBIAN_PACKAGES))
	mkdir -p $(TOOLS) && echo "$(DEBIAN_PACKAGES)" > $@

build-ig: setup
	$(BIN)/fhir-export build-ig

# the main job: IG reproducible + examples judged by both validators + sample exports, then the service:
# Keycloak with the bundled realm, a patient export after a PKCE login, a backend export -> out/demo/
demo: setup
	$(BIN)/python -m tools.demo
	$(BIN)/python tools/demo_service.py

test: setup
	$(BIN)/python -m pytest

# the fast loop: the unit tests (ruff and mypy included) — no JVM, no Keycloak, no SUSHI run; they need the
# Python environment, the FHIR package cache and the XML schema and examples the XML tests read
unit: $(VENV)/.stamp $(TOOLS)/fhir-home/.stamp $(TOOLS)/fhir-xml/.stamp $(EXAMPLES_STAMP)
	$(BIN)/python -m pytest tests/unit -q

# ruff and mypy alone (configured in pyproject.toml; tests/unit/test_tooling.py runs the same in `make test`)
lint: $(VENV)/.stamp
	$(BIN)/python -m ruff check .
	$(BIN)/python -m mypy

clean-tools:
	rm -rf $(VENV) node_modules $(TOOLS) tools/java/target
