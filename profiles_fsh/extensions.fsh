// Our own extensions. Policy: a standard extension wherever one exists; our own only where the
// KBV MIO's extension cannot be imported (the KBV packages are in no reachable registry, and
// German validators reject unknown extensions, so we must not invent one that shadows a standard).
// Each one is listed with its reason in docs/ig.md.

Extension: DiGACoveredPeriod
Id: diga-covered-period
Title: "Covered period (Betrachtungszeitraum)"
Description: "The period of time whose DiGA data the export document covers. Mirrors the KBV MIO extension KBV_EX_MIO_DIGA_Betrachtungszeitraum (valuePeriod), which cannot be imported here. Both start and end are given."
Context: Composition
* value[x] 1..1
* value[x] only Period
* valuePeriod.start 1..1
* valuePeriod.end 1..1
// start <= end is the core Period invariant per-1.
