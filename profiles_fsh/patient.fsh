Profile: DiGAPatient
Parent: Patient
Id: diga-patient
Title: "DiGA Patient"
Description: "The patient whose DiGA data is exported. Identified by the DiGA's pseudonymous internal id (a urn:uuid); the 10-character health insurance number (KVID-10, identifier type KVZ10) is added when the DiGA knows it. The name is the official one, given names one per element; gender 'other' carries the German legal entry (extension gender-amtlich-de, D divers) when the DiGA records 'divers'."
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
* identifier[kvid10].type 1..1
* identifier[kvid10].type = http://fhir.de/CodeSystem/identifier-type-de-basis#KVZ10
* identifier[kvid10].type from IdentifierTypeKvidDeBasis (required)
* identifier[kvid10].type ^short = "KVZ10 (identifier-type-de-basis), as in the HL7 Germany identifier profile"
* identifier[kvid10] obeys dgx-pat-2
* name 1..*
* name.use 1..1
* name.use = #official
* name ^short = "The official name: family name and the given names, one per given element"
* birthDate 1..1
* gender 1..1
* gender.extension contains GenderAmtlichDe named genderAmtlichDe 0..1
* gender.extension[genderAmtlichDe] ^short = "The German legal gender entry (D divers, X unbestimmt) behind gender 'other'"

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
* insert Narrative(Erika Maria Musterfrau\, female\, born 1964-08-12)
* identifier[pseudonym].system = "urn:ietf:rfc:3986"
* identifier[pseudonym].value = "urn:uuid:3f1c2a3e-5b7d-4c1e-9a2b-0c4d5e6f7a8b"
* identifier[kvid10].system = $kvid10
* identifier[kvid10].value = "A123456780"
* identifier[kvid10].type = http://fhir.de/CodeSystem/identifier-type-de-basis#KVZ10 "Krankenversichertennummer"
* name.use = #official
* name.family = "Musterfrau"
* name.given[0] = "Erika"
* name.given[1] = "Maria"
* birthDate = "1964-08-12"
* gender = #female

Instance: ExamplePatient
InstanceOf: DiGAPatient
Title: "Example patient"
Usage: #example
* insert ExamplePatientContent

Instance: ExamplePatientDiverse
InstanceOf: DiGAPatient
Title: "Example patient with the legal gender entry divers"
Usage: #example
* insert ClaimProfile(DiGAPatient)
* insert Narrative(Kim Beispiel\, divers\, born 1990-02-28)
* identifier[pseudonym].system = "urn:ietf:rfc:3986"
* identifier[pseudonym].value = "urn:uuid:6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d"
* name.use = #official
* name.family = "Beispiel"
* name.given = "Kim"
* birthDate = "1990-02-28"
* gender = #other
* gender.extension[genderAmtlichDe].valueCoding = http://fhir.de/CodeSystem/gender-amtlich-de#D "divers"
