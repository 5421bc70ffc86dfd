package keel.execution;

import java.lang.reflect.Field;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Switches off {@code INDENT_OUTPUT} on a LangChain4j module's static Jackson mapper, as {@link
 * CompactRequests} does for the OpenAI chat module: LangChain4j's Gemini module ({@code
 * dev.langchain4j.model.googleai.Json.OBJECT_MAPPER}) and its Responses client ({@code
 * OpenAiResponsesClient.OBJECT_MAPPER}) pretty-print every request, which carries the whole
 * conversation. If a later version moves or renames the mapper nothing breaks: requests stay
 * indented, and a debug line says so.
 *
 * <p>Thread-safe; each mapper is changed at most once.
 */
final class CompactMappers {

  private static final Logger LOG = LoggerFactory.getLogger(CompactMappers.class);
  private static final Set<String> DONE = ConcurrentHashMap.newKeySet();

  private CompactMappers() {}

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
