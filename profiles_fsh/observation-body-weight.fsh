Profile: DiGABodyWeight
Parent: $vs-bodyweight
Id: diga-body-weight
Title: "DiGA Body Weight"
Description: "A body weight measured or entered in the DiGA (LOINC 29463-7, kg or g). Derives from the FHIR core body weight profile."
* insert DiGAObservationBase
// the LOINC code is fixed by the core profile's code slice; SUSHI cannot combine a CodeableConcept pattern with a second coding slice
* insert SnomedCodingSlice(code.coding, 27113001)
* insert UcumValue(BodyWeightUnits)

RuleSet: ExampleBodyWeightContent(patient)
* insert ClaimProfile(DiGABodyWeight)
* insert Narrative(Body weight 72.4 kg on 2026-03-01 07:30)
* status = #final
* category[VSCat] = $obs-category#vital-signs "Vital Signs"
* code = $loinc#29463-7 "Body weight"
* subject.reference = "{patient}"
* performer.reference = "{patient}"
* effectiveDateTime = "2026-03-01T07:30:00+01:00"
* valueQuantity = $ucum#kg "kg"
* valueQuantity.value = 72.4

Instance: ExampleBodyWeight
InstanceOf: DiGABodyWeight
Title: "Example body weight"
Usage: #example
* insert ExampleBodyWeightContent(Patient/ExamplePatient)
