package keel.bench;

/** The agent descriptors the benchmarks apply. */
final class Agents {

  private Agents() {}

  /** A scripted agent answering every input with {@code k} {@code time_now} calls, then text. */
  static String scripted(String name, int k) {
    StringBuilder turns = new StringBuilder();
    for (int i = 0; i < k; i++) {
      turns.append("          - call: [{tool: time_now, args: {}}]\n");
    }
    turns.append("          - say: \"done after ").append(k).append(" steps\"\n");
    return header(name)
        + "  model:\n    provider: scripted\n    name: bench-script\n    script:\n      - turns:\n"
        + turns
        + footer(k);
  }

  /** An OpenAI-provider agent served by an OpenAI-compatible server at {@code baseUrl}. */
  static String openai(String name, String baseUrl) {
    return header(name)
        + "  model:\n    provider: openai\n    name: gpt-4o-mini\n    base_url: "
        + baseUrl
        + "\n"
        + footer(998);
  }

  /** A scripted agent answering each message with one {@code time_now} call, then text. */
  static String oneStepPerTurn(String name) {
    return header(name)
        + "  model:\n    provider: scripted\n    name: bench-turns\n    script:\n      - turns:\n"
        + "          - call: [{tool: time_now, args: {}}]\n          - say: \"ok: {{input}}\"\n"
        + footer(1);
  }

  private static String header(String name) {
    return "apiVersion: agent.os/v1\nkind: Agent\nmetadata: {name: "
        + name
        + ", owner: bench}\nspec:\n  instructions: \""
        + Floor.INSTRUCTIONS
        + "\"\n";
  }

  private static String footer(int k) {
    return "  tools: [internal://time]\n  max_steps: " + (k + 2) + "\n";
  }
}
