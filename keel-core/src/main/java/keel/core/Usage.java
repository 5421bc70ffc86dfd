package keel.core;

/**
 * Tokens a model call used, as the provider reported them.
 *
 * @param inputTokens prompt tokens not read from a cache
 * @param outputTokens completion tokens
 * @param cacheWriteTokens prompt tokens written to the provider's cache
 * @param cacheReadTokens prompt tokens read from the provider's cache
 */
public record Usage(long inputTokens, long outputTokens, long cacheWriteTokens, long cacheReadTokens) {

  public static final Usage ZERO = new Usage(0, 0, 0, 0);

  public Usage {
    if (inputTokens < 0 || outputTokens < 0 || cacheWriteTokens < 0 || cacheReadTokens < 0) {
      throw new IllegalArgumentException("token counts cannot be negative");
    }
  }

  public long totalTokens() {
    return inputTokens + outputTokens + cacheWriteTokens + cacheReadTokens;
  }

  public Usage plus(Usage other) {
    return new Usage(
        inputTokens + other.inputTokens,
        outputTokens + other.outputTokens,
        cacheWriteTokens + other.cacheWriteTokens,
        cacheReadTokens + other.cacheReadTokens);
  }
}
