package keel.bench;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import keel.core.AgentDescriptor;
import keel.core.Descriptors;
import keel.core.Message;
import keel.core.SessionState;
import keel.execution.ModelGateway;
import keel.execution.ModelProviders;
import keel.execution.ModelRequest;
import keel.execution.ModelStream;
import keel.execution.OpenAiModelProvider;
import keel.execution.PriceTable;
import keel.execution.ToolRegistry;
import keel.execution.ToolSpec;
import keel.testkit.FakeOpenAi;

/**
 * The model gateway's added latency per call: the same request through {@link ModelGateway} (price
 * lookup, request digest for coalescing, circuit breaker, drift check) and straight to the provider
 * it wraps, one call at a time against a zero-latency fake, interleaved, after a warm-up.
 *
 * <p>Not thread-safe; one run at a time.
 */
final class GatewayOverhead {

  private final int calls;
  private final int reps;
  private final Progress progress;

  GatewayOverhead(int calls, int reps, Progress progress) {
    this.calls = calls;
    this.reps = reps;
    this.progress = progress;
  }

  Map<String, Object> run() {
    try (FakeOpenAi fake = FakeOpenAi.start()) {
      fake.script(FakeOpenAi.Script.text("ok"));
      AgentDescriptor agent = (AgentDescriptor) Descriptors.parse("""
          apiVersion: agent.os/v1
          kind: Agent
          metadata: {name: overhead, owner: bench}
          spec:
            instructions: "%s"
            model: {provider: openai, name: gpt-4o-mini, base_url: "%s"}
          """.formatted(Floor.INSTRUCTIONS, fake.baseUrl()), "bench").getFirst();
      ModelProviders providers = ModelProviders.create(Map.of());
      OpenAiModelProvider direct = new OpenAiModelProvider(Map.of());
      ModelGateway gateway = ModelGateway.create(providers, PriceTable.builtIn());
      ToolRegistry noTools = ToolRegistry.of(List.of());
      SessionState state = SessionState.empty();
      ToolSpec time = new ToolSpec("time_now", "Returns the current time.", "{\"type\":\"object\",\"properties\":{}}");
      List<Long> viaGateway = new ArrayList<>();
      List<Long> viaProvider = new ArrayList<>();
      for (int rep = -1; rep < reps; rep++) {
        boolean warm = rep < 0;
        for (int i = 0; i < calls; i++) {
          // a distinct conversation per call, so coalescing never shares one
          ModelRequest request = new ModelRequest("overhead", "bench", agent.spec().model(), agent.spec().instructions(),
              List.of(new Message.User("question " + rep + "/" + i)), List.of(time), 0);
          long t0 = System.nanoTime();
          gateway.call(agent, request, state, ModelStream.NONE, noTools);
          long t1 = System.nanoTime();
          direct.complete(request, ModelStream.NONE);
          long t2 = System.nanoTime();
          if (!warm) {
            viaGateway.add(t1 - t0);
            viaProvider.add(t2 - t1);
          }
        }
        progress.line(String.format("gateway overhead %s %d/%d", warm ? "warm-up" : "rep", rep + 1, reps));
      }
      Map<String, Object> out = new LinkedHashMap<>();
      out.put("calls_per_rep", calls);
      out.put("reps", reps);
      out.put("gateway_us", percentilesMicros(viaGateway));
      out.put("provider_us", percentilesMicros(viaProvider));
      out.put("overhead_p50_us", (pct(viaGateway, 50) - pct(viaProvider, 50)) / 1000.0);
      out.put("requests_served_by_fake", fake.requestCount());
      return out;
    }
  }

  private static Map<String, Object> percentilesMicros(List<Long> nanos) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("p50", pct(nanos, 50) / 1000.0);
    m.put("p90", pct(nanos, 90) / 1000.0);
    m.put("p99", pct(nanos, 99) / 1000.0);
    return m;
  }

  private static double pct(List<Long> values, int p) {
    List<Long> sorted = new ArrayList<>(values);
    sorted.sort(null);
    if (sorted.isEmpty()) {
      return 0;
    }
    return sorted.get(Math.min(sorted.size() - 1, (int) Math.ceil(p / 100.0 * sorted.size()) - 1));
  }
}
