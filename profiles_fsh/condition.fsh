Profile: DiGACondition
Parent: Condition
Id: diga-condition
Title: "DiGA Diagnosis"
Description: "A diagnosis known to the DiGA (usually the indication it was prescribed for): ICD-10-GM with the catalogue year, optionally also SNOMED CT; clinical and verification status are required."
* clinicalStatus 1..1
* verificationStatus 1..1
* code 1..1
* code.coding 1..*
* code.coding ^slicing.discriminator.type = #value
* code.coding ^slicing.discriminator.path = "system"
* code.coding ^slicing.rules = #open
* code.coding contains icd10gm 1..1 and snomed 0..1
* code.coding[icd10gm] ^short = "ICD-10-GM code; version = catalogue year"
* code.coding[icd10gm].system 1..1
* code.coding[icd10gm].system = $icd10gm (exactly)
* code.coding[icd10gm].version 1..1
* code.coding[icd10gm].code 1..1
* code.coding[icd10gm] obeys dgx-cond-1 and dgx-cond-2
* code.coding[snomed] ^short = "SNOMED CT concept of the same diagnosis"
* code.coding[snomed].system 1..1
* code.coding[snomed].system = $sct (exactly)
* code.coding[snomed].code 1..1
* code.coding[snomed] from DiGAConditionSnomed (required)
* subject 1..1
* subject only Reference(DiGAPatient)

Invariant: dgx-cond-1
Description: "An ICD-10-GM code is a letter, two digits and optionally a dot with one or two digits (e.g. F32.1)."
Severity: #error
Expression: "code.matches('^[A-Z][0-9]{2}([.][0-9]{1,2})?$')"

Invariant: dgx-cond-2
Description: "The ICD-10-GM version is the four-digit catalogue year (e.g. 2026)."
Severity: #error
Expression: "version.matches('^[0-9]{4}$')"

RuleSet: ExampleConditionContent(patient)
* insert ClaimProfile(DiGACondition)
* insert Narrative(Moderate depressive episode - ICD-10-GM F32.1\, confirmed\, active.)
* clinicalStatus = $condition-clinical#active "Active"
* verificationStatus = $condition-ver-status#confirmed "Confirmed"
* category = $condition-category#problem-list-item "Problem List Item"
* code.coding[icd10gm] = $icd10gm|2026#F32.1 "Mittelgradige depressive Episode"
* code.coding[snomed] = $sct#35489007 "Depressive disorder (disorder)"
* code.text = "Mittelgradige depressive Episode"
* subject.reference = "{patient}"
* recordedDate = "2026-01-15"

Instance: ExampleCondition
InstanceOf: DiGACondition
Title: "Example diagnosis"
Usage: #example
* insert ExampleConditionContent(Patient/ExamplePatient)
