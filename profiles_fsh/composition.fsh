Profile: DiGAComposition
Parent: Composition
Id: diga-composition
Title: "DiGA Export Composition"
Description: "The first entry of the export document: a personal health monitoring report (LOINC 53576-5) about the patient, authored by the DiGA, for a covered period, with sections for measurements (vital signs), assessments, diary entries and diagnoses. A section about a list without records in the period keeps its place: no entries, an emptyReason and a narrative saying nothing was recorded."
* extension contains DiGACoveredPeriod named coveredPeriod 1..1
* extension[coveredPeriod] ^short = "Covered period (Betrachtungszeitraum)"
* status = #final (exactly)
* type = $loinc#53576-5
* type from DiGADocumentTypes (required)
* subject 1..1
* subject only Reference(DiGAPatient)
* date 1..1
* author 1..1
* author only Reference(DiGADevice)
* title 1..1
* section 1..*
* section.code 1..1
* section.text 1..1
* section ^slicing.discriminator.type = #pattern
* section ^slicing.discriminator.path = "code"
* section ^slicing.rules = #closed
* section ^slicing.description = "One section per kind of content, identified by its code."
* section contains findings 0..1 and assessments 0..1 and diary 0..1 and problems 0..1
// measurements: findings (SNOMED CT 423100009) with the vital signs sub-section (1184593002)
* section[findings] ^short = "Results: holds the vital signs sub-section"
* section[findings].code = $sct#423100009
* section[findings].entry 0..0
* section[findings].section 1..1
* section[findings].section.code 1..1
* section[findings].section.text 1..1
* section[findings].section.code = $sct#1184593002
* section[findings].section.entry 0..*
* section[findings].section obeys dgx-cmp-1
* section[findings].section.entry only Reference(DiGABodyWeight or DiGABodyHeight or DiGAHeartRate or DiGABloodPressure or DiGABloodGlucose)
* section[findings].section.section 0..0
// assessments and questionnaire scores (SNOMED CT 424836000)
* section[assessments] ^short = "Assessments: PHQ-9 / GAD-7 scores, answers and the Questionnaires answered"
* section[assessments].code = $sct#424836000
* section[assessments].entry 0..*
* section[assessments] obeys dgx-cmp-1
* section[assessments].entry only Reference(DiGAPHQ9Score or DiGAGAD7Score or DiGAQuestionnaireResponse or Questionnaire)
* section[assessments].section 0..0
// diary entries (local code: there is no standard section code)
* section[diary] ^short = "Diary entries"
* section[diary].code = DiGAConcepts#diary-entries
* section[diary].entry 0..*
* section[diary] obeys dgx-cmp-1
* section[diary].entry only Reference(DiGADiaryEntry)
* section[diary].section 0..0
// diagnoses / problems (LOINC 11450-4)
* section[problems] ^short = "Diagnoses"
* section[problems].code = $loinc#11450-4
* section[problems].entry 0..*
* section[problems] obeys dgx-cmp-1
* section[problems].entry only Reference(DiGACondition)
* section[problems].section 0..0

Invariant: dgx-cmp-1
Description: "A section lists its entries, or says with an emptyReason why it has none (a period without data is a valid document)."
Severity: #error
Expression: "entry.exists() or emptyReason.exists()"
