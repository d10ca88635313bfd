"""`make demo`: the main job on the embedded defaults, as far as it exists today.

1. Rebuild the IG from profiles_fsh/ with SUSHI (offline) and check it matches the committed igs/.
2. Validate every example instance of igs/ with our in-process validator and with the HL7
   reference validator, and print one line per example with both verdicts.

Exit 0 when the IG is reproducible and every example is valid for both validators, else 1.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from exporter.igbuild import build_ig, diff_trees, read_sushi_config
from exporter.settings import get_settings
from exporter.validation.validator import Validator
from tools.devstack.refvalidator import ReferenceValidator, errors

CONFORMANCE = {"StructureDefinition", "ValueSet", "CodeSystem", "ImplementationGuide", "ConceptMap"}


def main() -> int:
    settings = get_settings()
    config = read_sushi_config(settings)
    committed = settings.igs_dir / config["id"]
    t = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        result = build_ig(settings, Path(tmp))
        drift = diff_trees(committed, result.out_dir)
    print(f"IG {config['id']}#{config['version']}: {len(result.files)} resources built by SUSHI in "
          f"{time.monotonic() - t:.1f} s; {'matches igs/' if not drift else f'DRIFT in {len(drift)} file(s)'}")
    examples = []
    for f in sorted(committed.glob("*.json")):
        if f.name in ("package.json", ".index.json"):
            continue
        res = json.loads(f.read_text(encoding="utf-8"))
        if res.get("resourceType") not in CONFORMANCE:
            examples.append((f.name, res))
    ours = Validator.from_settings(settings)
    t = time.monotonic()
    with ReferenceValidator() as ref:
        print(f"HL7 reference validator ready in {time.monotonic() - t:.1f} s")
        outcomes = ref.validate_many([r for _, r in examples])
    failures = 0
    print(f"{'example':<55} {'ours':>12} {'HL7':>12}")
    for (name, res), outcome in zip(examples, outcomes):
        our_errors = [i for i in ours.validate(res) if i.is_error]
        ref_errors = errors(outcome)
        failures += bool(our_errors or ref_errors)
        print(f"{name:<55} {('valid' if not our_errors else f'{len(our_errors)} errors'):>12} "
              f"{('valid' if not ref_errors else f'{len(ref_errors)} errors'):>12}")
        for i in our_errors[:3]:
            print(f"    ours: {i.format()}")
        for e in ref_errors[:3]:
            print(f"    HL7:  {(e.get('details') or {}).get('text')}")
    print(f"{len(examples) - failures}/{len(examples)} examples valid for both validators")
    return 0 if not drift and not failures else 1


if __name__ == "__main__":
    sys.exit(main())
