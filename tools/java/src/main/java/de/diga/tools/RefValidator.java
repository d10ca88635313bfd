package de.diga.tools;

import java.io.BufferedReader;
import java.io.ByteArrayInputStream;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;
import com.google.gson.Strictness;
import com.google.gson.TypeAdapter;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;

import org.hl7.fhir.r5.elementmodel.Manager.FhirFormat;
import org.fhir.ucum.UcumService;
import org.hl7.fhir.r5.model.CodeSystem;
import org.hl7.fhir.r5.model.Coding;
import org.hl7.fhir.r5.model.Enumerations;
import org.hl7.fhir.r5.model.StructureDefinition;
import org.hl7.fhir.r5.terminologies.providers.SpecialCodeSystem;
import org.hl7.fhir.r5.utils.UserDataNames;
import org.hl7.fhir.r5.utils.validation.constants.ReferenceValidationPolicy;
import org.hl7.fhir.utilities.http.ManagedWebAccess;
import org.hl7.fhir.utilities.validation.ValidationMessage;
import org.hl7.fhir.utilities.validation.ValidationMessage.IssueSeverity;
import org.hl7.fhir.utilities.validation.ValidationMessage.IssueType;
import org.hl7.fhir.utilities.validation.ValidationMessage.Source;
import org.hl7.fhir.validation.ValidationEngine;
import org.hl7.fhir.validation.instance.InstanceValidator;
import org.hl7.fhir.validation.instance.advisor.BasePolicyAdvisorForFullValidation;

/**
 * The HL7 FHIR reference validator (org.hl7.fhir.validation) as a long-running JSON-lines server.
 *
 * <p>Usage: {@code java -cp refvalidator.jar:lib/* de.diga.tools.RefValidator [--ig <folder|.tgz|id#version>]...
 * [--fhir-home <HOME-like folder holding .fhir/packages>] [--version 4.0.1] [--error-on <messageId>]...
 * [--no-default-error-on] [--no-local-ucum] [--allow-network]}
 *
 * <p>Loads FHIR R4 (hl7.fhir.r4.core#4.0.1) from the local FHIR package cache plus every {@code --ig}, with no
 * terminology server (like the CLI's {@code -tx n/a}), with all web access prohibited and references to resources
 * outside the validated content not resolved (the CLI default); a claimed profile it does not know is an error
 * (see {@link #DEFAULT_ERROR_ON}); UCUM units are checked by the embedded UCUM service (see
 * {@link #installLocalUcum}). Then it writes
 * {@code {"ready": true, ...}} on stdout. It then reads one JSON request per line on stdin:
 * <pre>
 *   {"id": "1", "resource": {...FHIR JSON...}, "profiles": ["canonical|version", ...]}
 *   {"id": "2", "path": "/some/file.json"}          (JSON or XML file, validated byte for byte)
 *   {"id": "3", "text": "...raw FHIR JSON or XML..."}
 * </pre>
 * and answers each with exactly one line {@code {"id": ..., "outcome": <R4 OperationOutcome>}}, in order.
 * Every issue carries the validator's message id (extension operationoutcome-message-id and
 * details.coding with system {@value #MESSAGE_ID_SYSTEM}). A bad request gets an outcome with a fatal
 * issue; the server keeps going. stdout carries only protocol lines; all logging goes to stderr. EOF on
 * stdin ends the process (exit 0).
 */
public final class RefValidator {

  static final String MESSAGE_ID_SYSTEM = "http://hl7.org/fhir/java-core-messageId";
  static final String EXT_MESSAGE_ID = "http://hl7.org/fhir/StructureDefinition/operationoutcome-message-id";
  static final String EXT_LINE = "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-line";
  static final String EXT_COL = "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-col";
  static final String EXT_SOURCE = "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-source";
  static final String CORE_PACKAGE = "hl7.fhir.r4.core#4.0.1";
  static final String UCUM = "http://unitsofmeasure.org";
  /**
   * Messages raised from warning to error by default: a resource that claims a profile the validator does not
   * know is rejected (validators used in Germany do the same), instead of being validated against the base only.
   */
  static final List<String> DEFAULT_ERROR_ON = List.of(
      "VALIDATION_VAL_PROFILE_UNKNOWN",
      "VALIDATION_VAL_PROFILE_UNKNOWN_NOT_POLICY",
      "VALIDATION_VAL_PROFILE_UNKNOWN_ERROR",
      "VALIDATION_VAL_PROFILE_UNKNOWN_ERROR_NETWORK");

