// Measurements other than body weight (which keeps its seed file observation-body-weight.fsh).
// Height, heart rate and blood pressure derive from the FHIR core vital signs profiles (as does body
// weight): the reference validator checks every Observation carrying one of their LOINC codes against
// them anyway, so deriving makes our snapshots say what is really enforced. Blood glucose is no core
// vital sign; it gets the same category slice (VSCat) by rule set.

Profile: DiGABodyHeight
Parent: $vs-bodyheight
Id: diga-body-height
Title: "DiGA Body Height"
Description: "A body height entered in the DiGA (LOINC 8302-2, cm). Derives from the FHIR core body height profile."
* insert DiGAObservationBase
// the LOINC code is fixed by the core profile's code slice; SUSHI cannot combine a CodeableConcept pattern with a second coding slice
* insert SnomedCodingSlice(code.coding, 50373000)
* insert UcumValue(BodyHeightUnits)

Profile: DiGAHeartRate
Parent: $vs-heartrate
Id: diga-heart-rate
Title: "DiGA Heart Rate"
Description: "A heart rate measured by or entered in the DiGA (LOINC 8867-4, /min). Derives from the FHIR core heart rate profile."
* insert DiGAObservationBase
// the LOINC code is fixed by the core profile's code slice; SUSHI cannot combine a CodeableConcept pattern with a second coding slice
* insert SnomedCodingSlice(code.coding, 364075005)
* value[x] 1..1
* value[x] only Quantity
// valueQuantity: value, unit, system (UCUM) and code (/min) are fixed by the core heartrate profile

Profile: DiGABloodPressure
Parent: $vs-bp
Id: diga-blood-pressure
Title: "DiGA Blood Pressure"
Description: "A blood pressure measurement (LOINC panel 85354-9) with systolic (8480-6) and diastolic (8462-4) components in mm[Hg]. Derives from the FHIR core blood pressure profile."
* insert DiGAObservationBase
// the LOINC code is fixed by the core profile's code slice; SUSHI cannot combine a CodeableConcept pattern with a second coding slice
* insert SnomedCodingSlice(code.coding, 75367002)
* insert SnomedCodingSlice(component[SystolicBP].code.coding, 271649006)
* insert SnomedCodingSlice(component[DiastolicBP].code.coding, 271650006)
* value[x] 0..0
* component[SystolicBP].value[x] 1..1
* component[SystolicBP].value[x] only Quantity
* component[DiastolicBP].value[x] 1..1
* component[DiastolicBP].value[x] only Quantity
// component valueQuantity: value, unit, system (UCUM) and code (mm[Hg]) are fixed by the core bp profile

Profile: DiGABloodGlucose
Parent: Observation
Id: diga-blood-glucose
Title: "DiGA Blood Glucose"
Description: "A blood glucose concentration measured by the patient: LOINC 15074-8 in mmol/L or LOINC 2339-0 in mg/dL."
* insert DiGAObservationBase
* insert VitalSignsCategory
* code from BloodGlucoseCodes (required)
* code.coding ^slicing.discriminator[0].type = #value
* code.coding ^slicing.discriminator[0].path = "system"
* code.coding ^slicing.rules = #open
* code.coding ^slicing.description = "By code system: one LOINC coding (from blood-glucose-codes), at most one SNOMED CT coding."
* code.coding contains loinc 1..1
* code.coding[loinc] ^short = "The LOINC code: 15074-8 (mmol/L) or 2339-0 (mg/dL)"
* code.coding[loinc].system 1..1
* code.coding[loinc].system = $loinc (exactly)
* code.coding[loinc].code 1..1
* code.coding[loinc] from BloodGlucoseCodes (required)
* insert SnomedCodingSlice(code.coding, 434912009)
* insert UcumValue(BloodGlucoseUnits)
* obeys dgx-glu-1

Invariant: dgx-glu-1
Description: "Code and unit belong together: LOINC 15074-8 in mmol/L or LOINC 2339-0 in mg/dL."
Severity: #error
Expression: "(code.coding.where(system = 'http://loinc.org' and code = '15074-8').exists() and value.ofType(Quantity).code = 'mmol/L') or (code.coding.where(system = 'http://loinc.org' and code = '2339-0').exists() and value.ofType(Quantity).code = 'mg/dL')"

