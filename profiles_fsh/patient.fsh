Profile: DiGAPatient
Parent: Patient
Id: diga-patient
Title: "DiGA Patient"
Description: "The patient whose DiGA data is exported. Identified by the DiGA's pseudonymous internal id."
* identifier 1..*
* identifier.system 1..1
* identifier.value 1..1
* name 1..*
* birthDate 1..1
* gender 1..1

Instance: ExamplePatient
InstanceOf: DiGAPatient
Title: "Example patient"
Usage: #example
* identifier.system = "urn:ietf:rfc:3986"
* identifier.value = "urn:uuid:3f1c2a3e-5b7d-4c1e-9a2b-0c4d5e6f7a8b"
* name.family = "Musterfrau"
* name.given = "Erika"
* birthDate = "1964-08-12"
* gender = #female
