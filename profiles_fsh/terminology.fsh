// Terminology of the export.
//
// Rule 1: a standard code wherever one exists (LOINC, SNOMED CT, UCUM, HL7 code systems).
// Rule 2: a local CodeSystem only for internal concepts of the DiGA that have no standard code.
// Rule 3: every binding to SNOMED CT / LOINC / UCUM goes to a ValueSet that *enumerates* the allowed
//         codes, so that an offline validator (no terminology server) can still check membership.
// Every SNOMED CT id and LOINC code below passes its check digit (tests/unit/test_ig_codes.py).

// ============================================================================================
// Local code systems (internal concepts only)
// ============================================================================================

CodeSystem: DiGAConcepts
Id: diga-concepts
Title: "DiGA export concepts"
Description: "Internal concepts of the DiGA export that have no LOINC or SNOMED CT code: the diary section, the diary entry and its parts."
* ^caseSensitive = true
* ^content = #complete
* ^experimental = false
* #diary-entries "Diary entries" "Composition section holding the diary entries the patient recorded in the DiGA."
* #diary-entry "DiGA diary entry" "One entry of the DiGA's patient diary: mood, symptoms and a free-text note recorded at one time."
* #mood "Self-rated mood" "The patient's mood, rated on the DiGA's own mood scale (CodeSystem diga-mood-scale)."
* #symptom "Reported symptom" "A symptom the patient reported in the diary entry; the value names the symptom."

CodeSystem: DiGAMoodScale
Id: diga-mood-scale
Title: "DiGA mood scale"
Description: "The DiGA's five-point mood scale as the app shows it (1 = very bad ... 5 = very good). An adopting DiGA replaces these concepts with its own scale."
* ^caseSensitive = true
* ^content = #complete
* ^experimental = false
* #1 "Very bad" "Mood rated 1 of 5: very bad."
* #2 "Bad" "Mood rated 2 of 5: bad."
* #3 "Neutral" "Mood rated 3 of 5: neither good nor bad."
* #4 "Good" "Mood rated 4 of 5: good."
* #5 "Very good" "Mood rated 5 of 5: very good."

CodeSystem: DiGASymptoms
Id: diga-symptoms
Title: "DiGA diary symptoms without a SNOMED CT code"
Description: "Symptoms the DiGA's diary offers for which this IG does not use a SNOMED CT concept. Symptoms that have one are coded with SNOMED CT (ValueSet diga-diary-symptoms)."
* ^caseSensitive = true
* ^content = #complete
* ^experimental = false
* #inner-restlessness "Inner restlessness" "The patient feels inwardly restless or tense (German: innere Unruhe)."
* #low-drive "Lack of drive" "The patient lacks drive or motivation to start activities (German: Antriebslosigkeit)."
* #brooding "Brooding" "The patient keeps brooding over the same thoughts (German: Grübeln)."

// ============================================================================================
// Value sets over UCUM
// ============================================================================================

ValueSet: BodyWeightUnits
Id: body-weight-units
Title: "Body weight units"
Description: "UCUM units allowed for a body weight."
* ^experimental = false
* $ucum#kg "kilogram"
* $ucum#g "gram"

ValueSet: BodyHeightUnits
Id: body-height-units
Title: "Body height units"
Description: "UCUM units allowed for a body height."
* ^experimental = false
* $ucum#cm "centimeter"

ValueSet: BloodGlucoseUnits
Id: blood-glucose-units
Title: "Blood glucose units"
Description: "UCUM units allowed for a blood glucose concentration: mmol/L (with LOINC 15074-8) or mg/dL (with LOINC 2339-0)."
* ^experimental = false
* $ucum#mmol/L "millimole per liter"
* $ucum#mg/dL "milligram per deciliter"

ValueSet: ScoreUnits
Id: score-units
Title: "Score units"
Description: "The UCUM unit of a questionnaire score."
* ^experimental = false
* $ucum#{score} "score"

// ============================================================================================
// Value sets over LOINC
// ============================================================================================

ValueSet: DiGADocumentTypes
Id: diga-document-types
Title: "DiGA export document types"
Description: "The LOINC document type of the DiGA export Composition."
* ^experimental = false
* $loinc#53576-5 "Personal health monitoring report Document"

ValueSet: BloodGlucoseCodes
Id: blood-glucose-codes
Title: "Blood glucose codes"
Description: "LOINC codes of a blood glucose measurement, one per unit family."
* ^experimental = false
* $loinc#15074-8 "Glucose [Moles/volume] in Blood"
* $loinc#2339-0 "Glucose [Mass/volume] in Blood"

ValueSet: PhqGadAnswers
Id: phq-gad-answers
Title: "PHQ-9 / GAD-7 item answers"
Description: "The LOINC answer list LL358-3 shared by the PHQ-9 and GAD-7 items (scored 0, 1, 2, 3)."
* ^experimental = false
* $loinc#LA6568-5 "Not at all"
* $loinc#LA6569-3 "Several days"
* $loinc#LA6570-1 "More than half the days"
* $loinc#LA6571-9 "Nearly every day"

// ============================================================================================
// Value sets over SNOMED CT
// ============================================================================================

ValueSet: DiGADeviceDefinitionTypes
Id: diga-device-definition-types
Title: "DiGA device definition types"
Description: "The SNOMED CT type of the DiGA's DeviceDefinition."
* ^experimental = false
* $sct#706689003 "Application program software (physical object)"

ValueSet: DiGAConditionSnomed
Id: diga-condition-snomed
Title: "Diagnoses of the DiGA's indication (SNOMED CT)"
Description: "SNOMED CT concepts allowed as the optional second coding of a diagnosis: the indications of the reference DiGA (depression, anxiety). An adopting DiGA enumerates its own indications here."
* ^experimental = false
* $sct#35489007 "Depressive disorder (disorder)"
* $sct#197480006 "Anxiety disorder (disorder)"

ValueSet: DiGADiarySymptoms
Id: diga-diary-symptoms
Title: "DiGA diary symptoms"
Description: "Symptoms a diary entry can report: SNOMED CT where a concept exists, the local CodeSystem diga-symptoms otherwise."
* ^experimental = false
* $sct#25064002 "Headache (finding)"
* $sct#422587007 "Nausea (finding)"
* $sct#84229001 "Fatigue (finding)"
* $sct#404640003 "Dizziness (finding)"
* $sct#193462001 "Insomnia (disorder)"
* include codes from system DiGASymptoms

// ============================================================================================
// Value sets over local code systems
// ============================================================================================

ValueSet: DiGAMoodScaleVS
Id: diga-mood-scale
Title: "DiGA mood scale"
Description: "All levels of the DiGA's mood scale."
* ^experimental = false
* include codes from system DiGAMoodScale

// ============================================================================================
// Value sets over HL7 terminology
// ============================================================================================

ValueSet: ProvenanceAgentTypes
Id: provenance-agent-types
Title: "Provenance agent types of the export"
Description: "The roles an agent plays in the export's origin information: the patient who typed values in (author), a measuring device that measured them (performer), the DiGA that computed values (author) or assembled the document (assembler)."
* ^experimental = false
* $provenance-participant-type#author "Author"
* $provenance-participant-type#performer "Performer"
* $provenance-participant-type#assembler "Assembler"
