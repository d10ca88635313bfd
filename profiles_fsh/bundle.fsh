Profile: DiGADocumentBundle
Parent: Bundle
Id: diga-document-bundle
Title: "DiGA Export Document"
Description: "The DiGA export as a FHIR document: entry[0] is the Composition; the Patient, the DiGA (Device and DeviceDefinition) and at least one Provenance are mandatory. Every fullUrl is a urn:uuid, every reference uses that exact string, and every resource claims its versioned profile in meta.profile."
* identifier 1..1
* identifier.system 1..1
* identifier.system = "urn:ietf:rfc:3986" (exactly)
* identifier.value 1..1
* identifier obeys dgx-bdl-1
* type = #document (exactly)
* timestamp 1..1
* entry 1..*
* entry.fullUrl 1..1
* entry.resource 1..1
* entry.search 0..0
* entry.request 0..0
* entry.response 0..0
* entry obeys dgx-bdl-2 and dgx-bdl-3
* entry ^slicing.discriminator.type = #type
* entry ^slicing.discriminator.path = "resource"
* entry ^slicing.rules = #open
* entry ^slicing.description = "The mandatory content, by resource type. entry[0] must be the Composition (core invariant bdl-11)."
* entry contains composition 1..1 and patient 1..1 and device 1..1 and deviceDefinition 1..1 and provenance 1..*
* entry[composition].resource only DiGAComposition
* entry[patient].resource only DiGAPatient
* entry[device].resource only DiGADevice
* entry[deviceDefinition].resource only DiGADeviceDefinition
* entry[provenance].resource only DiGAProvenance

Invariant: dgx-bdl-1
Description: "The document identifier is a urn:uuid."
Severity: #error
Expression: "value.matches('^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')"

Invariant: dgx-bdl-2
Description: "Every fullUrl is a urn:uuid."
Severity: #error
Expression: "fullUrl.matches('^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')"

Invariant: dgx-bdl-3
Description: "Every resource claims a versioned profile (canonical|version) in meta.profile."
Severity: #error
Expression: "resource.meta.profile.exists() and resource.meta.profile.all(matches('^[^|]+[|][^|]+$'))"
