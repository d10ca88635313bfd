import java.io.ByteArrayOutputStream;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;

import org.hl7.fhir.r4.formats.IParser.OutputStyle;
import org.hl7.fhir.r4.formats.JsonParser;
import org.hl7.fhir.r4.formats.XmlParser;
import org.hl7.fhir.r4.model.Resource;

/**
 * The HL7 Java library's own FHIR R4 JSON -> XML conversion (org.hl7.fhir.r4.formats), as a second opinion on
 * exporter/formats/xml.py. Run as a single-file program on the reference validator's jars (nothing to build):
 * <pre>
 *   java -cp '.tools/java/lib/*' tools/java/convert/Hl7JsonToXml.java OUT_DIR IN.json...
 * </pre>
 * writes OUT_DIR/&lt;name&gt;.xml for each IN.json (the same file name with .xml); a file the library cannot
 * parse is reported on stderr and the exit code is 1.
 */
public final class Hl7JsonToXml {
  public static void main(String[] args) throws Exception {
    Path out = Paths.get(args[0]);
    Files.createDirectories(out);
    int failed = 0;
    for (int i = 1; i < args.length; i++) {
      Path in = Paths.get(args[i]);
      String name = in.getFileName().toString().replaceAll("\\.json$", "") + ".xml";
      try (InputStream is = new FileInputStream(in.toFile());
           OutputStream os = new FileOutputStream(out.resolve(name).toFile())) {
        Resource resource = new JsonParser().parse(is);
        XmlParser xml = new XmlParser();
        xml.setOutputStyle(OutputStyle.NORMAL);
        xml.compose(os, resource);
      } catch (Exception e) {
        failed++;
        System.err.println(in + ": " + e);
      }
    }
    System.exit(failed == 0 ? 0 : 1);
  }
}
