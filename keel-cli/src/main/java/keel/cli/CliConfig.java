package keel.cli;

import java.io.IOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Pattern;
import tools.jackson.core.JacksonException;
import tools.jackson.core.StreamReadFeature;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;
import tools.jackson.dataformat.yaml.YAMLMapper;
import tools.jackson.dataformat.yaml.YAMLWriteFeature;

/**
 * The CLI's config file: named contexts, each a server URL and an API token, and which context is
 * current, like other platform CLIs keep them. It holds tokens, so it is written with mode 0600
 * (in a directory created with mode 0700), through a temporary file moved into place, so a crash
 * never leaves half a file; reading a file others may read prints a warning.
 *
 * <p>Where it is: {@code KEEL_CONFIG}, else {@code $XDG_CONFIG_HOME/keel/config.yaml}, else {@code
 * ~/.config/keel/config.yaml}.
 *
 * <p>Immutable; {@link #save()} writes a new file. Not safe against two CLI processes saving at the
 * same moment (the last one wins, and neither file is ever corrupt).
 *
 * @param file where it was read from and is saved to
 * @param current the current context's name
 * @param contexts the contexts by name
 */
record CliConfig(Path file, Optional<String> current, Map<String, Context> contexts) {

  /**
   * One context.
   *
   * @param principal who the token stood for when it was saved, for display only
   */
  record Context(String name, String server, String token, String principal) {
    Context {
      Objects.requireNonNull(name, "name");
      Objects.requireNonNull(server, "server");
      Objects.requireNonNull(token, "token");
      Objects.requireNonNull(principal, "principal");
    }

    /** Never the token. */
    @Override
    public String toString() {
      return "Context[" + name + " " + server + " " + principal + "]";
    }
  }

  static final String ENV = "KEEL_CONFIG";

