package keel.server;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import keel.core.KeelException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reads a secrets file: {@code NAME=value} lines, blank lines and {@code #} comments. Values are
 * never logged; only names and line numbers appear in errors.
 */
final class Secrets {

  private static final Logger LOG = LoggerFactory.getLogger(Secrets.class);

  private Secrets() {}

  static Map<String, String> load(Path file) {
    List<String> lines;
    try {
      lines = Files.readAllLines(file, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new KeelException.Invalid("cannot read the secrets file " + file + ": " + e.getMessage());
    }
    warnIfShared(file);
    Map<String, String> out = new LinkedHashMap<>();
    java.util.List<String> problems = new java.util.ArrayList<>();
    for (int i = 0; i < lines.size(); i++) {
      String line = lines.get(i).strip();
      if (line.isEmpty() || line.startsWith("#")) {
        continue;
      }
      int eq = line.indexOf('=');
      String name = eq < 0 ? "" : line.substring(0, eq).strip();
      if (eq < 0 || !name.matches("[A-Za-z_][A-Za-z0-9_]*")) {
        problems.add(file + ": line " + (i + 1) + ": expected NAME=value with a name of letters, digits and _");
        continue;
      }
      out.put(name, line.substring(eq + 1).strip());
    }
    if (!problems.isEmpty()) {
      throw new KeelException.Invalid(problems);
    }
    LOG.info("read {} secrets from {} ({})", out.size(), file, String.join(", ", out.keySet()));
    return out;
  }

  private static void warnIfShared(Path file) {
    try {
      Set<PosixFilePermission> p = Files.getPosixFilePermissions(file);
      if (p.contains(PosixFilePermission.GROUP_READ) || p.contains(PosixFilePermission.OTHERS_READ)) {
        LOG.warn("the secrets file {} can be read by other users; make it readable by its owner only (chmod 600)", file);
      }
    } catch (IOException | UnsupportedOperationException e) {
      // not a POSIX file system: nothing to check
    }
  }
}
