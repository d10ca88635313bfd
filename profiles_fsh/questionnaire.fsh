// PHQ-9 and GAD-7: the two Questionnaires (IG artefacts) and the profile of their responses.
// Both instruments were developed by Drs. Spitzer, Williams, Kroenke and colleagues with an
// educational grant from Pfizer Inc.; no permission is required to reproduce, translate, display or
// distribute them. Item and answer codes are LOINC (panel 44249-1 resp. 69737-5, answer list LL358-3).

Profile: DiGAQuestionnaireResponse
Parent: QuestionnaireResponse
Id: diga-questionnaire-response
Title: "DiGA Questionnaire Response (PHQ-9 / GAD-7)"
Description: "The patient's answers to the PHQ-9 or GAD-7 of this IG: every item answered once with a LOINC answer of list LL358-3."
* questionnaire 1..1
* questionnaire obeys dgx-qr-1
* status = #completed (exactly)
* subject 1..1
* subject only Reference(DiGAPatient)
* authored 1..1
* author only Reference(DiGAPatient or DiGADevice)
* source only Reference(DiGAPatient)
* item 1..*
* item.answer 1..1
* item.answer.value[x] 1..1
* item.answer.value[x] only Coding
* item.answer.valueCoding from PhqGadAnswers (required)
* item.answer.item 0..0
* item.item 0..0

Invariant: dgx-qr-1
Description: "The response answers the PHQ-9 or the GAD-7 Questionnaire of this IG (versioned canonical)."
Severity: #error
Expression: "matches('/Questionnaire/diga-(phq9|gad7)[|][^|]+$')"

// --- the Questionnaires -------------------------------------------------------------------

RuleSet: FrequencyItem(index, linkId, code, text)
* item[{index}].linkId = "{linkId}"
* item[{index}].code = $loinc#{code}
* item[{index}].code.version = "2.81"
* item[{index}].text = "{text}"
* item[{index}].type = #choice
* item[{index}].required = true
* item[{index}].answerOption[0].valueCoding = $loinc#LA6568-5 "Not at all"
* item[{index}].answerOption[0].valueCoding.version = "2.81"
* item[{index}].answerOption[0].extension[0].url = $ordinalValue
* item[{index}].answerOption[0].extension[0].valueDecimal = 0
* item[{index}].answerOption[1].valueCoding = $loinc#LA6569-3 "Several days"
* item[{index}].answerOption[1].valueCoding.version = "2.81"
* item[{index}].answerOption[1].extension[0].url = $ordinalValue
* item[{index}].answerOption[1].extension[0].valueDecimal = 1
* item[{index}].answerOption[2].valueCoding = $loinc#LA6570-1 "More than half the days"
* item[{index}].answerOption[2].valueCoding.version = "2.81"
* item[{index}].answerOption[2].extension[0].url = $ordinalValue
* item[{index}].answerOption[2].extension[0].valueDecimal = 2
* item[{index}].answerOption[3].valueCoding = $loinc#LA6571-9 "Nearly every day"
* item[{index}].answerOption[3].valueCoding.version = "2.81"
* item[{index}].answerOption[3].extension[0].url = $ordinalValue
* item[{index}].answerOption[3].extension[0].valueDecimal = 3

RuleSet: PfizerCopyright
* copyright = "Developed by Drs. Robert L. Spitzer, Janet B.W. Williams, Kurt Kroenke and colleagues, with an educational grant from Pfizer Inc. No permission required to reproduce, translate, display or distribute."

Instance: DiGAQuestionnairePHQ9
InstanceOf: Questionnaire
Title: "PHQ-9"
Description: "Patient Health Questionnaire, 9 items (LOINC 44249-1): over the last 2 weeks, how often have you been bothered by the following problems?"
Usage: #definition
* id = "diga-phq9"
* insert DefinitionVersion
* insert Narrative(PHQ-9: nine questions about the last two weeks\, each answered Not at all = 0 to Nearly every day = 3. Total score 0-27.)
* name = "DiGAPHQ9"
* status = #active
* experimental = false
* subjectType = #Patient
* code = $loinc#44249-1 "PHQ-9 quick depression assessment panel [Reported.PHQ]"
* code.version = "2.81"
* insert PfizerCopyright
* insert FrequencyItem(0, phq9-1, 44250-9, Little interest or pleasure in doing things)
* insert FrequencyItem(1, phq9-2, 44255-8, Feeling down\, depressed\, or hopeless)
* insert FrequencyItem(2, phq9-3, 44259-0, Trouble falling or staying asleep\, or sleeping too much)
* insert FrequencyItem(3, phq9-4, 44254-1, Feeling tired or having little energy)
* insert FrequencyItem(4, phq9-5, 44251-7, Poor appetite or overeating)
* insert FrequencyItem(5, phq9-6, 44258-2, Feeling bad about yourself - or that you are a failure or have let yourself or your family down)
* insert FrequencyItem(6, phq9-7, 44252-5, Trouble concentrating on things\, such as reading the newspaper or watching television)
* insert FrequencyItem(7, phq9-8, 44253-3, Moving or speaking so slowly that other people could have noticed. Or the opposite - being so fidgety or restless that you have been moving around a lot more than usual)
* insert FrequencyItem(8, phq9-9, 44260-8, Thoughts that you would be better off dead\, or of hurting yourself in some way)