  private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._:@-]{0,99}");
  private static final Set<PosixFilePermission> PRIVATE_FILE =
      EnumSet.of(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE);
  private static final Set<PosixFilePermission> PRIVATE_DIR =
      EnumSet.of(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE, PosixFilePermission.OWNER_EXECUTE);

  private static final YAMLMapper YAML =
      YAMLMapper.builder()
          .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
          .disable(YAMLWriteFeature.WRITE_DOC_START_MARKER)
          .build();

  CliConfig {
    Objects.requireNonNull(file, "file");
    Objects.requireNonNull(current, "current");
    contexts = Map.copyOf(contexts);
  }

  /** Where the config file is for this environment. */
  static Path location(Io io) {
    Optional<String> explicit = io.env(ENV);
    if (explicit.isPresent()) {
      return Path.of(explicit.get()).toAbsolutePath().normalize();
    }
    Optional<String> xdg = io.env("XDG_CONFIG_HOME");
    if (xdg.isPresent()) {
      return Path.of(xdg.get(), "keel", "config.yaml").toAbsolutePath().normalize();
    }
    String home = io.env("HOME").orElse(System.getProperty("user.home"));
    return Path.of(home, ".config", "keel", "config.yaml").toAbsolutePath().normalize();
  }

  /** Checks a context name given on the command line. */
  static String checkedName(String name) {
    if (!NAME.matcher(name).matches()) {
      throw new CliException(ExitCodes.USAGE, "context name \"" + name + "\": expected 1 to 100 letters, digits, dots,"
          + " dashes, underscores, colons or @, starting with a letter or digit");
    }
    return name;
  }

  /** Reads the config file of this environment; an absent file is an empty config. */
  static CliConfig load(Io io) {
    Path file = location(io);
    String text;
    try {
      text = Files.readString(file, StandardCharsets.UTF_8);
    } catch (NoSuchFileException e) {
      return new CliConfig(file, Optional.empty(), Map.of());
    } catch (IOException e) {
      throw new CliException(ExitCodes.USAGE, "cannot read the config file " + file + ": " + e.getMessage());
    }
    warnIfShared(file, io);
    return parse(file, text);
  }

  private static CliConfig parse(Path file, String text) {
    JsonNode root;
    try {
      root = YAML.readTree(text);
    } catch (JacksonException e) {
      throw invalid(file, "not valid YAML: " + e.getOriginalMessage());
    }
    if (root == null || root.isMissingNode() || root.isNull()) {
      return new CliConfig(file, Optional.empty(), Map.of());
    }
    if (!root.isObject()) {
      throw invalid(file, "expected a mapping with current-context and contexts");
    }
    List<String> problems = new ArrayList<>();
    for (String field : root.propertyNames()) {
      if (!field.equals("current-context") && !field.equals("contexts")) {
        problems.add(field + ": unknown field; expected current-context or contexts");
      }
    }
    Optional<String> current = Optional.empty();
    JsonNode cur = root.get("current-context");
    if (cur != null && !cur.isNull()) {
      if (cur.isString() && !cur.asString().isBlank()) {
        current = Optional.of(cur.asString());
      } else {
        problems.add("current-context: expected a context name, got " + cur);
      }
    }
    Map<String, Context> contexts = new TreeMap<>();
    JsonNode list = root.get("contexts");
    if (list != null && !list.isNull()) {
      if (!list.isArray()) {
        problems.add("contexts: expected a list of contexts (name, server, token)");
      } else {
        for (int i = 0; i < list.size(); i++) {
          String at = "contexts[" + i + "]";
          JsonNode c = list.get(i);
          if (!c.isObject()) {
            problems.add(at + ": expected a mapping with name, server and token");
            continue;
          }
          for (String field : c.propertyNames()) {
            if (!Set.of("name", "server", "token", "principal").contains(field)) {
              problems.add(at + "." + field + ": unknown field; expected name, server, token or principal");
            }
          }
          String name = string(c, "name", at, true, problems);
          String server = string(c, "server", at, true, problems);
          String token = string(c, "token", at, true, problems);
          String principal = string(c, "principal", at, false, problems);
          if (name != null && contexts.containsKey(name)) {
            problems.add(at + ".name: the context \"" + name + "\" is defined twice");
          } else if (name != null && server != null && token != null) {
            contexts.put(name, new Context(name, server, token, principal == null ? "" : principal));
          }
        }
      }
    }
    if (!problems.isEmpty()) {
      throw new CliException(ExitCodes.USAGE, "the config file " + file + " is not valid; fix or delete it", problems);
    }
    return new CliConfig(file, current, contexts);
  }

  private static String string(JsonNode c, String field, String at, boolean required, List<String> problems) {
    JsonNode v = c.get(field);
    if (v == null || v.isNull()) {
      if (required) {
        problems.add(at + "." + field + ": required");
      }
      return null;
    }
    if (!v.isString() || v.asString().isBlank()) {
      // never echo the value: it may be a token
      problems.add(at + "." + field + ": expected a non-empty string");
      return null;
    }
    return v.asString();
  }

  private static CliException invalid(Path file, String why) {
    return new CliException(ExitCodes.USAGE, "the config file " + file + " is not valid (" + why + "); fix or delete it");
  }

  private static void warnIfShared(Path file, Io io) {
    try {
      Set<PosixFilePermission> perms = Files.getPosixFilePermissions(file);
      if (!PRIVATE_FILE.containsAll(perms)) {
        io.err().println("keel: warning: " + file + " holds API tokens but others may read it (mode "
            + PosixFilePermissions.toString(perms) + "); run: chmod 600 " + file);
      }
    } catch (UnsupportedOperationException | IOException e) {
      // not a POSIX file system: nothing to check
    }
  }

  /** The context a name refers to. */
  Optional<Context> context(String name) {
    return Optional.ofNullable(contexts.get(name));
  }

  /** This config with a context added or replaced. */
  CliConfig with(Context c) {
    Map<String, Context> m = new TreeMap<>(contexts);
    m.put(c.name(), c);
    return new CliConfig(file, current, m);
  }

  /** This config without a context; if it was current, no context is current. */
  CliConfig without(String name) {
    Map<String, Context> m = new TreeMap<>(contexts);
    m.remove(name);
    return new CliConfig(file, current.filter(c -> !c.equals(name)), m);
  }

  /** This config with another current context. */
  CliConfig withCurrent(String name) {
    return new CliConfig(file, Optional.of(name), contexts);
  }

  /** The contexts, by name. */
  List<Context> sorted() {
    return List.copyOf(new TreeMap<>(contexts).values());
  }

  /** Writes the file with mode 0600, replacing the old one in one step. */
  void save() {
    ObjectNode root = YAML.createObjectNode();
    current.ifPresent(c -> root.put("current-context", c));
    ArrayNode list = root.putArray("contexts");
    for (Context c : sorted()) {
      ObjectNode o = list.addObject();
      o.put("name", c.name());
      o.put("server", c.server());
      o.put("token", c.token());
      if (!c.principal().isEmpty()) {
        o.put("principal", c.principal());
      }
    }
    Path dir = file.getParent();
    Path tmp = null;
    try {
      if (!Files.isDirectory(dir)) {
        Files.createDirectories(dir);
        try {
          Files.setPosixFilePermissions(dir, PRIVATE_DIR);
        } catch (UnsupportedOperationException notPosix) {
          // the file's own mode still protects it where that is supported
        }
      }
      try {
        tmp = Files.createTempFile(dir, ".config-", ".yaml.tmp", PosixFilePermissions.asFileAttribute(PRIVATE_FILE));
      } catch (UnsupportedOperationException notPosix) {
        tmp = Files.createTempFile(dir, ".config-", ".yaml.tmp");
      }
      try (Writer w = Files.newBufferedWriter(tmp, StandardCharsets.UTF_8)) {
        w.write("# keel CLI contexts (keel login, keel config). It holds API tokens: keep it private (mode 0600).\n");
        w.write(YAML.writeValueAsString(root));
      }
      try {
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
      } catch (AtomicMoveNotSupportedException e) {
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
      }
      tmp = null;
    } catch (IOException e) {
      throw new CliException(ExitCodes.FAILED, "cannot write the config file " + file + ": " + e.getMessage()
          + "; set KEEL_CONFIG to a writable path");
    } finally {
      if (tmp != null) {
        try {
          Files.deleteIfExists(tmp);
        } catch (IOException ignored) {
          // best effort: a stray temporary file holds nothing the real file does not
        }
      }
    }
  }
}
