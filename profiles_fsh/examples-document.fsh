// The complete example export: a document Bundle whose entries are inline copies of the standalone
// examples, each with a urn:uuid fullUrl (= its id) and every reference using that exact string.
// The content rule sets (Example*Content) are shared with the standalone examples.

RuleSet: ExampleCompositionContent(patient, device, weight, height, heartrate, bp, glucose, phq9score, gad7score, phq9response, gad7response, diary, condition)
* insert ClaimProfile(DiGAComposition)
* insert Narrative(DiGA-Export of MindJournal for Erika Musterfrau\, 2026-03-01 to 2026-03-31.)
* extension[coveredPeriod].valuePeriod.start = "2026-03-01T00:00:00+01:00"
* extension[coveredPeriod].valuePeriod.end = "2026-03-31T23:59:59+02:00"
* status = #final
* type = $loinc#53576-5 "Personal health monitoring report Document"
* subject.reference = "{patient}"
* date = "2026-03-31T12:00:00+02:00"
* author.reference = "{device}"
* title = "DiGA-Export"
* section[findings].title = "Results"
* section[findings].code = $sct#423100009 "Results section (record artifact)"
* section[findings].text.status = #generated
* section[findings].text.div = "<div xmlns=\"http://www.w3.org/1999/xhtml\">Measurements recorded in the DiGA.</div>"
* section[findings].section.title = "Vital signs"
* section[findings].section.code = $sct#1184593002 "Vital sign document section (record artifact)"
* section[findings].section.text.status = #generated
* section[findings].section.text.div = "<div xmlns=\"http://www.w3.org/1999/xhtml\"><ul><li>2026-03-01 body weight 72.4 kg</li><li>2026-03-01 body height 168 cm</li><li>2026-03-02 heart rate 68 /min</li><li>2026-03-02 blood pressure 128/82 mm[Hg]</li><li>2026-03-03 blood glucose 5.4 mmol/L</li></ul></div>"
* section[findings].section.entry[0].reference = "{weight}"
* section[findings].section.entry[1].reference = "{height}"
* section[findings].section.entry[2].reference = "{heartrate}"
* section[findings].section.entry[3].reference = "{bp}"
* section[findings].section.entry[4].reference = "{glucose}"
* section[assessments].title = "Assessments"
* section[assessments].code = $sct#424836000 "Assessment section (record artifact)"
* section[assessments].text.status = #generated
* section[assessments].text.div = "<div xmlns=\"http://www.w3.org/1999/xhtml\"><ul><li>2026-03-05 PHQ-9 total score 11</li><li>2026-03-05 GAD-7 total score 7</li></ul></div>"
* section[assessments].entry[0].reference = "{phq9score}"
* section[assessments].entry[1].reference = "{gad7score}"
* section[assessments].entry[2].reference = "{phq9response}"
* section[assessments].entry[3].reference = "{gad7response}"
* section[diary].title = "Diary"
* section[diary].code = DiGAConcepts#diary-entries "Diary entries"
* section[diary].text.status = #generated
* section[diary].text.div = "<div xmlns=\"http://www.w3.org/1999/xhtml\"><ul><li>2026-03-06 mood 2 of 5 (bad); headache; inner restlessness; Slept badly, long day at work.</li></ul></div>"
* section[diary].entry[0].reference = "{diary}"
* section[problems].title = "Diagnoses"
* section[problems].code = $loinc#11450-4 "Problem list - Reported"
* section[problems].text.status = #generated
* section[problems].text.div = "<div xmlns=\"http://www.w3.org/1999/xhtml\"><ul><li>F32.1 Mittelgradige depressive Episode (confirmed, active)</li></ul></div>"
* section[problems].entry[0].reference = "{condition}"

Instance: ExampleComposition
InstanceOf: DiGAComposition
Title: "Example export composition"
Usage: #example
* insert ExampleCompositionContent(Patient/ExamplePatient, Device/ExampleDevice, Observation/ExampleBodyWeight, Observation/ExampleBodyHeight, Observation/ExampleHeartRate, Observation/ExampleBloodPressure, Observation/ExampleBloodGlucose, Observation/ExamplePHQ9Score, Observation/ExampleGAD7Score, QuestionnaireResponse/ExamplePHQ9Response, QuestionnaireResponse/ExampleGAD7Response, Observation/ExampleDiaryEntry, Condition/ExampleCondition)