  private static final Gson GSON = new GsonBuilder().disableHtmlEscaping().serializeNulls().create();
  private static final TypeAdapter<JsonElement> ELEMENT_ADAPTER = GSON.getAdapter(JsonElement.class);

  private final ValidationEngine engine;
  private final Map<FhirFormat, InstanceValidator> validators = new EnumMap<>(FhirFormat.class);

  private RefValidator(ValidationEngine engine) {
    this.engine = engine;
  }

  public static void main(String[] args) {
    // stdout is the protocol channel: keep a private handle on it and send everything else to stderr
    PrintStream protocol = new PrintStream(new FileOutputStream(FileDescriptor.out), false, StandardCharsets.UTF_8);
    System.setOut(System.err);
    setDefault("org.slf4j.simpleLogger.logFile", "System.err");
    setDefault("org.slf4j.simpleLogger.defaultLogLevel", "info");
    setDefault("org.slf4j.simpleLogger.showDateTime", "true");
    setDefault("org.slf4j.simpleLogger.dateTimeFormat", "HH:mm:ss.SSS");

    List<String> igs = new ArrayList<>();
    List<String> errorOn = new ArrayList<>(DEFAULT_ERROR_ON);
    String version = "4.0.1";
    boolean allowNetwork = false;
    boolean localUcum = true;
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      switch (a) {
        case "--ig":
          igs.add(need(args, ++i, a));
          break;
        case "--fhir-home":
          // FilesystemPackageCacheManager looks for <user.home>/.fhir/packages
          System.setProperty("user.home", Paths.get(need(args, ++i, a)).toAbsolutePath().toString());
          break;
        case "--version":
          version = need(args, ++i, a);
          break;
        case "--error-on":
          errorOn.add(need(args, ++i, a));
          break;
        case "--no-default-error-on":
          errorOn.removeAll(DEFAULT_ERROR_ON);
          break;
        case "--no-local-ucum":
          localUcum = false;
          break;
        case "--allow-network":
          allowNetwork = true;
          break;
        default:
          System.err.println("RefValidator: unknown argument " + a);
          System.exit(64);
      }
    }
    if (!allowNetwork) {
      ManagedWebAccess.setAccessPolicy(ManagedWebAccess.WebAccessPolicy.PROHIBITED);
    }

    long t0 = System.nanoTime();
    RefValidator server;
    try {
      server = new RefValidator(buildEngine(version, igs, errorOn, localUcum));
    } catch (Throwable t) {
      System.err.println("RefValidator: could not load the validation engine: " + t);
      t.printStackTrace(System.err);
      JsonObject fail = new JsonObject();
      fail.addProperty("ready", false);
      fail.addProperty("error", String.valueOf(t));
      protocol.println(GSON.toJson(fail));
      protocol.flush();
      System.exit(2);
      return;
    }
    long ms = (System.nanoTime() - t0) / 1_000_000;
    JsonObject ready = new JsonObject();
    ready.addProperty("ready", true);
    ready.addProperty("fhirVersion", version);
    ready.addProperty("validator", validatorVersion());
    ready.addProperty("startupMs", ms);
    JsonArray igList = new JsonArray();
    igs.forEach(igList::add);
    ready.add("igs", igList);
    JsonArray errorOnList = new JsonArray();
    errorOn.forEach(errorOnList::add);
    ready.add("errorOn", errorOnList);
    ready.addProperty("localUcum", localUcum);
    ready.addProperty("packages", server.engine.getContext().loadedPackageSummary());
    protocol.println(GSON.toJson(ready));
    protocol.flush();
    System.err.println("RefValidator: ready after " + ms + " ms");

