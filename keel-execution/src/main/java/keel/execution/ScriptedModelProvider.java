package keel.execution;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;
import keel.core.AgentDescriptor.ScriptCall;
import keel.core.AgentDescriptor.ScriptRule;
import keel.core.AgentDescriptor.ScriptTurn;
import keel.core.Content;
import keel.core.Message;
import keel.core.ToolCall;
import keel.core.Usage;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;
import tools.jackson.databind.node.StringNode;

/**
 * A deterministic model (provider {@code scripted}) whose answers come from the agent's {@code
 * spec.model.script}, for tests, demos and benchmarks that must not depend on a real model.
 *
 * <p>For each call it picks the first {@link ScriptRule} whose {@code when} regular expression is
 * found in the latest user message (a rule without {@code when} matches anything) and answers with
 * that rule's turn number {@link ModelRequest#step()}. In the turn's text and in every string value
 * of its tool arguments, {@code {{input}}} becomes the latest user message and {@code {{result}}}
 * the text of the latest tool result; arguments are substituted as parsed JSON, so any input yields
 * valid JSON. Tool call ids are {@code call_<step>_<index>}; token usage is estimated as characters
 * divided by four; the reported version is {@code scripted/<model name>}.
 *
 * <p>The answer is returned as the script says, even when it names a tool the agent is not granted:
 * refusing such calls is the executor's job, and tests rely on scripted models asking for them.
 *
 * <p>Thread-safe and stateless apart from a cache of compiled patterns.
 */
public final class ScriptedModelProvider implements ModelProvider {

  /** The provider's name in {@code spec.model.provider}. */
  public static final String NAME = "scripted";

  private static final ObjectMapper JSON = JsonMapper.builder().build();
  private static final Pattern TEMPLATE = Pattern.compile("\\{\\{(input|result)}}");
  private static final int MAX_CACHED_PATTERNS = 10_000;

  private final Map<String, Pattern> patterns = new ConcurrentHashMap<>();

  /** Creates a scripted provider. */
  public ScriptedModelProvider() {}

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public ModelResponse complete(ModelRequest request, ModelStream stream) {
    List<ScriptRule> rules = request.model().script();
    String input = request.latestInput();
    int ruleIndex = matchingRule(request, rules, input);
    ScriptRule rule = rules.get(ruleIndex);
    int step = request.step();
    if (step < 0 || step >= rule.turns().size()) {
      throw new ModelFailure(
          ModelFailure.Kind.PERMANENT,
          "scripted model for agent "
              + request.agent()
              + ": rule "
              + ruleIndex
              + " has no turn "
              + step
              + " (it has "
              + rule.turns().size()
              + " turns); add a turn that answers without calling tools");
    }
    ScriptTurn turn = rule.turns().get(step);
    String result = latestToolResult(request.conversation());
    String say = substitute(turn.say(), input, result);

    List<ToolCall> calls = new ArrayList<>();
    for (int i = 0; i < turn.calls().size(); i++) {
      ScriptCall call = turn.calls().get(i);
      String arguments = substituteArguments(request, ruleIndex, step, i, call, input, result);
      calls.add(new ToolCall("call_" + step + "_" + i, call.tool(), arguments));
    }

    ModelStream guarded = new GuardedStream(stream, "scripted model for agent " + request.agent());
    for (String piece : pieces(say)) {
      guarded.onText(piece);
    }

    long outputChars = say.length();
    for (ToolCall c : calls) {
      outputChars += c.name().length() + c.arguments().length();
    }
    Usage usage = new Usage(estimate(inputChars(request)), estimate(outputChars), 0, 0);
    return new ModelResponse(say, calls, usage, "scripted/" + request.model().name());
  }

  private int matchingRule(ModelRequest request, List<ScriptRule> rules, String input) {
    for (int i = 0; i < rules.size(); i++) {
      Optional<String> when = rules.get(i).when();
      if (when.isEmpty() || pattern(request, i, when.get()).matcher(input).find()) {
        return i;
      }
    }
    throw new ModelFailure(
        ModelFailure.Kind.PERMANENT,
        "scripted model for agent "
            + request.agent()
            + ": no rule matches the input \""
            + abbreviate(input)
            + "\" ("
            + rules.size()
            + " rules); add a rule without \"when\" to answer anything");
  }