RuleSet: ExampleBodyHeightContent(patient)
* insert ClaimProfile(DiGABodyHeight)
* insert Narrative(Body height 168 cm on 2026-03-01)
* status = #final
* category[VSCat] = $obs-category#vital-signs "Vital Signs"
* code = $loinc#8302-2 "Body height"
* subject.reference = "{patient}"
* performer.reference = "{patient}"
* effectiveDateTime = "2026-03-01T07:31:00+01:00"
* valueQuantity = $ucum#cm "cm"
* valueQuantity.value = 168

RuleSet: ExampleHeartRateContent(patient)
* insert ClaimProfile(DiGAHeartRate)
* insert Narrative(Heart rate 68 /min on 2026-03-02 08:15)
* status = #final
* category[VSCat] = $obs-category#vital-signs "Vital Signs"
* code = $loinc#8867-4 "Heart rate"
* subject.reference = "{patient}"
* performer.reference = "{patient}"
* effectiveDateTime = "2026-03-02T08:15:00+01:00"
* valueQuantity = $ucum#/min "beats/minute"
* valueQuantity.value = 68

RuleSet: ExampleBloodPressureContent(patient)
* insert ClaimProfile(DiGABloodPressure)
* insert Narrative(Blood pressure 128/82 mm[Hg] on 2026-03-02 08:15)
* status = #final
* category[VSCat] = $obs-category#vital-signs "Vital Signs"
* code = $loinc#85354-9 "Blood pressure panel with all children optional"
* subject.reference = "{patient}"
* performer.reference = "{patient}"
* effectiveDateTime = "2026-03-02T08:15:00+01:00"
* component[SystolicBP].code = $loinc#8480-6 "Systolic blood pressure"
* component[SystolicBP].valueQuantity = $ucum#mm[Hg] "mmHg"
* component[SystolicBP].valueQuantity.value = 128
* component[DiastolicBP].code = $loinc#8462-4 "Diastolic blood pressure"
* component[DiastolicBP].valueQuantity = $ucum#mm[Hg] "mmHg"
* component[DiastolicBP].valueQuantity.value = 82

RuleSet: ExampleBloodGlucoseContent(patient)
* insert ClaimProfile(DiGABloodGlucose)
* insert Narrative(Blood glucose 5.4 mmol/L on 2026-03-03 07:00)
* status = #final
* category[VSCat] = $obs-category#vital-signs "Vital Signs"
* code = $loinc#15074-8 "Glucose [Moles/volume] in Blood"
* subject.reference = "{patient}"
* performer.reference = "{patient}"
* effectiveDateTime = "2026-03-03T07:00:00+01:00"
* valueQuantity = $ucum#mmol/L "mmol/L"
* valueQuantity.value = 5.4

Instance: ExampleBodyHeight
InstanceOf: DiGABodyHeight
Title: "Example body height"
Usage: #example
* insert ExampleBodyHeightContent(Patient/ExamplePatient)

Instance: ExampleHeartRate
InstanceOf: DiGAHeartRate
Title: "Example heart rate"
Usage: #example
* insert ExampleHeartRateContent(Patient/ExamplePatient)

Instance: ExampleBloodPressure
InstanceOf: DiGABloodPressure
Title: "Example blood pressure"
Usage: #example
* insert ExampleBloodPressureContent(Patient/ExamplePatient)

Instance: ExampleBloodGlucose
InstanceOf: DiGABloodGlucose
Title: "Example blood glucose (mmol/L)"
Usage: #example
* insert ExampleBloodGlucoseContent(Patient/ExamplePatient)

Instance: ExampleBloodGlucoseMgdl
InstanceOf: DiGABloodGlucose
Title: "Example blood glucose (mg/dL)"
Usage: #example
* insert ClaimProfile(DiGABloodGlucose)
* insert Narrative(Blood glucose 97 mg/dL on 2026-03-04 07:05)
* status = #final
* category[VSCat] = $obs-category#vital-signs "Vital Signs"
* code = $loinc#2339-0 "Glucose [Mass/volume] in Blood"
* subject = Reference(ExamplePatient)
* performer = Reference(ExamplePatient)
* effectiveDateTime = "2026-03-04T07:05:00+01:00"
* valueQuantity = $ucum#mg/dL "mg/dL"
* valueQuantity.value = 97
