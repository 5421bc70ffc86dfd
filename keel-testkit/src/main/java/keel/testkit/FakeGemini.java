package keel.testkit;

import io.javalin.config.RoutesConfig;
import io.javalin.http.Context;
import java.io.IOException;
import java.io.OutputStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * A fake Google AI Gemini API server on 127.0.0.1 that speaks the real wire format, for tests and
 * benchmarks.
 *
 * <p>It serves what LangChain4j's Gemini chat models call: {@code POST
 * /v1beta/models/{model}:generateContent} (one JSON answer) and {@code POST
 * /v1beta/models/{model}:streamGenerateContent?alt=sse} (server-sent events, one partial {@code
 * GenerateContentResponse} each), plus {@code GET /v1beta/models}. The key is read from the {@code
 * x-goog-api-key} header or the {@code key} query parameter. Errors have Google's shape, {@code
 * {"error": {"code", "message", "status"}}}, with the statuses the real service uses ({@code
 * RESOURCE_EXHAUSTED}, {@code INTERNAL}, {@code UNAVAILABLE}, {@code INVALID_ARGUMENT}, {@code
 * PERMISSION_DENIED}…); a 429 carries both a {@code Retry-After} header and a {@code RetryInfo}
 * detail.
 *
 * <p>What it answers is decided by a {@link Script}, {@link Script#toolLoop(String) the tool loop}
 * by default; faults (latency, 429, 5xx, hangs, stalled streams, malformed bodies, a different
 * reported {@code modelVersion}) can be injected. Token counts are deterministic: a quarter of the
 * characters, rounded up. It records the last {@value #RECORDED_LIMIT} requests it received.
 *
 * <p>Thread-safe: requests are served on virtual threads, and the script, faults and records may be
 * changed from a test while it runs.
 */
public final class FakeGemini
    extends FakeServer<FakeGemini, FakeGemini.GenerateRequest, FakeGemini.Script, FakeGemini.Reply> {

  /** How many received requests are kept for {@link #requests()}. */
  public static final int RECORDED_LIMIT = RECORD_LIMIT;

  /** The model listed by {@code GET /v1beta/models} besides the models that were requested. */
  public static final String DEFAULT_MODEL = "gemini-2.0-flash";

  private static final Pattern CALL = Pattern.compile("(.+):(generateContent|streamGenerateContent)");

  private FakeGemini() {
    super("/v1beta", () -> Script.toolLoop("time_now"), Script::answer);
  }

  /** Starts a fake server on 127.0.0.1 on a free port. */
  public static FakeGemini start() {
    return start(0);
  }

  /** Starts a fake server on 127.0.0.1 on the given port ({@code 0} for a free one). */
  public static FakeGemini start(int port) {
    return new FakeGemini().listen(port);
  }

  // ---------------------------------------------------------------- wire format

  @Override
  void routes(RoutesConfig routes) {
    routes.post("/v1beta/models/{call}", this::generate);
    routes.get("/v1beta/models", this::models);
  }

  @Override
  Script textScript(String text) {
    return Script.text(text);
  }

  @Override
  Script toolLoopScript(String toolName) {
    return Script.toolLoop(toolName);
  }

  /**
   * Checks the key as the real service does: 400 {@code INVALID_ARGUMENT} "API key not valid" for a
   * wrong key, 403 {@code PERMISSION_DENIED} for none; and that a stream asks for {@code alt=sse}.
   */
  @Override
  boolean admit(Context ctx, GenerateRequest request, String expectedApiKey) {
    if (expectedApiKey != null) {
      String key = ctx.header("x-goog-api-key");
      if (key == null) {
        key = ctx.queryParam("key");
      }
      if (key == null) {
        error(ctx, 403, "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.", -1);
        return false;
      }
      if (!key.equals(expectedApiKey)) {
        error(ctx, 400, "API key not valid. Please pass a valid API key.", -1);
        return false;
      }
    }
    if (request.stream() && !"sse".equals(ctx.queryParam("alt"))) {
      // Without alt=sse the real service streams one JSON array; LangChain4j always asks for SSE.
      error(ctx, 400, "This fake streams only with alt=sse.", -1);
      return false;
    }
    return true;
  }

  @Override
  void rejectUnparsable(Context ctx, RuntimeException e) {
    error(ctx, 400, "Invalid JSON payload received. " + e.getMessage(), -1);
  }

  @Override
  void writeStatusFault(Context ctx, int status, int retryAfterSeconds) {
    error(ctx, status, defaultMessage(status), retryAfterSeconds);
  }

  @Override
  void scriptFailed(Context ctx, RuntimeException e) {
    error(ctx, 500, "the fake's script failed: " + e, -1);
  }

  @Override
  String malformedEvent() {
    return "data: {\"candidates\": [{\"content\": \r\n\r\n";
  }

  @Override
  String malformedBody() {
    return "{\"candidates\": [{\"content\": ";
  }

  private void models(Context ctx) {
    ObjectNode body = JSON.createObjectNode();
    ArrayNode models = body.putArray("models");
    for (String name : modelNames(DEFAULT_MODEL)) {
      ObjectNode m = models.addObject();
      m.put("name", "models/" + name);
      m.put("displayName", name);
      m.put("inputTokenLimit", 1_048_576);
      m.put("outputTokenLimit", 8192);
      m.putArray("supportedGenerationMethods").add("generateContent").add("countTokens");
    }
    ctx.contentType("application/json").result(JSON.writeValueAsString(body));
  }

  private void generate(Context ctx) throws IOException, InterruptedException {
    Matcher call = CALL.matcher(ctx.pathParam("call"));
    if (!call.matches()) {
      error(ctx, 404, "Method not found: " + ctx.pathParam("call"), -1);
      return;
    }
    boolean stream = call.group(2).equals("streamGenerateContent");
    serve(ctx, () -> GenerateRequest.parse(call.group(1), stream, ctx.body()));
  }

  @Override
  void reply(Context ctx, Exchange<GenerateRequest, Reply> x) throws IOException, InterruptedException {
    Reply reply = x.reply();
    String model = x.model();
    String responseId = "fake-gemini-" + nextResponseId();
    long promptTokens = x.request().estimatedTokens();
    long outputTokens = reply.estimatedTokens();
    if (x.request().stream()) {
      stream(ctx, reply, responseId, model, promptTokens, outputTokens, x.stall());
    } else {
      ObjectNode body = JSON.createObjectNode();
      ObjectNode candidate = body.putArray("candidates").addObject();
      ObjectNode content = candidate.putObject("content");
      ArrayNode parts = content.putArray("parts");
      if (!reply.text().isEmpty()) {
        parts.addObject().put("text", reply.text());
      }
      for (Reply.Call c : reply.calls()) {
        parts.add(functionCallPart(c));
      }
      content.put("role", "model");
      candidate.put("finishReason", "STOP");
      candidate.put("index", 0);
      body.set("usageMetadata", usage(promptTokens, outputTokens, reply.cachedTokens()));
      body.put("modelVersion", model);
      body.put("responseId", responseId);
      ctx.contentType("application/json").result(JSON.writeValueAsString(body));
    }
  }

  private void stream(
      Context ctx,
      Reply reply,
      String responseId,
      String model,
      long promptTokens,
      long outputTokens,
      Duration stall)
      throws IOException, InterruptedException {
    OutputStream out = openStream(ctx);
    // Like the real service: text arrives in pieces, function calls whole, and the finishReason
    // and final usage ride on the last event.
    List<ObjectNode> events = new ArrayList<>();
    for (String piece : pieces(reply.text())) {
      ObjectNode part = JSON.createObjectNode().put("text", piece);
      events.add(event(List.of(part), responseId, model));
    }
    for (Reply.Call c : reply.calls()) {
      events.add(event(List.of(functionCallPart(c)), responseId, model));
    }
    if (events.isEmpty()) {
      events.add(event(List.of(JSON.createObjectNode().put("text", "")), responseId, model));
    }
    for (int i = 0; i < events.size(); i++) {
      ObjectNode e = events.get(i);
      boolean last = i == events.size() - 1;
      if (last) {
        ((ObjectNode) e.get("candidates").get(0)).put("finishReason", "STOP");
        e.set("usageMetadata", usage(promptTokens, outputTokens, reply.cachedTokens()));
      } else {
        e.set("usageMetadata", usage(promptTokens, 0, reply.cachedTokens()));
      }
      write(out, "data: " + JSON.writeValueAsString(e) + "\r\n\r\n");
      if (i == 0) {
        pause(stall);
      }
    }
  }

  private static ObjectNode event(List<ObjectNode> parts, String responseId, String model) {
    ObjectNode e = JSON.createObjectNode();
    ObjectNode candidate = e.putArray("candidates").addObject();
    ObjectNode content = candidate.putObject("content");
    ArrayNode array = content.putArray("parts");
    parts.forEach(array::add);
    content.put("role", "model");
    candidate.put("index", 0);
    e.put("modelVersion", model);
    e.put("responseId", responseId);
    return e;
  }

  private static ObjectNode functionCallPart(Reply.Call c) {
    ObjectNode part = JSON.createObjectNode();
    ObjectNode call = part.putObject("functionCall");
    call.put("name", c.name());
    call.set("args", JSON.readTree(c.arguments()));
    return part;
  }

  private static ObjectNode usage(long prompt, long output, long cached) {
    ObjectNode u = JSON.createObjectNode();
    u.put("promptTokenCount", prompt);
    if (output > 0) {
      u.put("candidatesTokenCount", output);
    }
    u.put("totalTokenCount", prompt + output);
    if (cached > 0) {
      u.put("cachedContentTokenCount", Math.min(cached, prompt));
    }
    u.putArray("promptTokensDetails").addObject().put("modality", "TEXT").put("tokenCount", prompt);
    return u;
  }

  /** Google's canonical status name for an HTTP code, as the real service reports it. */
  static String googleStatus(int code) {
    return switch (code) {
      case 400 -> "INVALID_ARGUMENT";
      case 401 -> "UNAUTHENTICATED";
      case 403 -> "PERMISSION_DENIED";
      case 404 -> "NOT_FOUND";
      case 409 -> "ABORTED";
      case 429 -> "RESOURCE_EXHAUSTED";
      case 499 -> "CANCELLED";
      case 501 -> "UNIMPLEMENTED";
      case 503 -> "UNAVAILABLE";
      case 504 -> "DEADLINE_EXCEEDED";
      default -> code >= 500 ? "INTERNAL" : "FAILED_PRECONDITION";
    };
  }

  private static String defaultMessage(int code) {
    return switch (code) {
      case 429 -> "Resource has been exhausted (e.g. check quota).";
      case 503 -> "The model is overloaded. Please try again later.";
      case 504 -> "The request timed out. Please try again.";
      case 403 -> "The caller does not have permission (injected fault).";
      default ->
          code >= 500
              ? "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"
              : "Request contains an invalid argument (injected fault).";
    };
  }

  private static void error(Context ctx, int code, String message, int retryAfterSeconds) {
    ObjectNode body = JSON.createObjectNode();
    ObjectNode error = body.putObject("error");
    error.put("code", code);
    error.put("message", message);
    error.put("status", googleStatus(code));
    if (retryAfterSeconds >= 0) {
      ctx.header("Retry-After", Integer.toString(retryAfterSeconds));
      error
          .putArray("details")
          .addObject()
          .put("@type", "type.googleapis.com/google.rpc.RetryInfo")
          .put("retryDelay", retryAfterSeconds + "s");
    }
    ctx.status(code).contentType("application/json").result(JSON.writeValueAsString(body));
  }

  // ---------------------------------------------------------------- API types

  /**
   * Decides the fake's answer to one request. Implementations are called from many threads at once
   * and must be thread-safe; an exception becomes a 500 answer.
   */
  @FunctionalInterface
  public interface Script {

    /** The answer to {@code request}. */
    Reply answer(GenerateRequest request);

    /** A script that always answers {@code text}. */
    static Script text(String text) {
      Reply reply = Reply.text(text);
      return request -> reply;
    }

    /**
     * The benchmark script: while the function responses since the last user text number fewer
     * than K, answer one call to {@code toolName} with arguments {@code {}}; then answer {@code done
     * after K steps}. K is read from {@code steps=K} in the last user text (0 when absent).
     */
    static Script toolLoop(String toolName) {
      Objects.requireNonNull(toolName, "toolName");
      return request ->
          toolLoopStep(
              request.lastUserText(), request.functionResponsesSinceLastUserText(), toolName, Reply::toolCall, Reply::text);
    }
  }

  /**
   * The fake's answer: text, function calls, or both, and how many prompt tokens to report as
   * cached.
   *
   * @param text the model's text (may be empty)
   * @param calls the function calls, in order
   * @param cachedTokens prompt tokens reported in {@code usageMetadata.cachedContentTokenCount}
   *     (capped at the prompt tokens)
   */
  public record Reply(String text, List<Call> calls, long cachedTokens) {
    public Reply {
      Objects.requireNonNull(text, "text");
      calls = List.copyOf(calls);
      if (cachedTokens < 0) {
        throw new IllegalArgumentException("cachedTokens cannot be negative");
      }
    }

    /** A function call: the name and its arguments as a JSON object's text. */
    public record Call(String name, String arguments) {
      public Call {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(arguments, "arguments");
        if (!JSON.readTree(arguments).isObject()) {
          throw new IllegalArgumentException("Gemini function call args must be a JSON object, got " + arguments);
        }
      }
    }

    /** A text answer. */
    public static Reply text(String text) {
      return new Reply(text, List.of(), 0);
    }

    /** An answer that is one function call. */
    public static Reply toolCall(String name, String arguments) {
      return new Reply("", List.of(new Call(name, arguments)), 0);
    }

    /** This reply, reporting {@code n} cached prompt tokens. */
    public Reply withCachedTokens(long n) {
      return new Reply(text, calls, n);
    }

    long estimatedTokens() {
      long chars = text.length();
      for (Call c : calls) {
        chars += c.name().length() + c.arguments().length();
      }
      return tokensFor(chars);
    }
  }

  /**
   * A {@code generateContent} or {@code streamGenerateContent} request as received.
   *
   * @param model the model named in the path (without a {@code models/} prefix)
   * @param stream whether it came to {@code :streamGenerateContent}
   * @param systemInstruction the text of {@code systemInstruction}, when present
   * @param contents the conversation, in order
   * @param tools the function names declared in {@code tools[].functionDeclarations}
   * @param temperature {@code generationConfig.temperature}, when set
   * @param json the whole request body as JSON text
   */
  public record GenerateRequest(
      String model,
      boolean stream,
      Optional<String> systemInstruction,
      List<WireContent> contents,
      List<String> tools,
      Optional<Double> temperature,
      String json) implements FakeModelServer.Request {
    public GenerateRequest {
      Objects.requireNonNull(model, "model");
      Objects.requireNonNull(systemInstruction, "systemInstruction");
      contents = List.copyOf(contents);
      tools = List.copyOf(tools);
      Objects.requireNonNull(temperature, "temperature");
      Objects.requireNonNull(json, "json");
    }

    static GenerateRequest parse(String model, boolean stream, String body) {
      JsonNode root = JSON.readTree(body);
      if (!root.isObject()) {
        throw new IllegalArgumentException("the body is not a JSON object");
      }
      if (!root.path("contents").isArray() || root.get("contents").isEmpty()) {
        throw new IllegalArgumentException("* GenerateContentRequest.contents: contents is not specified");
      }
      List<WireContent> contents = new ArrayList<>();
      for (JsonNode c : root.get("contents")) {
        contents.add(WireContent.parse(c));
      }
      Optional<String> system = Optional.empty();
      if (root.path("systemInstruction").isObject()) {
        system = Optional.of(WireContent.parse(root.get("systemInstruction")).text());
      }
      List<String> tools = new ArrayList<>();
      for (JsonNode t : root.path("tools")) {
        for (JsonNode f : t.path("functionDeclarations")) {
          tools.add(f.path("name").asString(""));
        }
      }
      JsonNode temperature = root.path("generationConfig").path("temperature");
      return new GenerateRequest(
          model.startsWith("models/") ? model.substring("models/".length()) : model,
          stream,
          system,
          contents,
          tools,
          temperature.isNumber() ? Optional.of(temperature.asDouble()) : Optional.empty(),
          body);
    }

    /** The text of the last {@code user} content that has text, or empty. */
    public String lastUserText() {
      for (int i = contents.size() - 1; i >= 0; i--) {
        WireContent c = contents.get(i);
        if (c.role().equals("user") && c.hasText()) {
          return c.text();
        }
      }
      return "";
    }

    /** How many {@code functionResponse} parts follow the last user content that has text. */
    public int functionResponsesSinceLastUserText() {
      int n = 0;
      for (int i = contents.size() - 1; i >= 0; i--) {
        WireContent c = contents.get(i);
        if (c.role().equals("user") && c.hasText()) {
          break;
        }
        for (WirePart p : c.parts()) {
          if (p instanceof WirePart.FunctionResponse) {
            n++;
          }
        }
      }
      return n;
    }

    long estimatedTokens() {
      long chars = systemInstruction.map(String::length).orElse(0);
      for (WireContent c : contents) {
        for (WirePart p : c.parts()) {
          chars +=
              switch (p) {
                case WirePart.Text t -> t.text().length();
                case WirePart.FunctionCall f -> f.name().length() + f.args().length();
                case WirePart.FunctionResponse f -> f.name().length() + f.response().length();
              };
        }
      }
      return tokensFor(chars);
    }
  }

  /**
   * One {@code Content} of a received request.
   *
   * @param role {@code user}, {@code model}, or another role the client sent (empty when absent)
   * @param parts its parts, in order
   */
  public record WireContent(String role, List<WirePart> parts) {
    public WireContent {
      Objects.requireNonNull(role, "role");
      parts = List.copyOf(parts);
    }

    static WireContent parse(JsonNode c) {
      List<WirePart> parts = new ArrayList<>();
      for (JsonNode p : c.path("parts")) {
        if (p.has("functionCall")) {
          JsonNode f = p.get("functionCall");
          parts.add(
              new WirePart.FunctionCall(
                  optionalText(f, "id"), f.path("name").asString(""), JSON.writeValueAsString(f.path("args"))));
        } else if (p.has("functionResponse")) {
          JsonNode f = p.get("functionResponse");
          parts.add(
              new WirePart.FunctionResponse(
                  optionalText(f, "id"), f.path("name").asString(""), JSON.writeValueAsString(f.path("response"))));
        } else if (p.path("text").isString()) {
          parts.add(new WirePart.Text(p.get("text").asString()));
        }
      }
      return new WireContent(c.path("role").asString(""), parts);
    }

    private static Optional<String> optionalText(JsonNode node, String field) {
      return node.path(field).isString() ? Optional.of(node.get(field).asString()) : Optional.empty();
    }

    /** Whether any part is text. */
    public boolean hasText() {
      return parts.stream().anyMatch(p -> p instanceof WirePart.Text);
    }

    /** The text parts, concatenated. */
    public String text() {
      StringBuilder sb = new StringBuilder();
      for (WirePart p : parts) {
        if (p instanceof WirePart.Text t) {
          sb.append(t.text());
        }
      }
      return sb.toString();
    }
  }

  /** One part of a received {@link WireContent}: text, a function call, or a function response. */
  public sealed interface WirePart {

    /** A {@code text} part. */
    record Text(String text) implements WirePart {
      public Text {
        Objects.requireNonNull(text, "text");
      }
    }

    /** A {@code functionCall} part; {@code args} is the JSON text of its arguments object. */
    record FunctionCall(Optional<String> id, String name, String args) implements WirePart {
      public FunctionCall {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(args, "args");
      }
    }

    /** A {@code functionResponse} part; {@code response} is the JSON text of its response object. */
    record FunctionResponse(Optional<String> id, String name, String response) implements WirePart {
      public FunctionResponse {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(response, "response");
      }
    }
  }

  // ---------------------------------------------------------------- command line

  /**
   * Starts a fake server and prints its base URL; it runs until the process is stopped.
   *
   * <p>Options: {@code --port N} (default 0, a free port), {@code --latency-ms N} (default 0),
   * {@code --tool NAME} (the tool loop's tool, default {@code time_now}).
   */
  public static void main(String[] args) throws InterruptedException {
    runMain(args, "FakeGemini", (port, tool) -> start(port).script(Script.toolLoop(tool)));
  }
}
