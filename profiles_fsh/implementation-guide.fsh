// The package's own ImplementationGuide resource. SUSHI writes none with FSHOnly: true, so it is an
// explicit definitional instance (url = <canonical>/ImplementationGuide/<id>, set by SUSHI). It is what
// the IG canonical recorded in every Provenance.policy (rule set RecordIGVersion) resolves to -- without
// it, validators cannot resolve that URL (and the HL7 validator rejects it while the canonical is an
// example.org placeholder: TYPE_SPECIFIC_CHECKS_DT_URL_EXAMPLE).

Instance: DiGAExportImplementationGuide
InstanceOf: ImplementationGuide
Title: "DiGA FHIR Export Implementation Guide"
Description: "Profiles, terminology and examples of the DiGA export document (FHIR R4), shaped like the KBV MIO DiGA Toolkit."
Usage: #definition
* insert IGIdentity
* name = "DiGAExportIG"
* status = #draft
* fhirVersion = #4.0.1
* license = #CC0-1.0
