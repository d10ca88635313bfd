"""pytest plugin: one HL7 FHIR reference validator JVM per test session, loaded with every IG under igs/.

Enable it with `"tests.support.refvalidator"` in `pytest_plugins` (tests/conftest.py). The fixture fails
(never skips) when the validator is not built or the FHIR package cache is incomplete: `make setup` does both.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tools.devstack.refvalidator import ReferenceValidator, RefValidatorError, missing_prerequisites


@pytest.fixture(scope="session")
def refvalidator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReferenceValidator]:
    """A started ReferenceValidator (hl7.fhir.r4.core#4.0.1 + every package folder in igs/, offline).

    Its stderr log is kept in the session's pytest temp folder (`refvalidator0/refvalidator.log`).
    """
    problems = missing_prerequisites()
    if problems:
        pytest.fail("the HL7 reference validator cannot run: " + "; ".join(problems)
                    + "; run `make setup` first", pytrace=False)
    validator = ReferenceValidator(log_file=tmp_path_factory.mktemp("refvalidator") / "refvalidator.log")
    try:
        validator.start()
    except RefValidatorError as e:
        pytest.fail(f"the HL7 reference validator did not start: {e}", pytrace=False)
    try:
        yield validator
    finally:
        validator.close()
