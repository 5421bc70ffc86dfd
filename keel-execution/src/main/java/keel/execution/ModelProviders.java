package keel.execution;

import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import keel.core.KeelException;

/**
 * The model providers a node can call, by the name used in {@code spec.model.provider}.
 *
 * <p>Thread-safe: providers may be registered while others are looked up.
 */
public final class ModelProviders {

  private final Map<String, ModelProvider> providers = new ConcurrentHashMap<>();

  private ModelProviders() {}

  /**
   * A registry with the built-in providers, their settings read from {@code env}: {@code scripted},
   * {@code openai} and {@code openai-responses} ({@code OPENAI_API_KEY}, {@code OPENAI_BASE_URL}),
   * {@code anthropic} ({@code ANTHROPIC_API_KEY}, {@code ANTHROPIC_BASE_URL}) and {@code gemini}
   * ({@code GEMINI_API_KEY}, {@code GEMINI_BASE_URL}).
   */
  public static ModelProviders create(Map<String, String> env) {
    Objects.requireNonNull(env, "env");
    ModelProviders registry = new ModelProviders();
    registry.register(new ScriptedModelProvider());
    registry.register(new OpenAiModelProvider(env));
    registry.register(new AnthropicModelProvider(env));
    registry.register(new GeminiModelProvider(env));
    registry.register(new OpenAiResponsesModelProvider(env));
    return registry;
  }

  /** Adds {@code provider}, replacing any provider registered under the same name. */
  public ModelProviders register(ModelProvider provider) {
    Objects.requireNonNull(provider, "provider");
    providers.put(Objects.requireNonNull(provider.name(), "provider.name()"), provider);
    return this;
  }

  /**
   * The provider called {@code name}.
   *
   * @throws KeelException.Invalid when no provider has that name; the message lists those that do
   */
  public ModelProvider provider(String name) {
    Objects.requireNonNull(name, "name");
    ModelProvider provider = providers.get(name);
    if (provider == null) {
      throw new KeelException.Invalid(
          "model provider \"" + name + "\" is not available; available: " + String.join(", ", names()));
    }
    return provider;
  }

  /** The registered providers' names, sorted. */
  public List<String> names() {
    return List.copyOf(new TreeMap<>(providers).keySet());
  }
}
