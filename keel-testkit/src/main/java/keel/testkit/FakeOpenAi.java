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
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * A fake OpenAI Chat Completions server on 127.0.0.1 that speaks the real wire format, for tests
 * and benchmarks.
 *
 * <p>It serves {@code POST /v1/chat/completions} (plain JSON and {@code text/event-stream} chunks
 * ending with {@code data: [DONE]}) and {@code GET /v1/models}. What it answers is decided by a
 * {@link Script}, {@link Script#toolLoop(String) the tool loop} by default; faults (latency, 429
 * with {@code Retry-After}, 5xx, hangs, malformed bodies, a different reported model) can be
 * injected. It records the last {@value #RECORDED_LIMIT} requests it received.
 *
 * <p>Injected errors have OpenAI's shape: 429 {@code rate_limit_exceeded}, 5xx {@code server_error},
 * other statuses {@code invalid_request_error}, and 401 {@code invalid_api_key} when {@link
 * #requireApiKey} is set and the bearer token differs.
 *
 * <p>Thread-safe: requests are served on virtual threads, and the script, faults and records may be
 * changed from a test while it runs.
 */
public final class FakeOpenAi extends FakeServer<FakeOpenAi, FakeOpenAi.ChatRequest, FakeOpenAi.Script, FakeOpenAi.Reply> {

  /** How many received requests are kept for {@link #requests()}. */
  public static final int RECORDED_LIMIT = RECORD_LIMIT;

  /** The model name reported by {@code GET /v1/models} besides the models that were requested. */
  public static final String DEFAULT_MODEL = "gpt-4o-mini";

  private FakeOpenAi() {
    super("/v1", () -> Script.toolLoop("time_now"), Script::answer);
  }

  /** Starts a fake server on 127.0.0.1 on a free port. */
  public static FakeOpenAi start() {
    return start(0);
  }

  /** Starts a fake server on 127.0.0.1 on the given port ({@code 0} for a free one). */
  public static FakeOpenAi start(int port) {
    return new FakeOpenAi().listen(port);
  }

  /**
   * The next {@code n} requests answer 429 {@code rate_limit_exceeded} with {@code Retry-After:
   * retryAfterSeconds}; unlike the other fakes, a negative delay is accepted and sends none.
   */
  @Override
  public FakeOpenAi rateLimitNext(int n, int retryAfterSeconds) {
    return addFaults(n, new Fault.Status(429, retryAfterSeconds));
  }

  // ---------------------------------------------------------------- wire format

  @Override
  void routes(RoutesConfig routes) {
    routes.post("/v1/chat/completions", ctx -> serve(ctx, () -> ChatRequest.parse(ctx.body())));
    routes.get("/v1/models", this::models);
  }

  @Override
  Script textScript(String text) {
    return Script.text(text);
  }

  @Override
  Script toolLoopScript(String toolName) {
    return Script.toolLoop(toolName);
  }

  @Override
  boolean admit(Context ctx, ChatRequest request, String expectedApiKey) {
    return OpenAiErrors.admit(ctx, expectedApiKey);
  }

  @Override
  void rejectUnparsable(Context ctx, RuntimeException e) {
    OpenAiErrors.write(
        ctx, 400, "invalid_request_error", "invalid_request", "could not parse the request: " + e.getMessage(), -1);
  }

  @Override
  void writeStatusFault(Context ctx, int status, int retryAfterSeconds) {
    OpenAiErrors.injected(ctx, status, retryAfterSeconds);
  }

  @Override
  void scriptFailed(Context ctx, RuntimeException e) {
    OpenAiErrors.scriptFailed(ctx, e);
  }

  @Override
  String malformedEvent() {
    return "data: {\"id\": \"chatcmpl-broken\", \"choices\": [\n\n";
  }

  @Override
  String malformedBody() {
    return "{\"id\": \"chatcmpl-broken\", \"choices\": [";
  }

  private void models(Context ctx) {
    ObjectNode body = JSON.createObjectNode();
    body.put("object", "list");
    ArrayNode data = body.putArray("data");
    for (String name : modelNames(DEFAULT_MODEL)) {
      ObjectNode m = data.addObject();
      m.put("id", name);
      m.put("object", "model");
      m.put("created", 1_700_000_000L);
      m.put("owned_by", "keel-testkit");
    }
    ctx.contentType("application/json").result(JSON.writeValueAsString(body));
  }

  @Override
  void reply(Context ctx, Exchange<ChatRequest, Reply> x) throws IOException, InterruptedException {
    ChatRequest request = x.request();
    Reply reply = x.reply();
    String model = x.model();
    String id = "chatcmpl-" + nextResponseId();
    long promptTokens = request.estimatedTokens();
    long completionTokens = reply.estimatedTokens();
    if (request.stream()) {
      stream(ctx, request, reply, id, model, promptTokens, completionTokens, x.stall());
    } else {
      ObjectNode body = JSON.createObjectNode();
      body.put("id", id);
      body.put("object", "chat.completion");
      body.put("created", created());
      body.put("model", model);
      ObjectNode choice = body.putArray("choices").addObject();
      choice.put("index", 0);
      ObjectNode message = choice.putObject("message");
      message.put("role", "assistant");
      if (reply.text().isEmpty() && !reply.calls().isEmpty()) {
        message.putNull("content");
      } else {
        message.put("content", reply.text());
      }
      if (!reply.calls().isEmpty()) {
        ArrayNode calls = message.putArray("tool_calls");
        for (int i = 0; i < reply.calls().size(); i++) {
          Reply.Call c = reply.calls().get(i);
          ObjectNode call = calls.addObject();
          call.put("id", callId(id, i));
          call.put("type", "function");
          call.putObject("function").put("name", c.name()).put("arguments", c.arguments());
        }
      }
      choice.putNull("logprobs");
      choice.put("finish_reason", reply.calls().isEmpty() ? "stop" : "tool_calls");
      body.set("usage", usage(promptTokens, completionTokens, reply.cachedTokens()));
      ctx.contentType("application/json").result(JSON.writeValueAsString(body));
    }
  }

  private void stream(
      Context ctx,
      ChatRequest request,
      Reply reply,
      String id,
      String model,
      long promptTokens,
      long completionTokens,
      Duration stall)
      throws IOException, InterruptedException {
    OutputStream out = openStream(ctx);
    ObjectNode first = chunk(id, model);
    ObjectNode firstDelta = ((ObjectNode) first.get("choices").get(0)).putObject("delta");
    firstDelta.put("role", "assistant");
    firstDelta.put("content", "");
    send(out, first);
    pause(stall);
    for (String piece : pieces(reply.text())) {
      ObjectNode c = chunk(id, model);
      ((ObjectNode) c.get("choices").get(0)).putObject("delta").put("content", piece);
      send(out, c);
    }
    for (int i = 0; i < reply.calls().size(); i++) {
      Reply.Call call = reply.calls().get(i);
      ObjectNode head = chunk(id, model);
      ObjectNode tc = ((ObjectNode) head.get("choices").get(0)).putObject("delta").putArray("tool_calls").addObject();
      tc.put("index", i);
      tc.put("id", callId(id, i));
      tc.put("type", "function");
      tc.putObject("function").put("name", call.name()).put("arguments", "");
      send(out, head);
      String args = call.arguments();
      int half = args.length() / 2;
      for (String part : new String[] {args.substring(0, half), args.substring(half)}) {
        if (part.isEmpty()) {
          continue;
        }
        ObjectNode more = chunk(id, model);
        ObjectNode t = ((ObjectNode) more.get("choices").get(0)).putObject("delta").putArray("tool_calls").addObject();
        t.put("index", i);
        t.putObject("function").put("arguments", part);
        send(out, more);
      }
    }
    ObjectNode last = chunk(id, model);
    ObjectNode lastChoice = (ObjectNode) last.get("choices").get(0);
    lastChoice.putObject("delta");
    lastChoice.put("finish_reason", reply.calls().isEmpty() ? "stop" : "tool_calls");
    send(out, last);
    if (request.includeUsage()) {
      ObjectNode u = JSON.createObjectNode();
      u.put("id", id);
      u.put("object", "chat.completion.chunk");
      u.put("created", created());
      u.put("model", model);
      u.putArray("choices");
      u.set("usage", usage(promptTokens, completionTokens, reply.cachedTokens()));
      send(out, u);
    }
    write(out, "data: [DONE]\n\n");
  }

  private static ObjectNode chunk(String id, String model) {
    ObjectNode c = JSON.createObjectNode();
    c.put("id", id);
    c.put("object", "chat.completion.chunk");
    c.put("created", created());
    c.put("model", model);
    ObjectNode choice = c.putArray("choices").addObject();
    choice.put("index", 0);
    choice.putNull("finish_reason");
    return c;
  }

  private static void send(OutputStream out, ObjectNode chunk) throws IOException {
    write(out, "data: " + JSON.writeValueAsString(chunk) + "\n\n");
  }

  private static ObjectNode usage(long prompt, long completion, long cached) {
    ObjectNode u = JSON.createObjectNode();
    u.put("prompt_tokens", prompt);
    u.put("completion_tokens", completion);
    u.put("total_tokens", prompt + completion);
    u.putObject("prompt_tokens_details").put("cached_tokens", Math.min(cached, prompt));
    u.putObject("completion_tokens_details").put("reasoning_tokens", 0);
    return u;
  }

  private static String callId(String responseId, int index) {
    return "call_" + responseId.substring("chatcmpl-".length()) + "_" + index;
  }

  private static long created() {
    return System.currentTimeMillis() / 1000;
  }

  // ---------------------------------------------------------------- API types

  /**
   * Decides the fake's answer to one request. Implementations are called from many threads at once
   * and must be thread-safe; an exception becomes a 500 answer.
   */
  @FunctionalInterface
  public interface Script {

    /** The answer to {@code request}. */
    Reply answer(ChatRequest request);

    /** A script that always answers {@code text}. */
    static Script text(String text) {
      Reply reply = Reply.text(text);
      return request -> reply;
    }

    /**
     * The benchmark script: while the tool messages since the last user message number fewer than
     * K, answer one call to {@code toolName} with arguments {@code {}}; then answer {@code done
     * after K steps}. K is read from {@code steps=K} in the last user message (0 when absent).
     */
    static Script toolLoop(String toolName) {
      Objects.requireNonNull(toolName, "toolName");
      return request ->
          toolLoopStep(
              request.lastUserText(), request.toolMessagesSinceLastUser(), toolName, Reply::toolCall, Reply::text);
    }
  }

  /**
   * The fake's answer: text, tool calls, or both, and how many prompt tokens to report as cached.
   *
   * @param text the assistant's text (may be empty)
   * @param calls the tool calls, in order
   * @param cachedTokens prompt tokens reported in {@code prompt_tokens_details.cached_tokens}
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

    /** A tool call: the function name and its arguments as JSON text. */
    public record Call(String name, String arguments) {
      public Call {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(arguments, "arguments");
      }
    }

    /** A text answer. */
    public static Reply text(String text) {
      return new Reply(text, List.of(), 0);
    }

    /** An answer that is one tool call. */
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
   * A chat completion request as received.
   *
   * @param model the requested model
   * @param messages the conversation, in order
   * @param tools the function names offered in {@code tools}
   * @param stream whether a streamed answer was asked for
   * @param includeUsage whether {@code stream_options.include_usage} was set
   * @param temperature the requested temperature, when set
   * @param json the whole request body as JSON text
   */
  public record ChatRequest(
      String model,
      List<WireMessage> messages,
      List<String> tools,
      boolean stream,
      boolean includeUsage,
      Optional<Double> temperature,
      String json) implements FakeModelServer.Request {
    public ChatRequest {
      Objects.requireNonNull(model, "model");
      messages = List.copyOf(messages);
      tools = List.copyOf(tools);
      Objects.requireNonNull(temperature, "temperature");
      Objects.requireNonNull(json, "json");
    }

    static ChatRequest parse(String body) {
      JsonNode root = JSON.readTree(body);
      if (!root.isObject()) {
        throw new IllegalArgumentException("the body is not a JSON object");
      }
      if (!root.path("model").isString()) {
        throw new IllegalArgumentException("\"model\" is missing");
      }
      if (!root.path("messages").isArray()) {
        throw new IllegalArgumentException("\"messages\" is missing");
      }
      List<WireMessage> messages = new ArrayList<>();
      for (JsonNode m : root.get("messages")) {
        List<WireToolCall> calls = new ArrayList<>();
        for (JsonNode c : m.path("tool_calls")) {
          calls.add(
              new WireToolCall(
                  c.path("id").asString(""),
                  c.path("function").path("name").asString(""),
                  c.path("function").path("arguments").asString("")));
        }
        messages.add(
            new WireMessage(
                m.path("role").asString(""),
                contentText(m.path("content")),
                calls,
                Optional.ofNullable(m.path("tool_call_id").isString() ? m.get("tool_call_id").asString() : null)));
      }
      List<String> tools = new ArrayList<>();
      for (JsonNode t : root.path("tools")) {
        tools.add(t.path("function").path("name").asString(""));
      }
      Optional<Double> temperature =
          root.path("temperature").isNumber()
              ? Optional.of(root.get("temperature").asDouble())
              : Optional.empty();
      return new ChatRequest(
          root.get("model").asString(),
          messages,
          tools,
          root.path("stream").asBoolean(false),
          root.path("stream_options").path("include_usage").asBoolean(false),
          temperature,
          body);
    }

    private static String contentText(JsonNode content) {
      if (content.isString()) {
        return content.asString();
      }
      if (content.isArray()) {
        StringBuilder sb = new StringBuilder();
        for (JsonNode part : content) {
          sb.append(part.path("text").asString(""));
        }
        return sb.toString();
      }
      return "";
    }

    /** The text of the last {@code user} message, or empty. */
    public String lastUserText() {
      for (int i = messages.size() - 1; i >= 0; i--) {
        if (messages.get(i).role().equals("user")) {
          return messages.get(i).content();
        }
      }
      return "";
    }

    /** How many {@code tool} messages follow the last {@code user} message. */
    public int toolMessagesSinceLastUser() {
      int n = 0;
      for (int i = messages.size() - 1; i >= 0; i--) {
        String role = messages.get(i).role();
        if (role.equals("user")) {
          break;
        }
        if (role.equals("tool")) {
          n++;
        }
      }
      return n;
    }

    long estimatedTokens() {
      long chars = 0;
      for (WireMessage m : messages) {
        chars += m.content().length();
        for (WireToolCall c : m.toolCalls()) {
          chars += c.name().length() + c.arguments().length();
        }
      }
      return tokensFor(chars);
    }
  }

  /**
   * One message of a received request.
   *
   * @param role {@code system}, {@code user}, {@code assistant} or {@code tool}
   * @param content the text content (parts concatenated; empty when null)
   * @param toolCalls an assistant's {@code tool_calls}
   * @param toolCallId a tool message's {@code tool_call_id}
   */
  public record WireMessage(
      String role, String content, List<WireToolCall> toolCalls, Optional<String> toolCallId) {
    public WireMessage {
      Objects.requireNonNull(role, "role");
      Objects.requireNonNull(content, "content");
      toolCalls = List.copyOf(toolCalls);
      Objects.requireNonNull(toolCallId, "toolCallId");
    }
  }

  /** One {@code tool_calls} entry of a received assistant message. */
  public record WireToolCall(String id, String name, String arguments) {
    public WireToolCall {
      Objects.requireNonNull(id, "id");
      Objects.requireNonNull(name, "name");
      Objects.requireNonNull(arguments, "arguments");
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
    runMain(args, "FakeOpenAi", (port, tool) -> start(port).script(Script.toolLoop(tool)));
  }
}
