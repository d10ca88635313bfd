"""The IG's conformance resources and the CapabilityStatement (layer L4; reads igs/ once at start-up).

`ConformanceIndex.load(igs_dir)` indexes every StructureDefinition, ValueSet and CodeSystem of each
package folder in igs/ by id; their bytes are served as they are committed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exporter import __version__
from exporter.fhir.packages import ig_manifests

SERVED_TYPES = ("StructureDefinition", "ValueSet", "CodeSystem")


@dataclass
class ConformanceIndex:
    resources: dict[str, dict[str, bytes]] = field(default_factory=lambda: {t: {} for t in SERVED_TYPES})
    packages: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, igs_dir: Path) -> ConformanceIndex:
        index = cls()
        for pkg, manifest in ig_manifests(igs_dir):
            index.packages.append(manifest)
            for path in sorted(pkg.glob("*.json")):
                if path.name == "package.json":
                    continue
                raw = path.read_bytes()
                try:
                    res = json.loads(raw)
                except ValueError:
                    continue
                rtype, rid = res.get("resourceType"), res.get("id")
                if rtype in SERVED_TYPES and isinstance(rid, str):
                    index.resources[rtype][rid] = raw
        return index

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.resources.values())

    def capability_statement(self, *, issuer: str, date: str) -> dict[str, Any]:
        canonical = self.packages[0].get("canonical") if self.packages else None
        sd_urls = []
        for raw in self.resources["StructureDefinition"].values():
            sd = json.loads(raw)
            if sd.get("kind") == "resource" and sd.get("derivation") == "constraint":
                sd_urls.append(sd.get("url"))
        cs: dict[str, Any] = {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": date,
            "kind": "instance",
            "software": {"name": "diga-fhir-exporter", "version": __version__},
            "implementation": {"description": "DiGA FHIR export service"},
            "fhirVersion": "4.0.1",
            "format": ["application/fhir+json", "application/fhir+xml"],
            "rest": [{
                "mode": "server",
                "documentation": "POST /internal/export (service role export), GET /patient/export (patient token), "
                                 "POST /$validate (service role validate). Conformance resources are public.",
                "security": {
                    "cors": False,
                    "service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                             "code": "OAuth"}]}],
                    "description": f"Bearer access tokens (RS256) issued by {issuer}.",
                },
                "resource": [{"type": t, "interaction": [{"code": "read"}]} for t in SERVED_TYPES],
                "operation": [{"name": "validate",
                               "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate"}],
            }],
        }
        if canonical:
            cs["implementationGuide"] = [f"{canonical}/ImplementationGuide/{p.get('name')}" for p in self.packages]
        if sd_urls:
            cs["rest"][0]["documentation"] += " Profiles: " + ", ".join(sorted(u for u in sd_urls if u))
        return cs
