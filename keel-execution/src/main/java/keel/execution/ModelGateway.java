package keel.execution;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.regex.Pattern;
import keel.core.AgentDescriptor;
import keel.core.Message;
import keel.core.SessionEvent;
import keel.core.SessionState;
import keel.core.ToolCall;
import keel.core.Usage;

/**
 * Every model call of every agent goes through here: small-model-first routing and escalation to
 * the agent's main model, pinned versions and drift detection, the cost of each call from the price
 * table, identical concurrent requests sent once, and a circuit breaker per provider endpoint.
 *
 * <p>The gateway decides nothing about the session: it returns what happened (the response, the
 * escalations with what they cost, a drift) and the step executor records it and obeys the agent's
 * {@code on_drift}.
 *
 * <p>Thread-safe.
 */
public final class ModelGateway {

  /** Text that reads as a refusal, for the {@code refusal} escalation condition. */
  private static final Pattern REFUSAL =
      Pattern.compile(
          "(?is)^\\s*(i'?m sorry|i am sorry|i can(?:no|')t (?:help|assist|do|comply)|i cannot|i'?m (?:not able|unable)|i am (?:not able|unable)|as an ai)\\b.*");

  /** What a model call did: the response, who answered, what it cost, escalations and drift. */
  public record Call(
      ModelResponse response,
      String provider,
      String model,
      BigDecimal costUsd,
      List<SessionEvent.ModelEscalated> escalations,
      Optional<SessionEvent.ModelDrifted> drift) {
    public Call {
      escalations = List.copyOf(escalations);
    }
  }

  private final ModelProviders providers;
  private final PriceTable prices;
  private final ProviderBreakers breakers;
  private final RequestCoalescer coalescer;
  /** One response cache per time-to-live that agents declare; a handful at most. */
  private final java.util.Map<java.time.Duration, ResponseCache> caches = new java.util.concurrent.ConcurrentHashMap<>();
  private static final long CACHE_ENTRIES = 10_000;

  /** A gateway with default circuit breakers and request coalescing. */
  public static ModelGateway create(ModelProviders providers, PriceTable prices) {
    return new ModelGateway(providers, prices, ProviderBreakers.defaults(), new RequestCoalescer());
  }

  ModelGateway(ModelProviders providers, PriceTable prices, ProviderBreakers breakers, RequestCoalescer coalescer) {
    this.providers = providers;
    this.prices = prices;
    this.breakers = breakers;
    this.coalescer = coalescer;
  }

  PriceTable prices() {
    return prices;
  }

  /**
   * Makes the model call of one step.
   *
   * @param request the request for the agent's main model
   * @param tools the registry, to check the small model's tool calls against their schemas
   * @throws ModelFailure when the main model fails (a small model's failure escalates instead, when
   *     the agent's routing says so)
   * @throws keel.core.KeelException.Invalid when the agent's provider is not available
   */
  public Call call(AgentDescriptor agent, ModelRequest request, SessionState state, ModelStream stream, ToolRegistry tools) {
    AgentDescriptor.ModelSpec main = request.model();
    List<SessionEvent.ModelEscalated> escalations = new ArrayList<>();
    Optional<AgentDescriptor.Routing> routing = main.routing();
    if (routing.isPresent()) {
      AgentDescriptor.Routing r = routing.get();
      AgentDescriptor.ModelSpec small = derivedSpec(main, r.small());
      boolean stayOnMain = r.escalateOn().contains("escalated_step") && state.escalatedSinceInput();
      Optional<String> tooLong = contextTooLong(r, request);
      if (tooLong.isPresent()) {
        escalations.add(escalation(request, small, main, tooLong.get(), Usage.ZERO, BigDecimal.ZERO));
      } else if (!stayOnMain) {
        try {
          ModelResponse answer = invoke(agent, request, small, stream, tools);
          BigDecimal cost = cost(small, answer);
          Optional<String> reason = escalationReason(r, answer, request.tools());
          if (reason.isEmpty()) {
            return new Call(answer, small.provider(), OpenAiModelProvider.requestedModel(small), cost, escalations, Optional.empty());
          }
          escalations.add(escalation(request, small, main, reason.get(), answer.usage(), cost));
        } catch (ModelFailure f) {
          if (!r.escalateOn().contains("model_error")) {
            throw f;
          }
          escalations.add(escalation(request, small, main, "model_error: " + f.getMessage(), Usage.ZERO, BigDecimal.ZERO));
        }
      }
    }
    ModelResponse answer;
    try {
      answer = invoke(agent, request, main, stream, tools);
    } catch (ModelFailure failure) {
      return fallback(agent, request, main, stream, tools, escalations, failure);
    }
    return new Call(
        answer, main.provider(), OpenAiModelProvider.requestedModel(main), cost(main, answer), escalations,
        drift(request.step(), main, answer, state));
  }

