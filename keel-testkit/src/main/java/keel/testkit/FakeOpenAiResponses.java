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
import java.util.function.Consumer;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * A fake OpenAI Responses API server on 127.0.0.1 that speaks the real wire format, for tests and
 * benchmarks.
 *
 * <p>It serves {@code POST /v1/responses}: a plain {@code response} object, or with {@code "stream":
 * true} the typed server-sent events {@code response.created}, {@code response.in_progress}, {@code
 * response.output_item.added}, {@code response.content_part.added}, {@code
 * response.output_text.delta}/{@code .done}, {@code response.function_call_arguments.delta}/{@code
 * .done}, {@code response.output_item.done} and {@code response.completed}. Errors have OpenAI's
 * shape, {@code {"error": {"message", "type", "param", "code"}}}.
 *
 * <p>What it answers is decided by a {@link Script}, {@link Script#toolLoop(String) the tool loop}
 * by default; faults (latency, 429 with {@code Retry-After}, 5xx, hangs, stalled streams, malformed
 * bodies, a different reported model) can be injected. Token counts are deterministic: a quarter of
 * the characters, rounded up. It records the last {@value #RECORDED_LIMIT} requests it received.
 *
 * <p>Thread-safe: requests are served on virtual threads, and the script, faults and records may be
 * changed from a test while it runs.
 */
public final class FakeOpenAiResponses
    extends FakeServer<
        FakeOpenAiResponses, FakeOpenAiResponses.ResponsesRequest, FakeOpenAiResponses.Script, FakeOpenAiResponses.Reply> {

  /** How many received requests are kept for {@link #requests()}. */
  public static final int RECORDED_LIMIT = RECORD_LIMIT;

  private FakeOpenAiResponses() {
    super("/v1", () -> Script.toolLoop("time_now"), Script::answer);
  }

  /** Starts a fake server on 127.0.0.1 on a free port. */
  public static FakeOpenAiResponses start() {
    return start(0);
  }

  /** Starts a fake server on 127.0.0.1 on the given port ({@code 0} for a free one). */
  public static FakeOpenAiResponses start(int port) {
    return new FakeOpenAiResponses().listen(port);
  }

  // ---------------------------------------------------------------- wire format

  @Override
  void routes(RoutesConfig routes) {
    routes.post("/v1/responses", ctx -> serve(ctx, () -> ResponsesRequest.parse(ctx.body())));
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
  boolean admit(Context ctx, ResponsesRequest request, String expectedApiKey) {
    return OpenAiErrors.admit(ctx, expectedApiKey);
  }

  @Override
  void rejectUnparsable(Context ctx, RuntimeException e) {
    OpenAiErrors.write(ctx, 400, "invalid_request_error", null, "could not parse the request: " + e.getMessage(), -1);
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
    return "event: response.created\ndata: {\"type\": \"response.created\", \"response\": {\n\n";
  }

  @Override
  String malformedBody() {
    return "{\"id\": \"resp_broken\", \"output\": [";
  }

  @Override
  void reply(Context ctx, Exchange<ResponsesRequest, Reply> x) throws IOException, InterruptedException {
    ResponsesRequest request = x.request();
    Reply reply = x.reply();
    long n = nextResponseId();
    Answer answer =
        new Answer("resp_fake" + n, n, x.model(), request, reply, request.estimatedTokens(), reply.estimatedTokens());
    if (request.stream()) {
      stream(ctx, answer, x.stall());
    } else {
      ctx.contentType("application/json").result(JSON.writeValueAsString(answer.response("completed", true)));
    }
  }

  /** One answer being written: its ids, and the response object in its states. */
  private record Answer(
      String id, long n, String model, ResponsesRequest request, Reply reply, long inputTokens, long outputTokens) {

    String messageId() {
      return "msg_fake" + n;
    }

    String itemId(int i) {
      return "fc_fake" + n + "_" + i;
    }

    String callId(int i) {
      return "call_fake" + n + "_" + i;
    }

    ObjectNode messageItem(String status, String text) {
      ObjectNode item = JSON.createObjectNode();
      item.put("id", messageId());
      item.put("type", "message");
      item.put("status", status);
      item.put("role", "assistant");
      ArrayNode content = item.putArray("content");
      if (text != null) {
        content.add(outputText(text));
      }
      return item;
    }

    ObjectNode callItem(int i, String status, String arguments) {
      Reply.Call call = reply.calls().get(i);
      ObjectNode item = JSON.createObjectNode();
      item.put("id", itemId(i));
      item.put("type", "function_call");
      item.put("status", status);
      item.put("arguments", arguments);
      item.put("call_id", callId(i));
      item.put("name", call.name());
      return item;
    }

    ObjectNode response(String status, boolean complete) {
      ObjectNode r = JSON.createObjectNode();
      r.put("id", id);
      r.put("object", "response");
      r.put("created_at", System.currentTimeMillis() / 1000);
      r.put("status", status);
      r.putNull("error");
      r.putNull("incomplete_details");
      request.instructions().ifPresentOrElse(i -> r.put("instructions", i), () -> r.putNull("instructions"));
      r.put("model", model);
      ArrayNode output = r.putArray("output");
      if (complete) {
        if (!reply.text().isEmpty()) {
          output.add(messageItem("completed", reply.text()));
        }
        for (int i = 0; i < reply.calls().size(); i++) {
          output.add(callItem(i, "completed", reply.calls().get(i).arguments()));
        }
      }
      r.put("parallel_tool_calls", true);
      request.temperature().ifPresentOrElse(t -> r.put("temperature", t), () -> r.put("temperature", 1.0));
      r.put("tool_choice", "auto");
      r.put("store", request.store().orElse(true));
      if (complete) {
        ObjectNode u = r.putObject("usage");
        u.put("input_tokens", inputTokens);
        u.putObject("input_tokens_details").put("cached_tokens", Math.min(reply.cachedTokens(), inputTokens));
        u.put("output_tokens", outputTokens);
        u.putObject("output_tokens_details").put("reasoning_tokens", 0);
        u.put("total_tokens", inputTokens + outputTokens);
      } else {
        r.putNull("usage");
      }
      return r;
    }
  }

  private static ObjectNode outputText(String text) {
    ObjectNode part = JSON.createObjectNode();
    part.put("type", "output_text");
    part.put("text", text);
    part.putArray("annotations");
    return part;
  }

  private void stream(Context ctx, Answer a, Duration stall) throws IOException, InterruptedException {
    Events events = new Events(openStream(ctx));
    events.send("response.created", e -> e.set("response", a.response("in_progress", false)));
    pause(stall);
    events.send("response.in_progress", e -> e.set("response", a.response("in_progress", false)));
    int outputIndex = 0;
    Reply reply = a.reply();
    if (!reply.text().isEmpty()) {
      int index = outputIndex++;
      events.send("response.output_item.added", e -> e.put("output_index", index).set("item", a.messageItem("in_progress", null)));
      events.send(
          "response.content_part.added",
          e -> e.put("item_id", a.messageId()).put("output_index", index).put("content_index", 0).set("part", outputText("")));
      for (String piece : pieces(reply.text())) {
        events.send(
            "response.output_text.delta",
            e -> e.put("item_id", a.messageId()).put("output_index", index).put("content_index", 0).put("delta", piece).putArray("logprobs"));
      }
      events.send(
          "response.output_text.done",
          e -> e.put("item_id", a.messageId()).put("output_index", index).put("content_index", 0).put("text", reply.text()).putArray("logprobs"));
      events.send(
          "response.content_part.done",
          e -> e.put("item_id", a.messageId()).put("output_index", index).put("content_index", 0).set("part", outputText(reply.text())));
      events.send("response.output_item.done", e -> e.put("output_index", index).set("item", a.messageItem("completed", reply.text())));
    }
    for (int i = 0; i < reply.calls().size(); i++) {
      int call = i;
      int index = outputIndex++;
      String args = reply.calls().get(i).arguments();
      events.send("response.output_item.added", e -> e.put("output_index", index).set("item", a.callItem(call, "in_progress", "")));
      int half = args.length() / 2;
      for (String part : new String[] {args.substring(0, half), args.substring(half)}) {
        if (!part.isEmpty()) {
          events.send(
              "response.function_call_arguments.delta",
              e -> e.put("item_id", a.itemId(call)).put("output_index", index).put("delta", part));
        }
      }
      events.send(
          "response.function_call_arguments.done",
          e -> e.put("item_id", a.itemId(call)).put("output_index", index).put("arguments", args));
      events.send("response.output_item.done", e -> e.put("output_index", index).set("item", a.callItem(call, "completed", args)));
    }
    events.send("response.completed", e -> e.set("response", a.response("completed", true)));
  }

  /** Writes typed events with increasing sequence numbers. */
  private static final class Events {
    private final OutputStream out;
    private int sequence;

    Events(OutputStream out) {
      this.out = out;
    }

    void send(String type, Consumer<ObjectNode> fill) throws IOException {
      ObjectNode e = JSON.createObjectNode();
      e.put("type", type);
      e.put("sequence_number", sequence++);
      fill.accept(e);
      write(out, "event: " + type + "\ndata: " + JSON.writeValueAsString(e) + "\n\n");
    }
  }

  // ---------------------------------------------------------------- API types

  /**
   * Decides the fake's answer to one request. Implementations are called from many threads at once
   * and must be thread-safe; an exception becomes a 500 answer.
   */
  @FunctionalInterface
  public interface Script {

    /** The answer to {@code request}. */
    Reply answer(ResponsesRequest request);

    /** A script that always answers {@code text}. */
    static Script text(String text) {
      Reply reply = Reply.text(text);
      return request -> reply;
    }

    /**
     * The benchmark script: while the {@code function_call_output} items since the last user
     * message number fewer than K, answer one call to {@code toolName} with arguments {@code {}};
     * then answer {@code done after K steps}. K is read from {@code steps=K} in the last user
     * message (0 when absent).
     */
    static Script toolLoop(String toolName) {
      Objects.requireNonNull(toolName, "toolName");
      return request ->
          toolLoopStep(
              request.lastUserText(), request.functionOutputsSinceLastUser(), toolName, Reply::toolCall, Reply::text);
    }
  }

  /**
   * The fake's answer: text, function calls, or both, and how many input tokens to report as
   * cached.
   *
   * @param text the assistant's text (may be empty)
   * @param calls the function calls, in order
   * @param cachedTokens input tokens reported in {@code usage.input_tokens_details.cached_tokens}
   *     (capped at the input tokens)
   */
  public record Reply(String text, List<Call> calls, long cachedTokens) {
    public Reply {
      Objects.requireNonNull(text, "text");
      calls = List.copyOf(calls);
      if (cachedTokens < 0) {
        throw new IllegalArgumentException("cachedTokens cannot be negative");
      }
    }

    /** A function call: the name and its arguments as JSON text. */
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

    /** An answer that is one function call. */
    public static Reply toolCall(String name, String arguments) {
      return new Reply("", List.of(new Call(name, arguments)), 0);
    }

    /** This reply, reporting {@code n} cached input tokens. */
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
   * A {@code POST /v1/responses} request as received.
   *
   * @param model the requested model
   * @param instructions {@code instructions}, when set
   * @param input the input items, in order ({@code input} given as a string is one user message)
   * @param tools the function names offered in {@code tools}
   * @param stream whether a streamed answer was asked for
   * @param temperature the requested temperature, when set
   * @param promptCacheKey {@code prompt_cache_key}, when set
   * @param store {@code store}, when set
   * @param json the whole request body as JSON text
   */
  public record ResponsesRequest(
      String model,
      Optional<String> instructions,
      List<InputItem> input,
      List<String> tools,
      boolean stream,
      Optional<Double> temperature,
      Optional<String> promptCacheKey,
      Optional<Boolean> store,
      String json) implements FakeModelServer.Request {
    public ResponsesRequest {
      Objects.requireNonNull(model, "model");
      Objects.requireNonNull(instructions, "instructions");
      input = List.copyOf(input);
      tools = List.copyOf(tools);
      Objects.requireNonNull(temperature, "temperature");
      Objects.requireNonNull(promptCacheKey, "promptCacheKey");
      Objects.requireNonNull(store, "store");
      Objects.requireNonNull(json, "json");
    }

    static ResponsesRequest parse(String body) {
      JsonNode root = JSON.readTree(body);
      if (!root.isObject()) {
        throw new IllegalArgumentException("the body is not a JSON object");
      }
      if (!root.path("model").isString()) {
        throw new IllegalArgumentException("\"model\" is missing");
      }
      JsonNode inputNode = root.path("input");
      List<InputItem> input = new ArrayList<>();
      if (inputNode.isString()) {
        input.add(new InputItem.Message("user", inputNode.asString()));
      } else if (inputNode.isArray()) {
        for (JsonNode item : inputNode) {
          input.add(InputItem.parse(item));
        }
      } else {
        throw new IllegalArgumentException("\"input\" must be a string or a list of items");
      }
      List<String> tools = new ArrayList<>();
      for (JsonNode t : root.path("tools")) {
        tools.add(t.path("name").asString(""));
      }
      return new ResponsesRequest(
          root.get("model").asString(),
          text(root, "instructions"),
          input,
          tools,
          root.path("stream").asBoolean(false),
          root.path("temperature").isNumber() ? Optional.of(root.get("temperature").asDouble()) : Optional.empty(),
          text(root, "prompt_cache_key"),
          root.path("store").isBoolean() ? Optional.of(root.get("store").asBoolean()) : Optional.empty(),
          body);
    }

    private static Optional<String> text(JsonNode node, String field) {
      return node.path(field).isString() ? Optional.of(node.get(field).asString()) : Optional.empty();
    }

    /** The text of the last {@code user} message, or empty. */
    public String lastUserText() {
      for (int i = input.size() - 1; i >= 0; i--) {
        if (input.get(i) instanceof InputItem.Message m && m.role().equals("user")) {
          return m.text();
        }
      }
      return "";
    }

    /** How many {@code function_call_output} items follow the last {@code user} message. */
    public int functionOutputsSinceLastUser() {
      int n = 0;
      for (int i = input.size() - 1; i >= 0; i--) {
        InputItem item = input.get(i);
        if (item instanceof InputItem.Message m && m.role().equals("user")) {
          break;
        }
        if (item instanceof InputItem.FunctionCallOutput) {
          n++;
        }
      }
      return n;
    }

    long estimatedTokens() {
      long chars = instructions.map(String::length).orElse(0);
      for (InputItem item : input) {
        chars +=
            switch (item) {
              case InputItem.Message m -> m.text().length();
              case InputItem.FunctionCall c -> c.name().length() + c.arguments().length();
              case InputItem.FunctionCallOutput o -> o.output().length();
            };
      }
      return tokensFor(chars);
    }
  }

  /** One item of a received request's {@code input}. */
  public sealed interface InputItem {

    /**
     * A message ({@code type: message}, or an item with a {@code role} and no type).
     *
     * @param role {@code system}, {@code developer}, {@code user} or {@code assistant}
     * @param text its text ({@code input_text}/{@code output_text} parts concatenated)
     */
    record Message(String role, String text) implements InputItem {
      public Message {
        Objects.requireNonNull(role, "role");
        Objects.requireNonNull(text, "text");
      }
    }

    /** A {@code function_call} item the model made earlier. */
    record FunctionCall(String callId, String name, String arguments) implements InputItem {
      public FunctionCall {
        Objects.requireNonNull(callId, "callId");
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(arguments, "arguments");
      }
    }

    /** A {@code function_call_output} item: a tool's result. */
    record FunctionCallOutput(String callId, String output) implements InputItem {
      public FunctionCallOutput {
        Objects.requireNonNull(callId, "callId");
        Objects.requireNonNull(output, "output");
      }
    }

    private static InputItem parse(JsonNode item) {
      String type = item.path("type").asString(item.has("role") ? "message" : "");
      return switch (type) {
        case "message" -> new Message(item.path("role").asString(""), contentText(item.path("content")));
        case "function_call" ->
            new FunctionCall(
                item.path("call_id").asString(""), item.path("name").asString(""), item.path("arguments").asString(""));
        case "function_call_output" ->
            new FunctionCallOutput(item.path("call_id").asString(""), contentText(item.path("output")));
        default -> throw new IllegalArgumentException("unsupported input item type \"" + type + "\"");
      };
    }

    private static String contentText(JsonNode content) {
      if (content.isString()) {
        return content.asString();
      }
      StringBuilder sb = new StringBuilder();
      for (JsonNode part : content) {
        sb.append(part.path("text").asString(""));
      }
      return sb.toString();
    }
  }
}
