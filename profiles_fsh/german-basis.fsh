// The few definitions of the HL7 Germany base profiles (de.basisprofil.r4) the export uses, mirrored
// under their own canonical URLs. de.basisprofil.r4 is in no registry this project can reach, so the IG
// cannot depend on it; these copies carry exactly what the export needs, with the codes and displays of
// the published definitions (HL7 Deutschland, TerminologieBasisDE: CodeSystem identifier-type-de-basis,
// CodeSystem gender-amtlich-de, ValueSet gender-other-de). A receiver that has the real package resolves
// the same URLs to the originals. Listed, with the reasons, in docs/ig.md.

Alias: $identifier-type-de-basis = http://fhir.de/CodeSystem/identifier-type-de-basis
Alias: $gender-amtlich-de = http://fhir.de/CodeSystem/gender-amtlich-de

CodeSystem: IdentifierTypeDeBasis
Id: identifier-type-de-basis
Title: "Identifier Type De Basis"
Description: "Identifier types of the German base profiles that complement the standard types, with the codes and statuses HL7 Deutschland publishes (TerminologieBasisDE 1.0.0-alpha1: GKV and PKV retired, ZANR, KZVA, KVZ10 active). The export uses KVZ10 for the KVID-10."
* ^url = $identifier-type-de-basis
* ^caseSensitive = true
* ^content = #complete
* ^experimental = false
* ^property[0].code = #status
* ^property[0].uri = "http://hl7.org/fhir/concept-properties#status"
* ^property[0].type = #code
* #GKV "Gesetzliche Krankenversicherung"
* #GKV ^property[0].code = #status
* #GKV ^property[0].valueCode = #retired
* #PKV "Private Krankenversicherung"
* #PKV ^property[0].code = #status
* #PKV ^property[0].valueCode = #retired
* #ZANR "Zahnarztnummer"
* #KZVA "KZVAbrechnungsnummer"
* #KVZ10 "Krankenversichertennummer"

ValueSet: IdentifierTypeKvidDeBasis
Id: identifier-type-kvid-de-basis
Title: "Identifier Type Kvid DeBasis (the code the export uses)"
Description: "The identifier type of a KVID-10 identifier: KVZ10 Krankenversichertennummer (HL7 Germany, identifier-type-kvid-de-basis; its retired codes GKV and PKV are left out)."
* ^url = "http://fhir.de/ValueSet/identifier-type-kvid-de-basis"
* ^experimental = false
* $identifier-type-de-basis#KVZ10 "Krankenversichertennummer"

CodeSystem: GenderAmtlichDeCS
Id: gender-amtlich-de
Title: "amtliches Geschlecht"
Description: "Codes of the legal gender entry in Germany (XPersonenstand), as HL7 Germany publishes them: M männlich, W weiblich, X unbestimmt, D divers."
* ^url = $gender-amtlich-de
* ^caseSensitive = false
* ^name = "GenderAmtlichDE"
* ^content = #complete
* ^experimental = false
* #M "männlich"
* #W "weiblich"
* #X "unbestimmt"
* #D "divers"

ValueSet: GenderOtherDe
Id: gender-other-de
Title: "GenderOtherDE"
Description: "The legal gender entries beyond female and male (D divers, X unbestimmt): the values of the extension gender-amtlich-de when Patient.gender is 'other'."
* ^url = "http://fhir.de/ValueSet/gender-other-de"
* ^experimental = false
* $gender-amtlich-de#D "divers"
* $gender-amtlich-de#X "unbestimmt"

Extension: GenderAmtlichDe
Id: gender-amtlich-de
Title: "Amtliches Geschlecht (gender-amtlich-de)"
Description: "The German legal gender entry behind Patient.gender 'other': D (divers) or X (unbestimmt). Mirrors the HL7 Germany extension of the same URL."
// Context Element, a superset of the original's gender elements: the exporter's validator does not yet
// match an element context on a primitive's extension (`_gender`), see docs/ig.md.
Context: Element
* ^url = "http://fhir.de/StructureDefinition/gender-amtlich-de"
* value[x] 1..1
* value[x] only Coding
* valueCoding from GenderOtherDe (required)
* valueCoding.system 1..1
* valueCoding.code 1..1

Instance: Kvid10NamingSystem
InstanceOf: NamingSystem
Title: "KVID-10"
Description: "The identifier system of the unchangeable 10-character part of the German health insurance number (Krankenversichertennummer, KVID-10), as the HL7 Germany base profiles name it."
Usage: #definition
* name = "KVID10"
* status = #active
* kind = #identifier
* date = "2026-03-31"
* publisher = "HL7 Deutschland e.V. (mirrored by the DiGA export IG)"
* responsible = "GKV-Spitzenverband"
* type = $identifier-type-de-basis#KVZ10 "Krankenversichertennummer"
* uniqueId.type = #uri
* uniqueId.value = "http://fhir.de/sid/gkv/kvid-10"
* uniqueId.preferred = true