    try (BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
      String line;
      while ((line = in.readLine()) != null) {
        if (line.isBlank()) {
          continue;
        }
        JsonObject answer;
        try {
          answer = server.handle(line);
        } catch (Throwable t) { // never let one request kill the server
          answer = new JsonObject();
          answer.add("id", JsonNull.INSTANCE);
          answer.add("outcome", outcome(List.of(fatal("internal error while handling the request: " + t,
              IssueType.EXCEPTION, "REFVALIDATOR_EXCEPTION"))));
        }
        protocol.println(GSON.toJson(answer));
        protocol.flush();
      }
    } catch (Throwable t) {
      System.err.println("RefValidator: stdin failed: " + t);
      System.exit(3);
    }
    System.exit(0);
  }

  static ValidationEngine buildEngine(String version, List<String> igs, List<String> errorOn, boolean localUcum)
      throws Exception {
    ValidationEngine engine = new ValidationEngine.ValidationEngineBuilder()
        .withVersion(version)
        .withUserAgent("diga-exporter-refvalidator")
        .withNoTerminologyServer()
        .withCanRunWithoutTerminologyServer(true)
        .fromSource(CORE_PACKAGE);
    // -tx n/a: no terminology server at all
    engine.setTerminologyServer(null, null, null, false);
    engine.setAnyExtensionsAllowed(true); // the CLI default
    engine.setLogValidationProgress(false);
    // like the CLI without -check-references: references to resources outside the validated content are
    // not resolved (no fetcher, no web); references inside a Bundle are still checked
    engine.setPolicyAdvisor(new BasePolicyAdvisorForFullValidation(ReferenceValidationPolicy.IGNORE, null));
    for (String ig : igs) {
      System.err.println("RefValidator: loading " + ig);
      engine.getIgLoader().loadIg(engine.getIgs(), engine.getBinaries(), ig, false);
    }
    System.err.println("RefValidator: packages " + engine.getContext().loadedPackageSummary());
    if (localUcum) {
      installLocalUcum(engine);
    }
    engine.prepare(); // snapshots for anything that lacks one
    // raise the listed message ids to error, through the validator's own per-message control
    InstanceValidator outer = engine.getValidator(FhirFormat.JSON);
    for (String id : errorOn) {
      engine.getValidationControl().put(id, outer.new ValidationControl(true, IssueSeverity.ERROR));
    }
    return engine;
  }

  /**
   * Makes UCUM a known, complete code system backed by the validator's own embedded UCUM service
   * (ucum-essence.xml, the library tx.fhir.org uses). Without it, and without a terminology server, the validator
   * cannot check a Coding or Quantity against a required value set of UCUM units at all: it reports
   * "A definition for CodeSystem 'http://unitsofmeasure.org' could not be found" as an error even for a unit that
   * the value set lists (e.g. mm[Hg] in the core blood-pressure profile). With it, a unit is valid when the UCUM
   * grammar accepts it, and value-set membership is checked as usual. Switch off with --no-local-ucum.
   */
  static void installLocalUcum(ValidationEngine engine) {
    UcumService ucum = engine.getContext().getUcumService();
    if (ucum == null || engine.getContext().fetchCodeSystem(UCUM) != null) {
      return;
    }
    CodeSystem cs = new CodeSystem();
    cs.setId("ucum-local");
    cs.setUrl(UCUM);
    cs.setName("UCUM");
    cs.setTitle("Unified Code for Units of Measure (grammar checked by the embedded UCUM service)");
    cs.setStatus(Enumerations.PublicationStatus.ACTIVE);
    cs.setCaseSensitive(true);
    cs.setContent(Enumerations.CodeSystemContentMode.COMPLETE);
    cs.setUserData(UserDataNames.tx_cs_special, new UcumCodeSystem(ucum));
    engine.getContext().cacheResource(cs);
    System.err.println("RefValidator: UCUM codes are checked locally (" + ucum.ucumIdentification().getVersion() + ")");
  }

  /** A grammar-based code system: every code the UCUM service validates is a concept. */
  static final class UcumCodeSystem extends SpecialCodeSystem {
    private final UcumService ucum;

    UcumCodeSystem(UcumService ucum) {
      this.ucum = ucum;
    }

    @Override
    public CodeSystem.ConceptDefinitionComponent findConcept(Coding code) {
      String c = code.getCode();
      if (c == null || c.isEmpty() || ucum.validate(c) != null) {
        return null;
      }
      // UCUM has no normative display: the code itself (and whatever display/unit the instance uses) is fine
      CodeSystem.ConceptDefinitionComponent concept = new CodeSystem.ConceptDefinitionComponent(c);
      concept.setDisplay(code.hasDisplay() ? code.getDisplay() : c);
      return concept;
    }

    @Override
    public boolean inactive(String code) {
      return false;
    }
  }

  JsonObject handle(String line) {
    JsonObject answer = new JsonObject();
    answer.add("id", JsonNull.INSTANCE);
    JsonElement parsed;
    try {
      parsed = parseStrict(line);
    } catch (Exception e) {
      answer.add("outcome", outcome(List.of(fatal("request is not valid JSON: " + e.getMessage()))));
      return answer;
    }
    if (!parsed.isJsonObject()) {
      answer.add("outcome", outcome(List.of(fatal("request is not a JSON object"))));
      return answer;
    }
    JsonObject req = parsed.getAsJsonObject();
    if (req.has("id")) {
      answer.add("id", req.get("id"));
    }
    try {
      answer.add("outcome", outcome(handleRequest(req)));
    } catch (Exception e) { // e.g. a field of the wrong JSON type
      answer.add("outcome", outcome(List.of(fatal("bad request: " + e))));
    }
    return answer;
  }

  List<ValidationMessage> handleRequest(JsonObject req) {
    byte[] content;
    FhirFormat format = FhirFormat.JSON;
    try {
      if (req.has("resource")) {
        JsonElement r = req.get("resource");
        if (!r.isJsonObject()) {
          return List.of(fatal("'resource' must be a JSON object"));
        }
        content = GSON.toJson(r).getBytes(StandardCharsets.UTF_8);
      } else if (req.has("text")) {
        content = req.get("text").getAsString().getBytes(StandardCharsets.UTF_8);
        format = sniff(content);
      } else if (req.has("path")) {
        Path p = Paths.get(req.get("path").getAsString());
        content = Files.readAllBytes(p);
        format = p.toString().toLowerCase().endsWith(".xml") ? FhirFormat.XML : sniff(content);
      } else {
        return List.of(fatal("request has none of 'resource', 'text', 'path'"));
      }
    } catch (Exception e) {
      return List.of(fatal("cannot read the resource: " + e));
    }

    List<String> profiles = new ArrayList<>();
    if (req.has("profiles") && req.get("profiles").isJsonArray()) {
      for (JsonElement p : req.getAsJsonArray("profiles")) {
        profiles.add(p.getAsString());
      }
    }
    return validate(content, format, profiles);
  }

  List<ValidationMessage> validate(byte[] content, FhirFormat format, List<String> profiles) {
    List<ValidationMessage> messages = new ArrayList<>();
    List<StructureDefinition> sds = new ArrayList<>();
    for (String p : profiles) {
      StructureDefinition sd = engine.getContext().fetchResource(StructureDefinition.class, p);
      if (sd == null) {
        ValidationMessage vm = new ValidationMessage(Source.InstanceValidator, IssueType.NOTFOUND, "",
            "Unable to resolve the requested profile " + p, IssueSeverity.ERROR);
        vm.setMessageId("REFVALIDATOR_UNKNOWN_PROFILE");
        messages.add(vm);
      } else {
        sds.add(sd);
      }
    }
    if (!messages.isEmpty()) {
      return messages;
    }
    try {
      // one InstanceValidator per format, reused like the IG publisher does: creating one costs ~40 ms,
      // a validation of a small resource ~5 ms
      InstanceValidator validator = validators.get(format);
      if (validator == null) {
        validator = engine.getValidator(format);
        validators.put(format, validator);
      }
      validator.validate(null, messages, new ByteArrayInputStream(content), format, sds);
    } catch (Throwable t) {
      validators.remove(format); // its state is unknown now: the next request gets a fresh one
      System.err.println("RefValidator: validation failed: " + t);
      messages.add(fatal("the validator failed: " + t, IssueType.EXCEPTION, "REFVALIDATOR_EXCEPTION"));
    }
    return messages;
  }

  /** Strict RFC 8259 parsing of one whole line (Gson's JsonParser is lenient and would accept `garbage`). */
  static JsonElement parseStrict(String text) throws java.io.IOException {
    JsonReader reader = new JsonReader(new StringReader(text));
    reader.setStrictness(Strictness.STRICT);
    JsonElement element = ELEMENT_ADAPTER.read(reader);
    if (reader.peek() != JsonToken.END_DOCUMENT) {
      throw new java.io.IOException("trailing content after the JSON value");
    }
    return element;
  }

  static FhirFormat sniff(byte[] content) {
    for (byte b : content) {
      if (b == '<') {
        return FhirFormat.XML;
      }
      if (!Character.isWhitespace(b) && b != (byte) 0xEF && b != (byte) 0xBB && b != (byte) 0xBF) {
        return FhirFormat.JSON;
      }
    }
    return FhirFormat.JSON;
  }

  static ValidationMessage fatal(String text) {
    return fatal(text, IssueType.INVALID, "REFVALIDATOR_BAD_REQUEST");
  }

  static ValidationMessage fatal(String text, IssueType type, String messageId) {
    ValidationMessage vm = new ValidationMessage(Source.InstanceValidator, type, "", text, IssueSeverity.FATAL);
    vm.setMessageId(messageId);
    return vm;
  }

  /** R4 OperationOutcome JSON, duplicates removed, "All OK" information issue when there is nothing. */
  static JsonObject outcome(List<ValidationMessage> messages) {
    JsonObject oo = new JsonObject();
    oo.addProperty("resourceType", "OperationOutcome");
    JsonArray issues = new JsonArray();
    Set<String> seen = new LinkedHashSet<>();
    for (ValidationMessage m : messages) {
      String key = m.getLevel() + "|" + m.getLocation() + "|" + m.getMessage();
      if (!seen.add(key)) {
        continue;
      }
      issues.add(issue(m));
    }
    if (issues.isEmpty()) {
      JsonObject ok = new JsonObject();
      ok.addProperty("severity", "information");
      ok.addProperty("code", "informational");
      JsonObject details = new JsonObject();
      details.addProperty("text", "All OK");
      ok.add("details", details);
      issues.add(ok);
    }
    oo.add("issue", issues);
    return oo;
  }

  static JsonObject issue(ValidationMessage m) {
    JsonObject issue = new JsonObject();
    JsonArray ext = new JsonArray();
    if (m.getLine() >= 0) {
      ext.add(extension(EXT_LINE, "valueInteger", new JsonPrimitive(m.getLine())));
    }
    if (m.getCol() >= 0) {
      ext.add(extension(EXT_COL, "valueInteger", new JsonPrimitive(m.getCol())));
    }
    if (m.getSource() != null) {
      ext.add(extension(EXT_SOURCE, "valueString", new JsonPrimitive(m.getSource().name())));
    }
    if (m.getMessageId() != null) {
      ext.add(extension(EXT_MESSAGE_ID, "valueString", new JsonPrimitive(m.getMessageId())));
    }
    if (!ext.isEmpty()) {
      issue.add("extension", ext);
    }
    IssueSeverity level = m.getLevel() == null || m.getLevel() == IssueSeverity.NULL ? IssueSeverity.ERROR : m.getLevel();
    issue.addProperty("severity", level.toCode());
    IssueType type = m.getType() == null || m.getType() == IssueType.NULL ? IssueType.PROCESSING : m.getType();
    issue.addProperty("code", type.toCode());
    JsonObject details = new JsonObject();
    if (m.getMessageId() != null) {
      JsonObject coding = new JsonObject();
      coding.addProperty("system", MESSAGE_ID_SYSTEM);
      coding.addProperty("code", m.getMessageId());
      JsonArray codings = new JsonArray();
      codings.add(coding);
      details.add("coding", codings);
    }
    details.addProperty("text", m.getMessage() == null ? "" : m.getMessage());
    issue.add("details", details);
    StringBuilder diag = new StringBuilder();
    if (m.getLine() >= 0) {
      diag.append("Line ").append(m.getLine()).append(", Col ").append(m.getCol());
    }
    if (m.getInvId() != null) {
      diag.append(diag.length() > 0 ? "; " : "").append("invariant ").append(m.getInvId());
    }
    if (m.getDiagnostics() != null) {
      diag.append(diag.length() > 0 ? "; " : "").append(m.getDiagnostics());
    }
    if (diag.length() > 0) {
      issue.addProperty("diagnostics", diag.toString());
    }
    if (m.getLocation() != null && !m.getLocation().isEmpty()) {
      JsonArray expr = new JsonArray();
      expr.add(m.getLocation());
      issue.add("expression", expr);
      JsonArray loc = new JsonArray();
      loc.add(m.getLocation());
      issue.add("location", loc);
    }
    return issue;
  }

  static JsonObject extension(String url, String valueKey, JsonElement value) {
    JsonObject e = new JsonObject();
    e.addProperty("url", url);
    e.add(valueKey, value);
    return e;
  }

  static String validatorVersion() {
    Package p = ValidationEngine.class.getPackage();
    String v = p == null ? null : p.getImplementationVersion();
    if (v == null) {
      try {
        v = org.hl7.fhir.utilities.VersionUtil.getVersion();
      } catch (Throwable t) {
        v = "unknown";
      }
    }
    return v;
  }

  private static String need(String[] args, int i, String flag) {
    if (i >= args.length) {
      System.err.println("RefValidator: " + flag + " needs a value");
      System.exit(64);
    }
    return args[i];
  }

  private static void setDefault(String key, String value) {
    if (System.getProperty(key) == null) {
      System.setProperty(key, value);
    }
  }
}
