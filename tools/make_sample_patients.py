"""Generate samples/patients/large.json: a deterministic, synthetic two-year domain document (developer tool).

The document follows schemas/domain-patient.schema.json and is meant for load, size and speed tests of
the exporter: 2,500-odd measurements of every kind (both glucose units, heights in cm and m), about
600 diary entries and 208 questionnaires (PHQ-9 and GAD-7 weekly) over 2024-07-01 .. 2026-06-30, with
UTC offsets that follow German daylight saving time.

Everything is derived from one seeded `random.Random`; no clock, no network, no environment. Running

    python tools/make_sample_patients.py            # rewrites samples/patients/large.json
    python tools/make_sample_patients.py -o x.json  # writes elsewhere (the tests compare the bytes)

produces byte-identical output on every machine (floats are rounded and printed by repr, which is
exact and platform independent in CPython; JSON keys keep insertion order).

The patient is fictitious; its name, birth date, KVNR and one diary note are canary strings listed
in samples/patients/CANARIES.txt, which must never show up in logs.

Imports: the standard library only.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "samples" / "patients" / "large.json"

SEED = 20260331
START = date(2024, 7, 1)
DAYS = 730  # 2024-07-01 .. 2026-06-30

CANARY_NOTE = "Kanarien-Notiz Stieglitz: Gartenzaun am Sonnabend gestrichen, danach Rückenschmerzen."

PATIENT = {
    "id": "5b0e6c1a-93d4-4f0e-8a27-c6d1f4e2b9a7",
    "given_name": "Friedhelm Konstantin",
    "family_name": "Synthetik-Stieglitz",
    "birth_date": "1946-11-30",
    "gender": "male",
    "kvnr": "Z502847162",
}

DIGA = {
    "name": "GlukoMind",
    "version": "3.2.0",
    "pzn": "17654326",
    "diga_ve_id": "27184930",
    "manufacturer": "Beispiel Digital Health GmbH",
}

DIAGNOSES = [
    {"id": "0c5d8f1e-2a3b-4c6d-9e7f-8a1b2c3d4e5f", "icd10gm_code": "E11.90", "icd10gm_version": 2024,
     "display": "Diabetes mellitus, Typ 2: Ohne Komplikationen: Nicht als entgleist bezeichnet",
     "clinical_status": "active", "verification_status": "confirmed", "recorded_at": "2024-06-20"},
    {"id": "1d6e9a2f-3b4c-4d7e-8f9a-9b2c3d4e5f60", "icd10gm_code": "F32.1", "icd10gm_version": 2024,
     "display": "Mittelgradige depressive Episode", "snomed_code": "35489007",
     "clinical_status": "remission", "verification_status": "confirmed", "recorded_at": "2024-06-20"},
    {"id": "2e7fab30-4c5d-4e8f-9a0b-ac3d4e5f6071", "icd10gm_code": "F41.1", "icd10gm_version": 2025,
     "display": "Generalisierte Angststörung", "snomed_code": "197480006",
     "clinical_status": "active", "verification_status": "provisional", "recorded_at": "2025-03-11"},
    {"id": "3f80bc41-5d6e-4f90-8b1c-bd4e5f607182", "icd10gm_code": "F43.2", "icd10gm_version": 2024,
     "display": "Anpassungsstörungen",
     "clinical_status": "resolved", "verification_status": "confirmed", "recorded_at": "2024-07-02"},
]

NOTES = [
    "Gut geschlafen, Spaziergang am Kanal.",
    "Unterzucker am Vormittag, Traubenzucker genommen.",
    "Lange Sitzung im Büro, abends erschöpft.",
    "Besuch bei der Tochter, schöner Tag.",
    "Kopfschmerzen seit dem Mittag.",
    "Schlecht eingeschlafen, viel gegrübelt.",
    "Übungen aus dem Modul 4 gemacht.",
    "Regen, keine Lust rauszugehen.",
    "Werte heute stabil.",
    "Arzttermin verschoben.",
]

SYMPTOMS = ["headache", "nausea", "fatigue", "dizziness", "sleep_problems", "inner_restlessness",
            "low_drive", "brooding"]


def _last_sunday(year: int, month: int) -> date:
    d = date(year, month + 1, 1) - timedelta(days=1) if month < 12 else date(year, 12, 31)
    return d - timedelta(days=(d.weekday() + 1) % 7)


def berlin(day: date, hour: int, minute: int, second: int = 0) -> str:
    """Local Europe/Berlin wall-clock time as an ISO date-time with its UTC offset (EU DST rules)."""
    local = datetime(day.year, day.month, day.day, hour, minute, second)
    # DST from the last Sunday of March 02:00 (local, = 01:00 UTC) to the last Sunday of October 03:00
    dst_start = datetime.combine(_last_sunday(day.year, 3), datetime.min.time()).replace(hour=2)
    dst_end = datetime.combine(_last_sunday(day.year, 10), datetime.min.time()).replace(hour=3)
    offset = 2 if dst_start <= local < dst_end else 1
    return local.replace(tzinfo=timezone(timedelta(hours=offset))).isoformat()


class Generator:
    def __init__(self, seed: int = SEED):
        self.rng = random.Random(seed)

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def time(self, day: date, hour_lo: int, hour_hi: int) -> str:
        return berlin(day, self.rng.randint(hour_lo, hour_hi), self.rng.randrange(60), self.rng.randrange(60))

    def measurements(self) -> list[dict]:
        rng = self.rng
        out: list[dict] = []
        weight = 96.0
        for n in range(DAYS):
            day = START + timedelta(days=n)
            mgdl = 240 <= n < 420  # a borrowed meter showing mg/dL for half a year
            # glucose: fasting in the morning, mostly another one in the evening
            for lo, hi, base in ((6, 8, 6.4), (18, 21, 8.1)):
                if lo > 12 and rng.random() < 0.2:
                    continue
                mmol = max(2.8, rng.gauss(base - n / DAYS, 1.1))
                value = round(mmol * 18.016) if mgdl else round(mmol, 1)
                out.append({"id": self.uuid(), "kind": "glucose", "measured_at": self.time(day, lo, hi),
                            "value": value, "unit": "mg/dL" if mgdl else "mmol/L", "source": "device"})
            # blood pressure with the heart rate from the same cuff, on most days
            if rng.random() < 0.85:
                at = self.time(day, 7, 9)
                sys_ = round(rng.gauss(138 - 8 * n / DAYS, 9))
                dia = min(sys_ - 25, round(rng.gauss(86 - 4 * n / DAYS, 6)))
                source = "device" if rng.random() < 0.9 else "manual"
                out.append({"id": self.uuid(), "kind": "blood_pressure", "measured_at": at,
                            "systolic": sys_, "diastolic": dia, "unit": "mmHg", "source": source})
                out.append({"id": self.uuid(), "kind": "heart_rate", "measured_at": at,
                            "value": round(rng.gauss(74, 7)), "unit": "bpm", "source": source})
            # weight once a week, sometimes from a scale reporting grams
            if n % 7 == 0:
                weight = max(70.0, weight - rng.uniform(-0.3, 0.6))
                grams = rng.random() < 0.15
                out.append({"id": self.uuid(), "kind": "weight", "measured_at": self.time(day, 6, 7),
                            "value": round(weight * 1000) if grams else round(weight, 1),
                            "unit": "g" if grams else "kg", "source": "device" if grams else "manual"})
            # height at the start and once a year, entered by hand (once in metres)
            if n in (0, 365):
                in_m = n == 365
                out.append({"id": self.uuid(), "kind": "height", "measured_at": self.time(day, 9, 11),
                            "value": 1.79 if in_m else 179, "unit": "m" if in_m else "cm", "source": "manual"})
        return out

    def diary_entries(self) -> list[dict]:
        rng = self.rng
        out: list[dict] = []
        for n in range(DAYS):
            if rng.random() < 0.2:
                continue
            day = START + timedelta(days=n)
            entry: dict = {"id": self.uuid(), "recorded_at": self.time(day, 19, 22)}
            if rng.random() < 0.9:
                entry["mood"] = min(5, max(1, round(rng.gauss(2.6 + 1.2 * n / DAYS, 0.9))))
            k = rng.choices((0, 1, 2, 3), weights=(5, 3, 2, 1))[0]
            entry["symptoms"] = sorted(rng.sample(SYMPTOMS, k), key=SYMPTOMS.index)
            if n == 400:
                entry["note"] = CANARY_NOTE
            elif rng.random() < 0.35:
                entry["note"] = rng.choice(NOTES)
            if "mood" not in entry and not entry["symptoms"] and "note" not in entry:
                entry["note"] = rng.choice(NOTES)
            out.append(entry)
        return out

    def questionnaires(self) -> list[dict]:
        rng = self.rng
        out: list[dict] = []
        for week in range(DAYS // 7):
            day = START + timedelta(days=7 * week + 6)
            for instrument, items in (("phq9", 9), ("gad7", 7)):
                level = 1.6 - 1.1 * week / (DAYS // 7)
                answers = [min(3, max(0, round(rng.gauss(level, 0.8)))) for _ in range(items)]
                out.append({"id": self.uuid(), "instrument": instrument,
                            "completed_at": self.time(day, 18, 21), "answers": answers,
                            "total_score": sum(answers)})
        return out

    def document(self) -> dict:
        return {
            "schema_version": "1.0",
            "patient": PATIENT,
            "diga": DIGA,
            "export_period": {"from": START.isoformat(),
                              "to": (START + timedelta(days=DAYS - 1)).isoformat()},
            "measurements": self.measurements(),
            "diary_entries": self.diary_entries(),
            "questionnaires": self.questionnaires(),
            "diagnoses": DIAGNOSES,
        }


def _compact(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def render(doc: dict) -> str:
    """Compact JSON with one array item per line, so that diffs of the committed file stay readable."""
    lines = ["{"]
    keys = list(doc)
    for i, key in enumerate(keys):
        value = doc[key]
        comma = "," if i < len(keys) - 1 else ""
        if isinstance(value, list) and value:
            lines.append(f"{_compact(key)}:[")
            lines.extend(_compact(item) + ("," if j < len(value) - 1 else "") for j, item in enumerate(value))
            lines.append("]" + comma)
        else:
            lines.append(f"{_compact(key)}:{_compact(value)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT,
                        help=f"where to write (default: {DEFAULT_OUTPUT.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    text = render(Generator().document())
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(text.encode("utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