  /**
   * The main model failed: when retrying cannot help now (a transient failure, an open circuit),
   * the agent's fallback models are tried in order, each recorded as a step to another model.
   */
  private Call fallback(
      AgentDescriptor agent, ModelRequest request, AgentDescriptor.ModelSpec main, ModelStream stream, ToolRegistry tools,
      List<SessionEvent.ModelEscalated> escalations, ModelFailure failure) {
    if (!failure.retryable() || main.fallbacks().isEmpty()) {
      throw failure;
    }
    ModelFailure last = failure;
    AgentDescriptor.ModelSpec from = main;
    for (AgentDescriptor.ModelRef ref : main.fallbacks()) {
      AgentDescriptor.ModelSpec spec = derivedSpec(main, ref);
      escalations.add(escalation(request, from, spec, "fallback: " + last.getMessage(), Usage.ZERO, BigDecimal.ZERO));
      try {
        ModelResponse answer = invoke(agent, request, spec, stream, tools);
        return new Call(answer, spec.provider(), OpenAiModelProvider.requestedModel(spec), cost(spec, answer), escalations, Optional.empty());
      } catch (ModelFailure f) {
        if (!f.retryable()) {
          throw f;
        }
        last = f;
        from = spec;
      }
    }
    throw last;
  }

  private ModelResponse invoke(
      AgentDescriptor agent, ModelRequest request, AgentDescriptor.ModelSpec spec, ModelStream stream, ToolRegistry tools) {
    ModelProvider provider = providers.provider(spec.provider());
    ModelRequest r = spec.equals(request.model()) ? request
        : new ModelRequest(request.agent(), request.sessionId(), spec, request.instructions(), request.conversation(), request.tools(), request.step());
    String model = OpenAiModelProvider.requestedModel(spec);
    // Only calls the agent declared insensitive (response_cache_ttl, temperature 0) with read-only
    // tools are cached; a hit reports no usage, so it is never charged twice.
    Optional<ResponseCache> cache = spec.responseCacheTtl()
        .map(ttl -> caches.computeIfAbsent(ttl, t -> new ResponseCache(t, CACHE_ENTRIES, java.time.Clock.systemUTC())));
    Optional<String> cacheKey = cache.flatMap(c ->
        ResponseCache.key(r, spec.provider(), model, name -> tools.tool(name).map(Tool::readOnly).orElse(false)));
    if (cacheKey.isPresent()) {
      Optional<ModelResponse> hit = cache.get().get(cacheKey.get());
      if (hit.isPresent()) {
        if (!hit.get().text().isEmpty()) {
          stream.onText(hit.get().text());
        }
        return hit.get();
      }
    }
    String endpoint = ProviderBreakers.endpoint(spec.provider(), spec.baseUrl().orElse("(default endpoint)"));
    String key = RequestCoalescer.key(agent.name(), r, spec.provider(), model);
    ModelResponse answer = breakers.call(endpoint, () -> coalescer.call(key, () -> provider.complete(r, stream)));
    cacheKey.ifPresent(k -> cache.get().put(k, answer));
    return answer;
  }

  /**
   * A small or fallback model inherits the main model's settings (its endpoint when the provider
   * is the same), without a pin or routing of its own.
   */
  private static AgentDescriptor.ModelSpec derivedSpec(AgentDescriptor.ModelSpec main, AgentDescriptor.ModelRef small) {
    Optional<String> baseUrl = small.provider().equals(main.provider()) ? main.baseUrl() : Optional.empty();
    return new AgentDescriptor.ModelSpec(
        small.provider(), small.name(), Optional.empty(), baseUrl, main.temperature(), main.onDrift(),
        Optional.empty(), main.script());
  }