// --- the document ------------------------------------------------------------------------------

Instance: ExampleDocumentBundle
InstanceOf: DiGADocumentBundle
Title: "Example DiGA export document"
Description: "A complete DiGA export: Composition, Patient, the DiGA (Device + DeviceDefinition), measurements, scores with their questionnaire responses, a diary entry, a diagnosis and the origin information (the export, values typed in by the patient, values computed by the DiGA)."
Usage: #example
* insert ClaimProfile(DiGADocumentBundle)
* identifier.system = "urn:ietf:rfc:3986"
* identifier.value = "urn:uuid:05706afa-1bc6-53af-9034-0824c229cf00"
* type = #document
* timestamp = "2026-03-31T12:00:00+02:00"
* entry[0].fullUrl = "urn:uuid:ea7f89ec-411e-5f37-995d-166f902d723c"
* entry[=].resource = DocComposition
* entry[+].fullUrl = "urn:uuid:82ec266c-759c-5144-be52-d1c311b49999"
* entry[=].resource = DocPatient
* entry[+].fullUrl = "urn:uuid:17e6d2a3-9768-5269-b897-9e3a6cd05aea"
* entry[=].resource = DocDevice
* entry[+].fullUrl = "urn:uuid:e09c6435-da0c-58b8-8cc0-a4967e22894c"
* entry[=].resource = DocDeviceDefinition
* entry[+].fullUrl = "urn:uuid:57938ea3-8260-5892-a639-b17c337d4adf"
* entry[=].resource = DocBodyWeight
* entry[+].fullUrl = "urn:uuid:03074509-0626-58fa-b3dc-258862c5c8e8"
* entry[=].resource = DocBodyHeight
* entry[+].fullUrl = "urn:uuid:9fe8e251-c094-5eb1-a8f9-b9e0c603607b"
* entry[=].resource = DocHeartRate
* entry[+].fullUrl = "urn:uuid:4a316180-6a4c-5036-b20d-db806f59b698"
* entry[=].resource = DocBloodPressure
* entry[+].fullUrl = "urn:uuid:8b152168-bc2d-55c5-8eab-f0a34f0d9bdb"
* entry[=].resource = DocBloodGlucose
* entry[+].fullUrl = "urn:uuid:a2df9398-a4b7-5e27-9dd8-4c4f655d6a5e"
* entry[=].resource = DocPHQ9Score
* entry[+].fullUrl = "urn:uuid:c3ee395f-4e1a-58ab-93df-53a595f1363e"
* entry[=].resource = DocGAD7Score
* entry[+].fullUrl = "urn:uuid:58159a97-5318-5f63-ac29-e9be6be5614f"
* entry[=].resource = DocPHQ9Response
* entry[+].fullUrl = "urn:uuid:c35c6118-a192-5f90-8440-c99c42e41c51"
* entry[=].resource = DocGAD7Response
* entry[+].fullUrl = "urn:uuid:6e95d635-7398-5ac4-837f-83d264e5223e"
* entry[=].resource = DocDiaryEntry
* entry[+].fullUrl = "urn:uuid:7e8babc3-16df-5710-9301-7ebee199f968"
* entry[=].resource = DocCondition
* entry[+].fullUrl = "urn:uuid:2f2f7e06-36f5-5e80-aec6-92eed4bc6776"
* entry[=].resource = DocProvenanceManual
* entry[+].fullUrl = "urn:uuid:6b493005-af3e-51c8-9321-2143e5f7f774"
* entry[=].resource = DocProvenanceComputed
* entry[+].fullUrl = "urn:uuid:b47aabd2-312a-5a79-b905-e4875b508853"
* entry[=].resource = DocProvenance

