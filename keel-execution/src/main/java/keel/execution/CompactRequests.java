package keel.execution;

import java.lang.reflect.Field;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * LangChain4j's OpenAI module writes every request body with a static Jackson mapper that has
 * {@code INDENT_OUTPUT} switched on and no setting to switch it off. Pretty-printing a request that
 * carries the whole conversation was the largest single cost of a model call in Keel's benchmark
 * (see BENCHMARKS.md), so this switches the feature off once. If a later version of the library
 * moves or renames the mapper, nothing breaks: requests simply stay indented, and a debug line
 * says so.
 */
final class CompactRequests {

  private static final Logger LOG = LoggerFactory.getLogger(CompactRequests.class);
  private static volatile boolean done;

  private CompactRequests() {}

  static void enable() {
    if (done) {
      return;
    }
    done = true;
    try {
      Class<?> json = Class.forName("dev.langchain4j.model.openai.internal.Json");
      Field field = json.getDeclaredField("OBJECT_MAPPER");
      field.setAccessible(true);
      Object mapper = field.get(null);
      if (mapper instanceof com.fasterxml.jackson.databind.ObjectMapper m) {
        m.disable(com.fasterxml.jackson.databind.SerializationFeature.INDENT_OUTPUT);
      }
    } catch (ReflectiveOperationException | RuntimeException e) {
      LOG.debug("LangChain4j requests stay indented: {}", e.toString());
    }
  }
}
