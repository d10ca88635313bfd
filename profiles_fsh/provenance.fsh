Profile: DiGAProvenance
Parent: Provenance
Id: diga-provenance
Title: "DiGA Provenance (origin information)"
Description: "Origin information (Herkunftsinformation) of exported resources, in two kinds. The export Provenance targets every resource of the document and names the DiGA as its assembler (provenance-participant-type assembler: it generated the document from existing records, it did not author the values). One more Provenance per origin of the values targets exactly the records of that origin: typed in by the patient (agent author = the Patient), measured by a connected device (agent performer = that Device, contained when the DiGA knows nothing more about it), computed by the DiGA (agent author = the DiGA Device). All record which IG and mapping versions produced them, as versioned URIs in Provenance.policy: one names this IG (canonical/ImplementationGuide/package-id|version), further ones the mapping set (uri|version)."
* target 1..*
* target ^short = "The exported resources this origin information is about"
* recorded 1..1
* policy 1..*
* policy ^short = "Versioned IG canonical and mapping version (uri|version)"
* activity = $v3-DataOperation#CREATE
* agent 1..*
* agent.type 1..1
* agent.type from ProvenanceAgentTypes (required)
* agent.who only Reference(DiGAPatient or Device)
* agent.who ^short = "The Patient (typed in), the DiGA Device (assembled, computed) or a measuring Device (measured)"
* obeys dgx-prov-1 and dgx-prov-2

Invariant: dgx-prov-1
Description: "Every policy URI names a version (uri|version)."
Severity: #error
Expression: "policy.all(matches('^[^|]+[|][^|]+$'))"

Invariant: dgx-prov-2
Description: "One policy is the versioned canonical of the implementation guide the export conforms to."
Severity: #error
Expression: "policy.where(contains('/ImplementationGuide/')).exists()"

RuleSet: ExampleProvenanceBase
* insert ClaimProfile(DiGAProvenance)
* insert RecordIGVersion
* policy[1] = "urn:diga-exporter:mapping:reference-diga|1.0.0"
* recorded = "2026-03-31T12:00:00+02:00"
* activity = $v3-DataOperation#CREATE "create"

RuleSet: ExampleProvenanceContent(device)
* insert ExampleProvenanceBase
* insert Narrative(Exported on 2026-03-31 by DiGA MindJournal 2.4.1 following IG de.diga.export.r4 0.1.0 and mapping set reference-diga 1.0.0.)
* agent[0].type = $provenance-participant-type#assembler "Assembler"
* agent[0].who.reference = "{device}"

RuleSet: ExampleManualOriginContent(patient)
* insert ExampleProvenanceBase
* insert Narrative(Values entered by the patient in MindJournal.)
* agent[0].type = $provenance-participant-type#author "Author"
* agent[0].who.reference = "{patient}"

RuleSet: ExampleComputedOriginContent(device)
* insert ExampleProvenanceBase
* insert Narrative(Values computed by MindJournal 2.4.1.)
* agent[0].type = $provenance-participant-type#author "Author"
* agent[0].who.reference = "{device}"

Instance: ExampleProvenance
InstanceOf: DiGAProvenance
Title: "Example origin information: the export"
Usage: #example
* insert ExampleProvenanceContent(Device/ExampleDevice)
* target[0] = Reference(ExampleBodyWeight)
* target[1] = Reference(ExamplePHQ9Score)
* target[2] = Reference(ExampleDiaryEntry)

Instance: ExampleProvenanceManual
InstanceOf: DiGAProvenance
Title: "Example origin information: values typed in by the patient"
Usage: #example
* insert ExampleManualOriginContent(Patient/ExamplePatient)
* target[0] = Reference(ExampleBodyWeight)
* target[1] = Reference(ExampleDiaryEntry)

Instance: ExampleProvenanceMeasured
InstanceOf: DiGAProvenance
Title: "Example origin information: values measured by a connected device"
Usage: #example
* insert ExampleProvenanceBase
* insert Narrative(Values measured by a connected measuring device and transmitted to MindJournal.)
* contained[0] = ExampleMeasuringDevice
* agent[0].type = $provenance-participant-type#performer "Performer"
* agent[0].who.reference = "#measuring-device"
* agent[0].who.type = #Device
* target[0] = Reference(ExampleBloodPressure)

Instance: ExampleMeasuringDevice
InstanceOf: Device
Usage: #inline
* id = "measuring-device"
* insert Narrative(Connected measuring device\, not identified further)
* deviceName.name = "Verbundenes Messgerät"
* deviceName.type = #user-friendly-name

Instance: ExampleProvenanceComputed
InstanceOf: DiGAProvenance
Title: "Example origin information: values computed by the DiGA"
Usage: #example
* insert ExampleComputedOriginContent(Device/ExampleDevice)
* target[0] = Reference(ExamplePHQ9Score)
