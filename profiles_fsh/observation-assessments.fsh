// Questionnaire scores and the patient diary.

Profile: DiGAPHQ9Score
Parent: Observation
Id: diga-phq9-score
Title: "DiGA PHQ-9 Total Score"
Description: "The PHQ-9 total score (LOINC 44261-6), a whole number 0..27 in UCUM {score}, derived from the patient's PHQ-9 answers."
* insert DiGAObservationBase
* insert SurveyCategory
* code = $loinc#44261-6
* insert UcumValue(ScoreUnits)
* derivedFrom only Reference(DiGAQuestionnaireResponse)
* obeys dgx-phq9-1

Invariant: dgx-phq9-1
Description: "The PHQ-9 total score is a whole number from 0 to 27."
Severity: #error
Expression: "value.ofType(Quantity).value.all($this >= 0 and $this <= 27 and $this.floor() = $this)"

Profile: DiGAGAD7Score
Parent: Observation
Id: diga-gad7-score
Title: "DiGA GAD-7 Total Score"
Description: "The GAD-7 total score (LOINC 70274-6), a whole number 0..21 in UCUM {score}, derived from the patient's GAD-7 answers."
* insert DiGAObservationBase
* insert SurveyCategory
* code = $loinc#70274-6
* insert UcumValue(ScoreUnits)
* derivedFrom only Reference(DiGAQuestionnaireResponse)
* obeys dgx-gad7-1

Invariant: dgx-gad7-1
Description: "The GAD-7 total score is a whole number from 0 to 21."
Severity: #error
Expression: "value.ofType(Quantity).value.all($this >= 0 and $this <= 21 and $this.floor() = $this)"

Profile: DiGADiaryEntry
Parent: Observation
Id: diga-diary-entry
Title: "DiGA Diary Entry"
Description: "One entry of the patient diary: the mood on the DiGA's scale, the symptoms reported (SNOMED CT where a concept exists, local codes otherwise) and a free-text note."
* insert DiGAObservationBase
* insert SurveyCategory
* code = DiGAConcepts#diary-entry
* value[x] 0..0
* component ^slicing.discriminator.type = #pattern
* component ^slicing.discriminator.path = "code"
* component ^slicing.rules = #closed
* component ^slicing.description = "Slice by component code: one mood, any number of symptoms."
* component contains mood 0..1 and symptom 0..*
* component[mood] ^short = "Mood on the DiGA's scale"
* component[mood].code = DiGAConcepts#mood
* component[mood].value[x] 1..1
* component[mood].value[x] only CodeableConcept
* component[mood].valueCodeableConcept from DiGAMoodScaleVS (required)
* component[symptom] ^short = "A symptom the patient reported"
* component[symptom].code = DiGAConcepts#symptom
* component[symptom].value[x] 1..1
* component[symptom].value[x] only CodeableConcept
* component[symptom].valueCodeableConcept from DiGADiarySymptoms (required)
* note ^short = "The patient's free-text note"
* note.text 1..1
* obeys dgx-diary-1

Invariant: dgx-diary-1
Description: "A diary entry records a mood, a symptom or a note."
Severity: #error
Expression: "component.exists() or note.exists()"

RuleSet: ExamplePHQ9ScoreContent(patient, response)
* insert ClaimProfile(DiGAPHQ9Score)
* insert Narrative(PHQ-9 total score 11 on 2026-03-05)
* status = #final
* category[survey] = $obs-category#survey "Survey"
* code = $loinc#44261-6 "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]"
* subject.reference = "{patient}"
* performer.reference = "{patient}"
* effectiveDateTime = "2026-03-05T19:20:00+01:00"
* valueQuantity = $ucum#{score} "score"
* valueQuantity.value = 11
* derivedFrom.reference = "{response}"

RuleSet: ExampleGAD7ScoreContent(patient, response)
* insert ClaimProfile(DiGAGAD7Score)
* insert Narrative(GAD-7 total score 7 on 2026-03-05)
* status = #final
* category[survey] = $obs-category#survey "Survey"
* code = $loinc#70274-6 "Generalized anxiety disorder 7 item (GAD-7) total score [Reported.PHQ]"
* subject.reference = "{patient}"
* performer.reference = "{patient}"
* effectiveDateTime = "2026-03-05T19:25:00+01:00"
* valueQuantity = $ucum#{score} "score"
* valueQuantity.value = 7
* derivedFrom.reference = "{response}"

RuleSet: ExampleDiaryEntryContent(patient)
* insert ClaimProfile(DiGADiaryEntry)
* insert Narrative(Diary 2026-03-06 21:10: mood 2 of 5 - bad; headache; inner restlessness; note: Slept badly\, long day at work.)
* status = #final
* category[survey] = $obs-category#survey "Survey"
* code = DiGAConcepts#diary-entry "DiGA diary entry"
* subject.reference = "{patient}"
* performer.reference = "{patient}"
* effectiveDateTime = "2026-03-06T21:10:00+01:00"
* component[mood].code = DiGAConcepts#mood "Self-rated mood"
* component[mood].valueCodeableConcept = DiGAMoodScale#2 "Bad"
* component[symptom][0].code = DiGAConcepts#symptom "Reported symptom"
* component[symptom][0].valueCodeableConcept = $sct#25064002 "Headache (finding)"
* component[symptom][1].code = DiGAConcepts#symptom "Reported symptom"
* component[symptom][1].valueCodeableConcept = DiGASymptoms#inner-restlessness "Inner restlessness"
* note.text = "Slept badly, long day at work."

Instance: ExamplePHQ9Score
InstanceOf: DiGAPHQ9Score
Title: "Example PHQ-9 total score"
Usage: #example
* insert ExamplePHQ9ScoreContent(Patient/ExamplePatient, QuestionnaireResponse/ExamplePHQ9Response)

Instance: ExampleGAD7Score
InstanceOf: DiGAGAD7Score
Title: "Example GAD-7 total score"
Usage: #example
* insert ExampleGAD7ScoreContent(Patient/ExamplePatient, QuestionnaireResponse/ExampleGAD7Response)

Instance: ExampleDiaryEntry
InstanceOf: DiGADiaryEntry
Title: "Example diary entry"
Usage: #example
* insert ExampleDiaryEntryContent(Patient/ExamplePatient)
