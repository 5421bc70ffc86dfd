package keel.execution;

import dev.langchain4j.model.chat.StreamingChatModel;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.BiFunction;

/**
 * One provider's LangChain4j models, one per (base URL, model id), built on first use and then
 * shared by all calls. The API key is fixed per provider, so it is not part of the cache key.
 * Bounded: descriptors name few models, and a flood of names must not grow memory, so the cache is
 * emptied when it reaches {@value #MAX_MODELS} models.
 *
 * <p>Thread-safe: concurrent first uses of one (base URL, model id) build one model.
 */
final class ModelCache {

  private static final int MAX_MODELS = 256;

  private final Map<Key, StreamingChatModel> models = new ConcurrentHashMap<>();

  /**
   * The model for {@code baseUrl} and {@code modelId}, built with {@code build} (given the base URL
   * and the model id) when there is none yet.
   */
  StreamingChatModel get(String baseUrl, String modelId, BiFunction<String, String, StreamingChatModel> build) {
    Key key = new Key(baseUrl, modelId);
    StreamingChatModel cached = models.get(key);
    if (cached != null) {
      return cached;
    }
    if (models.size() >= MAX_MODELS) {
      models.clear();
    }
    return models.computeIfAbsent(key, k -> build.apply(k.baseUrl(), k.modelId()));
  }

  private record Key(String baseUrl, String modelId) {}
}