  private Pattern pattern(ModelRequest request, int ruleIndex, String regex) {
    Pattern cached = patterns.get(regex);
    if (cached != null) {
      return cached;
    }
    Pattern compiled;
    try {
      compiled = Pattern.compile(regex);
    } catch (PatternSyntaxException e) {
      throw new ModelFailure(
          ModelFailure.Kind.PERMANENT,
          "scripted model for agent "
              + request.agent()
              + ": rule "
              + ruleIndex
              + " has an invalid \"when\" regular expression \""
              + regex
              + "\": "
              + e.getDescription());
    }
    if (patterns.size() < MAX_CACHED_PATTERNS) {
      patterns.put(regex, compiled);
    }
    return compiled;
  }

  private static String substituteArguments(
      ModelRequest request, int rule, int step, int index, ScriptCall call, String input, String result) {
    JsonNode args;
    try {
      args = JSON.readTree(call.arguments());
    } catch (JacksonException e) {
      throw new ModelFailure(
          ModelFailure.Kind.PERMANENT,
          "scripted model for agent "
              + request.agent()
              + ": rule "
              + rule
              + " turn "
              + step
              + " call "
              + index
              + " ("
              + call.tool()
              + "): arguments are not valid JSON: "
              + e.getOriginalMessage());
    }
    return JSON.writeValueAsString(walk(args, input, result));
  }

  private static JsonNode walk(JsonNode node, String input, String result) {
    if (node.isString()) {
      return StringNode.valueOf(substitute(node.asString(), input, result));
    }
    if (node.isObject()) {
      ObjectNode copy = JSON.createObjectNode();
      for (Map.Entry<String, JsonNode> e : node.properties()) {
        copy.set(e.getKey(), walk(e.getValue(), input, result));
      }
      return copy;
    }
    if (node.isArray()) {
      ArrayNode copy = JSON.createArrayNode();
      for (JsonNode element : node) {
        copy.add(walk(element, input, result));
      }
      return copy;
    }
    return node;
  }

  /** Replaces the templates in one pass, so text substituted in is never expanded again. */
  static String substitute(String template, String input, String result) {
    Matcher m = TEMPLATE.matcher(template);
    return m.replaceAll(
        match -> Matcher.quoteReplacement(match.group(1).equals("input") ? input : result));
  }

  private static String latestToolResult(List<Message> conversation) {
    for (int i = conversation.size() - 1; i >= 0; i--) {
      if (conversation.get(i) instanceof Message.ToolResult r) {
        return switch (r.content()) {
          case Content.Inline inline -> inline.text();
          case Content.Blob blob -> blob.preview();
        };
      }
    }
    return "";
  }

  private static long inputChars(ModelRequest request) {
    long chars = request.instructions().length();
    for (Message m : request.conversation()) {
      chars +=
          switch (m) {
            case Message.User u -> u.text().length();
            case Message.Assistant a -> {
              long n = a.text().length();
              for (ToolCall c : a.toolCalls()) {
                n += c.name().length() + c.arguments().length();
              }
              yield n;
            }
            case Message.ToolResult r ->
                switch (r.content()) {
                  case Content.Inline inline -> inline.text().length();
                  case Content.Blob blob -> blob.bytes();
                };
          };
    }
    return chars;
  }

  private static long estimate(long chars) {
    return (chars + 3) / 4;
  }

  /** Splits text into at most four pieces at word boundaries, for streaming. */
  static List<String> pieces(String text) {
    List<String> pieces = new ArrayList<>();
    if (text.isEmpty()) {
      return pieces;
    }
    int target = Math.max(1, text.length() / 4);
    int start = 0;
    while (start < text.length()) {
      int end = Math.min(text.length(), start + target);
      while (end < text.length() && !Character.isWhitespace(text.charAt(end))) {
        end++;
      }
      pieces.add(text.substring(start, end));
      start = end;
    }
    return pieces;
  }

  private static String abbreviate(String s) {
    return s.length() <= 80 ? s : s.substring(0, 77) + "...";
  }
}
