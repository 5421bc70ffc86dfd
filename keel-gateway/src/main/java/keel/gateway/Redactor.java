package keel.gateway;

import java.util.Collection;
import java.util.Comparator;
import java.util.List;

/**
 * Hides an MCP server's secrets (the values of its {@code secret:} environment variables and its
 * headers) in whatever text comes back from it: error output, a line that is not JSON-RPC, a tool
 * result. A server that prints its API key when it fails must not put that key into a model's
 * context, the audit log, a log line or {@code GET /v1/tools}.
 *
 * <p>Immutable and thread-safe.
 */
final class Redactor {

  /** What a secret is replaced with. */
  static final String MASK = "[redacted]";
  /** Shorter values are not masked: they would mask ordinary words and digits. */
  static final int MIN_LENGTH = 4;

  private final List<String> secrets;

  Redactor(Collection<String> secrets) {
    // longest first, so a secret that contains another is masked whole
    this.secrets = secrets.stream().filter(s -> s != null && s.length() >= MIN_LENGTH).distinct()
        .sorted(Comparator.comparingInt(String::length).reversed()).toList();
  }

  static Redactor none() {
    return new Redactor(List.of());
  }

  String apply(String text) {
    if (text == null || secrets.isEmpty()) {
      return text;
    }
    String out = text;
    for (String s : secrets) {
      out = out.replace(s, MASK);
    }
    return out;
  }
}
