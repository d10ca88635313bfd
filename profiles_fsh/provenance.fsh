Profile: DiGAProvenance
Parent: Provenance
Id: diga-provenance
Title: "DiGA Provenance (origin information)"
Description: "Origin information of exported resources: which DiGA recorded them, when the export was made, and which IG and mapping versions produced it. The versions are recorded as versioned URIs in Provenance.policy: one names this IG (canonical/ImplementationGuide/package-id|version), further ones the mapping set (uri|version)."
* target 1..*
* target ^short = "The exported resources this origin information is about"
* recorded 1..1
* policy 1..*
* policy ^short = "Versioned IG canonical and mapping version (uri|version)"
* activity = $v3-DataOperation#CREATE
* agent ^slicing.discriminator.type = #pattern
* agent ^slicing.discriminator.path = "type"
* agent ^slicing.rules = #open
* agent contains diga 1..1
* agent[diga] ^short = "The DiGA that recorded the data"
* agent[diga].type 1..1
* agent[diga].type = $provenance-participant-type#author
* agent[diga].who only Reference(DiGADevice)
* obeys dgx-prov-1 and dgx-prov-2

Invariant: dgx-prov-1
Description: "Every policy URI names a version (uri|version)."
Severity: #error
Expression: "policy.all(matches('^[^|]+[|][^|]+$'))"

Invariant: dgx-prov-2
Description: "One policy is the versioned canonical of the implementation guide the export conforms to."
Severity: #error
Expression: "policy.where(contains('/ImplementationGuide/')).exists()"

RuleSet: ExampleProvenanceContent(device)
* insert ClaimProfile(DiGAProvenance)
* insert Narrative(Exported on 2026-03-31 by DiGA MindJournal 2.4.1 following IG de.diga.export.r4 0.1.0 and mapping set reference-diga 1.0.0.)
* insert RecordIGVersion
* policy[1] = "urn:diga-exporter:mapping:reference-diga|1.0.0"
* recorded = "2026-03-31T12:00:00+02:00"
* activity = $v3-DataOperation#CREATE "create"
* agent[diga].type = $provenance-participant-type#author "Author"
* agent[diga].who.reference = "{device}"

Instance: ExampleProvenance
InstanceOf: DiGAProvenance
Title: "Example origin information"
Usage: #example
* insert ExampleProvenanceContent(Device/ExampleDevice)
* target[0] = Reference(ExampleBodyWeight)
* target[1] = Reference(ExamplePHQ9Score)
* target[2] = Reference(ExampleDiaryEntry)