Instance: DocComposition
InstanceOf: DiGAComposition
Usage: #inline
* id = "ea7f89ec-411e-5f37-995d-166f902d723c"
* insert ExampleCompositionContent(urn:uuid:82ec266c-759c-5144-be52-d1c311b49999, urn:uuid:17e6d2a3-9768-5269-b897-9e3a6cd05aea, urn:uuid:57938ea3-8260-5892-a639-b17c337d4adf, urn:uuid:03074509-0626-58fa-b3dc-258862c5c8e8, urn:uuid:9fe8e251-c094-5eb1-a8f9-b9e0c603607b, urn:uuid:4a316180-6a4c-5036-b20d-db806f59b698, urn:uuid:8b152168-bc2d-55c5-8eab-f0a34f0d9bdb, urn:uuid:a2df9398-a4b7-5e27-9dd8-4c4f655d6a5e, urn:uuid:c3ee395f-4e1a-58ab-93df-53a595f1363e, urn:uuid:58159a97-5318-5f63-ac29-e9be6be5614f, urn:uuid:c35c6118-a192-5f90-8440-c99c42e41c51, urn:uuid:6e95d635-7398-5ac4-837f-83d264e5223e, urn:uuid:7e8babc3-16df-5710-9301-7ebee199f968)

Instance: DocPatient
InstanceOf: DiGAPatient
Usage: #inline
* id = "82ec266c-759c-5144-be52-d1c311b49999"
* insert ExamplePatientContent

Instance: DocDevice
InstanceOf: DiGADevice
Usage: #inline
* id = "17e6d2a3-9768-5269-b897-9e3a6cd05aea"
* insert ExampleDeviceContent(urn:uuid:e09c6435-da0c-58b8-8cc0-a4967e22894c)

Instance: DocDeviceDefinition
InstanceOf: DiGADeviceDefinition
Usage: #inline
* id = "e09c6435-da0c-58b8-8cc0-a4967e22894c"
* insert ExampleDeviceDefinitionContent

Instance: DocBodyWeight
InstanceOf: DiGABodyWeight
Usage: #inline
* id = "57938ea3-8260-5892-a639-b17c337d4adf"
* insert ExampleBodyWeightContent(urn:uuid:82ec266c-759c-5144-be52-d1c311b49999)

Instance: DocBodyHeight
InstanceOf: DiGABodyHeight
Usage: #inline
* id = "03074509-0626-58fa-b3dc-258862c5c8e8"
* insert ExampleBodyHeightContent(urn:uuid:82ec266c-759c-5144-be52-d1c311b49999)

Instance: DocHeartRate
InstanceOf: DiGAHeartRate
Usage: #inline
* id = "9fe8e251-c094-5eb1-a8f9-b9e0c603607b"
* insert ExampleHeartRateContent(urn:uuid:82ec266c-759c-5144-be52-d1c311b49999)

Instance: DocBloodPressure
InstanceOf: DiGABloodPressure
Usage: #inline
* id = "4a316180-6a4c-5036-b20d-db806f59b698"
* insert ExampleBloodPressureContent(urn:uuid:82ec266c-759c-5144-be52-d1c311b49999)

Instance: DocBloodGlucose
InstanceOf: DiGABloodGlucose
Usage: #inline
* id = "8b152168-bc2d-55c5-8eab-f0a34f0d9bdb"
* insert ExampleBloodGlucoseContent(urn:uuid:82ec266c-759c-5144-be52-d1c311b49999)

Instance: DocPHQ9Score
InstanceOf: DiGAPHQ9Score
Usage: #inline
* id = "a2df9398-a4b7-5e27-9dd8-4c4f655d6a5e"
* insert ExamplePHQ9ScoreContent(urn:uuid:82ec266c-759c-5144-be52-d1c311b49999, urn:uuid:58159a97-5318-5f63-ac29-e9be6be5614f)

Instance: DocGAD7Score
InstanceOf: DiGAGAD7Score
Usage: #inline
* id = "c3ee395f-4e1a-58ab-93df-53a595f1363e"
* insert ExampleGAD7ScoreContent(urn:uuid:82ec266c-759c-5144-be52-d1c311b49999, urn:uuid:c35c6118-a192-5f90-8440-c99c42e41c51)

Instance: DocPHQ9Response
InstanceOf: DiGAQuestionnaireResponse
Usage: #inline
* id = "58159a97-5318-5f63-ac29-e9be6be5614f"
* insert ExamplePHQ9ResponseContent(urn:uuid:82ec266c-759c-5144-be52-d1c311b49999)

