package keel.execution;

/**
 * One model provider (OpenAI-compatible, scripted, and later Anthropic, Gemini, replay…). The step
 * executor calls {@link #complete} on a virtual thread and records the response before acting on it.
 *
 * <p>Implementations must be thread-safe: many sessions call one provider at once.
 */
public interface ModelProvider {

  /** The provider's name as written in {@code spec.model.provider}, e.g. {@code openai}. */
  String name();

  /**
   * Calls the model once.
   *
   * @param request what to send
   * @param stream receives text as it arrives, for live subscribers; only the returned response is
   *     persisted
   * @return the complete response, with the model version the provider reported
   * @throws ModelFailure when the call fails, saying whether a retry can help
   */
  ModelResponse complete(ModelRequest request, ModelStream stream);
}
