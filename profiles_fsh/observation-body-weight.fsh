ValueSet: BodyWeightUnits
Id: body-weight-units
Title: "Body weight units"
Description: "UCUM units allowed for a body weight."
* $ucum#kg "kilogram"
* $ucum#g "gram"

Profile: DiGABodyWeight
Parent: Observation
Id: diga-body-weight
Title: "DiGA Body Weight"
Description: "A body weight measured or entered in the DiGA."
* status = #final
* category 1..*
* category = $obs-category#vital-signs
* code = $loinc#29463-7 "Body weight"
* subject 1..1
* subject only Reference(DiGAPatient)
* effective[x] 1..1
* effective[x] only dateTime
* value[x] 1..1
* value[x] only Quantity
* valueQuantity.value 1..1
* valueQuantity.system 1..1
* valueQuantity.system = $ucum
* valueQuantity.code 1..1
* valueQuantity.code from BodyWeightUnits (required)

Instance: ExampleBodyWeight
InstanceOf: DiGABodyWeight
Title: "Example body weight"
Usage: #example
* status = #final
* category = $obs-category#vital-signs
* code = $loinc#29463-7 "Body weight"
* subject = Reference(ExamplePatient)
* effectiveDateTime = "2026-03-01T07:30:00+01:00"
* valueQuantity = $ucum#kg "kg"
* valueQuantity.value = 72.4