Instance: DocGAD7Response
InstanceOf: DiGAQuestionnaireResponse
Usage: #inline
* id = "c35c6118-a192-5f90-8440-c99c42e41c51"
* insert ExampleGAD7ResponseContent(urn:uuid:82ec266c-759c-5144-be52-d1c311b49999)

Instance: DocDiaryEntry
InstanceOf: DiGADiaryEntry
Usage: #inline
* id = "6e95d635-7398-5ac4-837f-83d264e5223e"
* insert ExampleDiaryEntryContent(urn:uuid:82ec266c-759c-5144-be52-d1c311b49999)

Instance: DocCondition
InstanceOf: DiGACondition
Usage: #inline
* id = "7e8babc3-16df-5710-9301-7ebee199f968"
* insert ExampleConditionContent(urn:uuid:82ec266c-759c-5144-be52-d1c311b49999)

Instance: DocProvenanceManual
InstanceOf: DiGAProvenance
Usage: #inline
* id = "2f2f7e06-36f5-5e80-aec6-92eed4bc6776"
* insert ExampleManualOriginContent(urn:uuid:82ec266c-759c-5144-be52-d1c311b49999)
* target[0].reference = "urn:uuid:57938ea3-8260-5892-a639-b17c337d4adf"
* target[1].reference = "urn:uuid:03074509-0626-58fa-b3dc-258862c5c8e8"
* target[2].reference = "urn:uuid:9fe8e251-c094-5eb1-a8f9-b9e0c603607b"
* target[3].reference = "urn:uuid:4a316180-6a4c-5036-b20d-db806f59b698"
* target[4].reference = "urn:uuid:8b152168-bc2d-55c5-8eab-f0a34f0d9bdb"
* target[5].reference = "urn:uuid:58159a97-5318-5f63-ac29-e9be6be5614f"
* target[6].reference = "urn:uuid:c35c6118-a192-5f90-8440-c99c42e41c51"
* target[7].reference = "urn:uuid:6e95d635-7398-5ac4-837f-83d264e5223e"

Instance: DocProvenanceComputed
InstanceOf: DiGAProvenance
Usage: #inline
* id = "6b493005-af3e-51c8-9321-2143e5f7f774"
* insert ExampleComputedOriginContent(urn:uuid:17e6d2a3-9768-5269-b897-9e3a6cd05aea)
* target[0].reference = "urn:uuid:a2df9398-a4b7-5e27-9dd8-4c4f655d6a5e"
* target[1].reference = "urn:uuid:c3ee395f-4e1a-58ab-93df-53a595f1363e"

Instance: DocProvenance
InstanceOf: DiGAProvenance
Usage: #inline
* id = "b47aabd2-312a-5a79-b905-e4875b508853"
* insert ExampleProvenanceContent(urn:uuid:17e6d2a3-9768-5269-b897-9e3a6cd05aea)
* target[0].reference = "urn:uuid:ea7f89ec-411e-5f37-995d-166f902d723c"
* target[1].reference = "urn:uuid:82ec266c-759c-5144-be52-d1c311b49999"
* target[2].reference = "urn:uuid:57938ea3-8260-5892-a639-b17c337d4adf"
* target[3].reference = "urn:uuid:03074509-0626-58fa-b3dc-258862c5c8e8"
* target[4].reference = "urn:uuid:9fe8e251-c094-5eb1-a8f9-b9e0c603607b"
* target[5].reference = "urn:uuid:4a316180-6a4c-5036-b20d-db806f59b698"
* target[6].reference = "urn:uuid:8b152168-bc2d-55c5-8eab-f0a34f0d9bdb"
* target[7].reference = "urn:uuid:a2df9398-a4b7-5e27-9dd8-4c4f655d6a5e"
* target[8].reference = "urn:uuid:c3ee395f-4e1a-58ab-93df-53a595f1363e"
* target[9].reference = "urn:uuid:58159a97-5318-5f63-ac29-e9be6be5614f"
* target[10].reference = "urn:uuid:c35c6118-a192-5f90-8440-c99c42e41c51"
* target[11].reference = "urn:uuid:6e95d635-7398-5ac4-837f-83d264e5223e"
* target[12].reference = "urn:uuid:7e8babc3-16df-5710-9301-7ebee199f968"
