package keel.execution;

import java.lang.reflect.Field;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Switches off {@code INDENT_OUTPUT} on the static Jackson mapper a LangChain4j module writes its
 * request bodies with. The OpenAI chat, Anthropic and Gemini modules and the Responses client each
 * pretty-print every request, with no setting to stop it; a request carries the whole
 * conversation, and pretty-printing it was the largest single cost of a model call in Keel's
 * benchmark (see BENCHMARKS.md). If a later version of the library moves or renames a mapper,
 * nothing breaks: its requests stay indented, and a debug line says so.
 *
 * <p>Thread-safe; each mapper is changed at most once.
 */
final class CompactRequests {

  private static final Logger LOG = LoggerFactory.getLogger(CompactRequests.class);
  private static final Set<String> DONE = ConcurrentHashMap.newKeySet();

  private CompactRequests() {}

  /** Switches off indentation on the static mapper {@code field} of {@code className}. */
  static void enable(String className, String field) {
    if (!DONE.add(className + "#" + field)) {
      return;
    }
    try {
      Field f = Class.forName(className).getDeclaredField(field);
      f.setAccessible(true);
      if (f.get(null) instanceof com.fasterxml.jackson.databind.ObjectMapper m) {
        m.disable(com.fasterxml.jackson.databind.SerializationFeature.INDENT_OUTPUT);
      }
    } catch (ReflectiveOperationException | RuntimeException e) {
      LOG.debug("LangChain4j requests through {} stay indented: {}", className, e.toString());
    }
  }
}
