"""`make demo`: the main job on the embedded defaults.

1. Rebuild the IG from profiles_fsh/ with SUSHI (offline) and check it matches the committed igs/.
2. Validate every example instance of igs/ with our in-process validator and with the HL7
   reference validator, and print one line per example with both verdicts.
3. Export the three sample patients (samples/patients/) with the mappings in mappings/ into
   out/demo/<name>.bundle.json, and judge the minimal and typical exports with the HL7 validator too
   (the large one takes minutes there; its verdict is in the test notes).
4. Render the typical export as a person reads it: out/demo/typical.pdf (PDF/A-3b, judged by
   veraPDF) and out/demo/typical.html.

Exit 0 when everything above succeeded, else 1.
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
        failures = _report(examples, outcomes, ours)
        export_failures = _exports(settings, ref)
    return 0 if not drift and not failures and not export_failures else 1


def _report(examples, outcomes, ours) -> int:
    failures = 0
    print(f"{'example':<55} {'ours':>12} {'HL7':>12}")
    for (name, res), outcome in zip(examples, outcomes, strict=True):
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
    return failures


def _exports(settings, ref: ReferenceValidator) -> int:
    from exporter.pipeline import Exporter

    exporter = Exporter.from_settings(settings)
    out = settings.root / "out" / "demo"
    out.mkdir(parents=True, exist_ok=True)
    failures = 0
    for name in ("minimal", "typical", "large"):
        doc = json.loads((settings.root / "samples" / "patients" / f"{name}.json").read_text(encoding="utf-8"))
        t = time.monotonic()
        result = exporter.export(doc, export_time="2026-04-06T10:00:00+02:00")
        took = time.monotonic() - t
        if not result.ok:
            failures += 1
            print(f"export {name}: FAILED", *[i.format() for i in result.issues if i.is_error][:5], sep="\n    ")
            continue
        path = out / f"{name}.bundle.json"
        path.write_text(json.dumps(result.bundle, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        verdict = ""
        if name != "large":
            hl7 = errors(ref.validate(result.bundle))
            failures += bool(hl7)
            verdict = f"; HL7 validator: {'0 errors' if not hl7 else f'{len(hl7)} ERRORS'}"
        warnings = sum(i.severity.value == "warning" for i in result.issues)
        print(f"export {name}: {len(result.bundle['entry'])} resources in {took:.2f} s, valid ({warnings} warnings)"
              f"{verdict} -> {path.relative_to(settings.root)}")
        if name == "typical":
            failures += _human_readable(exporter, result.bundle, out, settings.root)
    return failures


def _human_readable(exporter, bundle, out: Path, root: Path) -> int:
    """The typical export as the person reads it: out/demo/typical.pdf (PDF/A-3b, judged by veraPDF) and .html."""
    from exporter.render.document import Renderer
    from exporter.render.formats import FORMATS, render
    from tools.devstack.verapdf import verapdf

    renderer = Renderer(exporter.engine.narrator)
    for fmt in ("html", "pdf"):
        path = out / f"typical.{fmt}"
        t = time.monotonic()
        path.write_bytes(render(renderer, bundle, FORMATS[fmt]))
        print(f"render typical as {fmt.upper()} in {time.monotonic() - t:.2f} s -> {path.relative_to(root)}")
    verdict = verapdf([out / "typical.pdf"])[out / "typical.pdf"]
    print(f"veraPDF (PDF/A-3b): {'passes' if verdict is None else 'FAILS: ' + verdict}")
    return verdict is not None


if __name__ == "__main__":
    sys.exit(main())
