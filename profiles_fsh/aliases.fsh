// Code systems, canonical URLs and shared rule sets used across the IG.
//
// The IG's canonical base, package id and version are set in sushi-config.yaml; SUSHI derives every
// profile/ValueSet/CodeSystem/Questionnaire URL from that canonical and stamps that version on them.
// FSH cannot read the config, so the few literals that must repeat it live in ONE block below
// ("IG identity"). tests/unit/test_ig_codes.py fails the build if they ever differ from the config.

// --- external code systems -------------------------------------------------------------------
Alias: $loinc = http://loinc.org
Alias: $sct = http://snomed.info/sct
Alias: $ucum = http://unitsofmeasure.org
Alias: $obs-category = http://terminology.hl7.org/CodeSystem/observation-category
Alias: $condition-clinical = http://terminology.hl7.org/CodeSystem/condition-clinical
Alias: $condition-ver-status = http://terminology.hl7.org/CodeSystem/condition-ver-status
Alias: $condition-category = http://terminology.hl7.org/CodeSystem/condition-category
Alias: $provenance-participant-type = http://terminology.hl7.org/CodeSystem/provenance-participant-type
Alias: $v3-DataOperation = http://terminology.hl7.org/CodeSystem/v3-DataOperation

// --- German identifier and code systems (HL7 Deutschland basis profiles, BfArM, IFA) ------------
Alias: $kvid10 = http://fhir.de/sid/gkv/kvid-10
Alias: $icd10gm = http://fhir.de/CodeSystem/bfarm/icd-10-gm
Alias: $pzn = http://fhir.de/CodeSystem/ifa/pzn
Alias: $diga-ve-id = https://fhir.bfarm.de/Identifier/DigaVeId

// --- FHIR core profiles and extensions we build on --------------------------------------------
Alias: $vs-bodyweight = http://hl7.org/fhir/StructureDefinition/bodyweight
Alias: $vs-bodyheight = http://hl7.org/fhir/StructureDefinition/bodyheight
Alias: $vs-heartrate = http://hl7.org/fhir/StructureDefinition/heartrate
Alias: $vs-bp = http://hl7.org/fhir/StructureDefinition/bp
Alias: $ordinalValue = http://hl7.org/fhir/StructureDefinition/ordinalValue

// =============================================================================================
// IG identity -- an adopting DiGA changes these literals together with sushi-config.yaml:
//   version  0.1.0                                   (sushi-config.yaml: version)
//   canonical https://diga-exporter.example.org/fhir  (sushi-config.yaml: canonical)
//   package  de.diga.export.r4                       (sushi-config.yaml: id)
// =============================================================================================

// Claim the versioned canonical of one of our profiles in meta.profile.
RuleSet: ClaimProfile(profile)
* meta.profile = Canonical({profile}|0.1.0)

// The business version of our definitional instances (Questionnaires, ImplementationGuide).
RuleSet: DefinitionVersion
* version = "0.1.0"

// The versioned canonical a QuestionnaireResponse answers.
RuleSet: AnswersQuestionnaire(questionnaire)
* questionnaire = Canonical({questionnaire}|0.1.0)

// How a Provenance records the IG it conforms to: <canonical>/ImplementationGuide/<id>|<version>.
// The exporter writes the same value at run time; it resolves to the ImplementationGuide resource below.
RuleSet: RecordIGVersion
* policy[0] = "https://diga-exporter.example.org/fhir/ImplementationGuide/de.diga.export.r4|0.1.0"

// id and packageId of the package's own ImplementationGuide resource (implementation-guide.fsh).
RuleSet: IGIdentity
* id = "de.diga.export.r4"
* packageId = "de.diga.export.r4"
* insert DefinitionVersion

// =============================================================================================

// A generated human-readable narrative, as every exported resource carries one (dom-6).
RuleSet: Narrative(xhtml)
* text.status = #generated
* text.div = "<div xmlns=\"http://www.w3.org/1999/xhtml\">{xhtml}</div>"

// Common constraints of every measurement/score Observation of the export.
RuleSet: DiGAObservationBase
* status = #final
* subject 1..1
* subject only Reference(DiGAPatient)
* effective[x] 1..1
* effective[x] only dateTime
* performer only Reference(DiGAPatient)

// Category slice "vital-signs", shaped like the FHIR core vital signs profile (slice VSCat), for
// Observations that do not derive from a core vital signs profile.
RuleSet: VitalSignsCategory
* category 1..*
* category ^slicing.discriminator[0].type = #value
* category ^slicing.discriminator[0].path = "coding.code"
* category ^slicing.discriminator[1].type = #value
* category ^slicing.discriminator[1].path = "coding.system"
* category ^slicing.rules = #open
* category contains VSCat 1..1
* category[VSCat].coding 1..*
* category[VSCat].coding.system 1..1
* category[VSCat].coding.system = $obs-category (exactly)
* category[VSCat].coding.code 1..1
* category[VSCat].coding.code = #vital-signs (exactly)

// Category slice "survey" for assessment scores and diary entries.
RuleSet: SurveyCategory
* category 1..*
* category ^slicing.discriminator[0].type = #value
* category ^slicing.discriminator[0].path = "coding.code"
* category ^slicing.discriminator[1].type = #value
* category ^slicing.discriminator[1].path = "coding.system"
* category ^slicing.rules = #open
* category contains survey 1..1
* category[survey].coding 1..*
* category[survey].coding.system 1..1
* category[survey].coding.system = $obs-category (exactly)
* category[survey].coding.code 1..1
* category[survey].coding.code = #survey (exactly)

// A UCUM quantity as value: value, unit, system fixed to UCUM, code from the given ValueSet.
RuleSet: UcumValue(valueset)
* value[x] 1..1
* value[x] only Quantity
* valueQuantity.value 1..1
* valueQuantity.unit 1..1
* valueQuantity.system 1..1
* valueQuantity.system = $ucum (exactly)
* valueQuantity.code 1..1
* valueQuantity.code from {valueset} (required)

// A second coding in SNOMED CT beside the LOINC code, as the KBV profiles of vital signs and body
// measures carry it: one slice `snomed` of {codings} (a Coding list already sliced by code and system,
// as in the FHIR core vital signs profiles), the concept fixed, the code system version required.
RuleSet: SnomedCodingSlice(codings, code)
* {codings} contains snomed 0..1
* {codings}[snomed] ^short = "The same observable in SNOMED CT, with the code system version"
* {codings}[snomed].system 1..1
* {codings}[snomed].system = $sct (exactly)
* {codings}[snomed].code 1..1
* {codings}[snomed].code = #{code} (exactly)
* {codings}[snomed].version 1..1