Instance: DiGAQuestionnaireGAD7
InstanceOf: Questionnaire
Title: "GAD-7"
Description: "Generalized Anxiety Disorder, 7 items (LOINC 69737-5): over the last 2 weeks, how often have you been bothered by the following problems?"
Usage: #definition
* id = "diga-gad7"
* insert DefinitionVersion
* insert Narrative(GAD-7: seven questions about the last two weeks\, each answered Not at all = 0 to Nearly every day = 3. Total score 0-21.)
* name = "DiGAGAD7"
* status = #active
* experimental = false
* subjectType = #Patient
* code = $loinc#69737-5 "Generalized anxiety disorder 7 item (GAD-7)"
* code.version = "2.81"
* insert PfizerCopyright
* insert FrequencyItem(0, gad7-1, 69725-0, Feeling nervous\, anxious\, or on edge)
* insert FrequencyItem(1, gad7-2, 68509-9, Not being able to stop or control worrying)
* insert FrequencyItem(2, gad7-3, 69733-4, Worrying too much about different things)
* insert FrequencyItem(3, gad7-4, 69734-2, Trouble relaxing)
* insert FrequencyItem(4, gad7-5, 69735-9, Being so restless that it is hard to sit still)
* insert FrequencyItem(5, gad7-6, 69689-8, Becoming easily annoyed or irritable)
* insert FrequencyItem(6, gad7-7, 69736-7, Feeling afraid as if something awful might happen)

// --- example responses ---------------------------------------------------------------------

RuleSet: Answer(index, linkId, answer)
* item[{index}].linkId = "{linkId}"
* item[{index}].answer.valueCoding = $loinc#{answer}

RuleSet: ExamplePHQ9ResponseContent(patient)
* insert ClaimProfile(DiGAQuestionnaireResponse)
* insert Narrative(PHQ-9 answered on 2026-03-05: total score 11.)
* insert AnswersQuestionnaire(DiGAQuestionnairePHQ9)
* status = #completed
* subject.reference = "{patient}"
* author.reference = "{patient}"
* source.reference = "{patient}"
* authored = "2026-03-05T19:20:00+01:00"
* insert Answer(0, phq9-1, LA6570-1)
* insert Answer(1, phq9-2, LA6570-1)
* insert Answer(2, phq9-3, LA6571-9)
* insert Answer(3, phq9-4, LA6569-3)
* insert Answer(4, phq9-5, LA6569-3)
* insert Answer(5, phq9-6, LA6569-3)
* insert Answer(6, phq9-7, LA6569-3)
* insert Answer(7, phq9-8, LA6568-5)
* insert Answer(8, phq9-9, LA6568-5)

RuleSet: ExampleGAD7ResponseContent(patient)
* insert ClaimProfile(DiGAQuestionnaireResponse)
* insert Narrative(GAD-7 answered on 2026-03-05: total score 7.)
* insert AnswersQuestionnaire(DiGAQuestionnaireGAD7)
* status = #completed
* subject.reference = "{patient}"
* author.reference = "{patient}"
* source.reference = "{patient}"
* authored = "2026-03-05T19:25:00+01:00"
* insert Answer(0, gad7-1, LA6569-3)
* insert Answer(1, gad7-2, LA6570-1)
* insert Answer(2, gad7-3, LA6569-3)
* insert Answer(3, gad7-4, LA6569-3)
* insert Answer(4, gad7-5, LA6568-5)
* insert Answer(5, gad7-6, LA6569-3)
* insert Answer(6, gad7-7, LA6569-3)

Instance: ExamplePHQ9Response
InstanceOf: DiGAQuestionnaireResponse
Title: "Example PHQ-9 response"
Usage: #example
* insert ExamplePHQ9ResponseContent(Patient/ExamplePatient)

Instance: ExampleGAD7Response
InstanceOf: DiGAQuestionnaireResponse
Title: "Example GAD-7 response"
Usage: #example
* insert ExampleGAD7ResponseContent(Patient/ExamplePatient)
