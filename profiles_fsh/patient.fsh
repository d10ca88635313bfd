Profile: DiGAPatient
Parent: Patient
Id: diga-patient
Title: "DiGA Patient"
Description: "The patient whose DiGA data is exported. Identified by the DiGA's pseudonymous internal id (a urn:uuid); the 10-character health insurance number (KVID-10) is added when the DiGA knows it."
* identifier 1..*
* identifier.system 1..1
* identifier.value 1..1
* identifier ^slicing.discriminator.type = #value
* identifier ^slicing.discriminator.path = "system"
* identifier ^slicing.rules = #open
* identifier ^slicing.description = "Slice by identifier system."
* identifier contains pseudonym 1..1 and kvid10 0..1
* identifier[pseudonym] ^short = "The DiGA's internal pseudonymous patient id (urn:uuid)"
* identifier[pseudonym].system = "urn:ietf:rfc:3986" (exactly)
* identifier[pseudonym] obeys dgx-pat-1
* identifier[kvid10] ^short = "Krankenversichertennummer (KVID-10), unchangeable part"
* identifier[kvid10].system = $kvid10 (exactly)
* identifier[kvid10] obeys dgx-pat-2
* name 1..*
* birthDate 1..1
* gender 1..1

Invariant: dgx-pat-1
Description: "The pseudonymous patient id is a urn:uuid."
Severity: #error
Expression: "value.matches('^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')"

Invariant: dgx-pat-2
Description: "The KVID-10 is one capital letter followed by nine digits."
Severity: #error
Expression: "value.matches('^[A-Z][0-9]{9}$')"

RuleSet: ExamplePatientContent
* insert ClaimProfile(DiGAPatient)
* insert Narrative(Erika Musterfrau\, female\, born 1964-08-12)
* identifier[pseudonym].system = "urn:ietf:rfc:3986"
* identifier[pseudonym].value = "urn:uuid:3f1c2a3e-5b7d-4c1e-9a2b-0c4d5e6f7a8b"
* identifier[kvid10].system = $kvid10
* identifier[kvid10].value = "A123456780"
* name.family = "Musterfrau"
* name.given = "Erika"
* birthDate = "1964-08-12"
* gender = #female

Instance: ExamplePatient
InstanceOf: DiGAPatient
Title: "Example patient"
Usage: #example
* insert ExamplePatientContent