  private static Optional<String> contextTooLong(AgentDescriptor.Routing r, ModelRequest request) {
    if (!r.escalateOn().contains("context_over_tokens") || r.contextOverTokens().isEmpty()) {
      return Optional.empty();
    }
    long tokens = estimateTokens(request);
    int limit = r.contextOverTokens().get();
    return tokens > limit
        ? Optional.of("context_over_tokens: about " + tokens + " tokens, over " + limit)
        : Optional.empty();
  }

  /** About four characters a token: the estimate routing needs, before any provider has counted. */
  static long estimateTokens(ModelRequest request) {
    long chars = request.instructions().length();
    for (Message m : request.conversation()) {
      chars += switch (m) {
        case Message.User u -> u.text().length();
        case Message.Assistant a -> a.text().length() + a.toolCalls().stream().mapToLong(c -> c.arguments().length() + c.name().length()).sum();
        case Message.ToolResult t -> t.content() instanceof keel.core.Content.Inline i ? i.text().length() : ((keel.core.Content.Blob) t.content()).bytes();
      };
    }
    for (ToolSpec t : request.tools()) {
      chars += t.description().length() + t.parametersSchema().length();
    }
    return chars / 4;
  }

  private static Optional<String> escalationReason(AgentDescriptor.Routing r, ModelResponse answer, List<ToolSpec> offered) {
    List<String> on = r.escalateOn();
    if (on.contains("empty_answer") && answer.text().isBlank() && answer.toolCalls().isEmpty()) {
      return Optional.of("empty_answer: the small model answered nothing");
    }
    if (on.contains("refusal") && answer.toolCalls().isEmpty() && REFUSAL.matcher(answer.text()).matches()) {
      return Optional.of("refusal: \"" + Trace.abbreviate(answer.text(), 80) + "\"");
    }
    if (on.contains("invalid_tool_arguments")) {
      // checked against the tools the model was offered: exactly those the session's token grants
      for (ToolCall c : answer.toolCalls()) {
        Optional<ToolSpec> spec = offered.stream().filter(t -> t.name().equals(c.name())).findFirst();
        Optional<String> problem;
        if (spec.isEmpty()) {
          problem = Optional.of("\"" + c.name() + "\" is not one of the tools it was given");
        } else {
          List<String> problems = ToolArguments.of(spec.get()).problems(c.arguments());
          problem = problems.isEmpty() ? Optional.empty() : Optional.of(c.name() + ": " + String.join("; ", problems));
        }
        if (problem.isPresent()) {
          return Optional.of("invalid_tool_arguments: " + problem.get());
        }
      }
    }
    return Optional.empty();
  }

  private SessionEvent.ModelEscalated escalation(
      ModelRequest request, AgentDescriptor.ModelSpec small, AgentDescriptor.ModelSpec main, String reason, Usage usage, BigDecimal cost) {
    return new SessionEvent.ModelEscalated(
        request.step(), small.provider(), OpenAiModelProvider.requestedModel(small), main.provider(),
        OpenAiModelProvider.requestedModel(main), reason, usage, cost);
  }

  private BigDecimal cost(AgentDescriptor.ModelSpec spec, ModelResponse answer) {
    String model = prices.known(spec.provider(), answer.modelVersion()) ? answer.modelVersion() : OpenAiModelProvider.requestedModel(spec);
    if (!prices.known(spec.provider(), model)) {
      model = spec.name();
    }
    return prices.cost(spec.provider(), model, answer.usage());
  }

  /**
   * A response from another version than the pinned one, unless a human accepted that version for
   * this session. Scripted and replayed models have no versions to drift from.
   */
  private static Optional<SessionEvent.ModelDrifted> drift(
      int step, AgentDescriptor.ModelSpec spec, ModelResponse answer, SessionState state) {
    if (spec.pinnedRevision().isEmpty() || spec.provider().equals("scripted") || spec.provider().equals("replay")) {
      return Optional.empty();
    }
    String expected = OpenAiModelProvider.requestedModel(spec);
    String reported = answer.modelVersion();
    if (reported.equals(expected) || state.acceptedVersions().contains(reported)) {
      return Optional.empty();
    }
    String action = spec.onDrift().name().toLowerCase(java.util.Locale.ROOT);
    return Optional.of(new SessionEvent.ModelDrifted(step, spec.name(), expected, reported, action));
  }
}
