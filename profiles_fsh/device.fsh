Profile: DiGADevice
Parent: Device
Id: diga-device
Title: "DiGA Device"
Description: "The DiGA (the app in its installed version) that recorded the data and authored the export. Identified by its DiGA-VE-ID (BfArM prescription unit id) and typed with its PZN."
* identifier 1..*
* identifier.system 1..1
* identifier.value 1..1
* identifier ^slicing.discriminator.type = #value
* identifier ^slicing.discriminator.path = "system"
* identifier ^slicing.rules = #open
* identifier contains digaVeId 1..1
* identifier[digaVeId] ^short = "DiGA-VE-ID: id of the DiGA's prescription unit in the BfArM DiGA directory (8 digits)"
* identifier[digaVeId].system = $diga-ve-id (exactly)
* identifier[digaVeId] obeys dgx-dev-1
* type 1..1
* type.coding 1..*
* type.coding ^slicing.discriminator.type = #value
* type.coding ^slicing.discriminator.path = "system"
* type.coding ^slicing.rules = #open
* type.coding contains pzn 1..1
* type.coding[pzn] ^short = "Pharmazentralnummer (PZN) of the DiGA"
* type.coding[pzn].system 1..1
* type.coding[pzn].system = $pzn (exactly)
* type.coding[pzn].code 1..1
* type.coding[pzn] obeys dgx-dev-2
* deviceName 1..*
* deviceName.name 1..1
* deviceName.type 1..1
* version 1..*
* version ^short = "The app version that recorded the data"
* version.value 1..1
* definition 1..1
* definition only Reference(DiGADeviceDefinition)

Invariant: dgx-dev-1
Description: "The DiGA-VE-ID has eight digits."
Severity: #error
Expression: "value.matches('^[0-9]{8}$')"

Invariant: dgx-dev-2
Description: "The PZN has eight digits."
Severity: #error
Expression: "code.matches('^[0-9]{8}$')"

Profile: DiGADeviceDefinition
Parent: DeviceDefinition
Id: diga-device-definition
Title: "DiGA Device Definition"
Description: "The DiGA as a product: application program software (SNOMED CT 706689003), its name and manufacturer."
* type 1..1
* type = $sct#706689003
* type from DiGADeviceDefinitionTypes (required)
* deviceName 1..*
* deviceName.name 1..1
* manufacturer[x] 1..1
* manufacturer[x] only string

RuleSet: ExampleDeviceContent(definition)
* insert ClaimProfile(DiGADevice)
* insert Narrative(DiGA MindJournal version 2.4.1\, DiGA-VE-ID 12345001\, PZN 12345678)
* identifier[digaVeId].system = $diga-ve-id
* identifier[digaVeId].value = "12345001"
* type.coding[pzn] = $pzn#12345678 "MindJournal DiGA"
* status = #active
* deviceName.name = "MindJournal"
* deviceName.type = #user-friendly-name
* version.value = "2.4.1"
* definition.reference = "{definition}"

RuleSet: ExampleDeviceDefinitionContent
* insert ClaimProfile(DiGADeviceDefinition)
* insert Narrative(MindJournal: application program software by Example DiGA GmbH)
* type = $sct#706689003 "Application program software (physical object)"
* deviceName.name = "MindJournal"
* deviceName.type = #user-friendly-name
* manufacturerString = "Example DiGA GmbH"

Instance: ExampleDevice
InstanceOf: DiGADevice
Title: "Example DiGA device"
Usage: #example
* insert ExampleDeviceContent(DeviceDefinition/ExampleDeviceDefinition)

Instance: ExampleDeviceDefinition
InstanceOf: DiGADeviceDefinition
Title: "Example DiGA device definition"
Usage: #example
* insert ExampleDeviceDefinitionContent
