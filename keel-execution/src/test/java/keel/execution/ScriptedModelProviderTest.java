package keel.execution;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import keel.core.AgentDescriptor;
import keel.core.AgentDescriptor.ScriptCall;
import keel.core.AgentDescriptor.ScriptRule;
import keel.core.AgentDescriptor.ScriptTurn;
import keel.core.Content;
import keel.core.Message;
import keel.core.ToolCall;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

class ScriptedModelProviderTest {

  private final ScriptedModelProvider provider = new ScriptedModelProvider();

  private static AgentDescriptor.ModelSpec spec(ScriptRule... rules) {
    return new AgentDescriptor.ModelSpec(
        "scripted",
        "echo-bot",
        Optional.empty(),
        Optional.empty(),
        Optional.empty(),
        AgentDescriptor.OnDrift.WARN,
        Optional.empty(),
        List.of(rules));
  }

  private static ScriptRule rule(String when, ScriptTurn... turns) {
    return new ScriptRule(Optional.ofNullable(when), List.of(turns));
  }

  private static ScriptTurn say(String text, ScriptCall... calls) {
    return new ScriptTurn(text, List.of(calls));
  }

  private static ModelRequest request(AgentDescriptor.ModelSpec spec, List<Message> conversation, int step) {
    return new ModelRequest("echo", "s-1", spec, "Be brief.", conversation, List.of(), step);
  }

  @Test
  void firstMatchingRule_answers() {
    var spec =
        spec(rule("refund", say("refunding")), rule("hello|hi", say("greetings")), rule(null, say("fallback")));
    assertThat(provider.complete(request(spec, List.of(new Message.User("well hi there")), 0), ModelStream.NONE).text())
        .isEqualTo("greetings");
    assertThat(provider.complete(request(spec, List.of(new Message.User("a refund please")), 0), ModelStream.NONE).text())
        .isEqualTo("refunding");
    assertThat(provider.complete(request(spec, List.of(new Message.User("weather?")), 0), ModelStream.NONE).text())
        .isEqualTo("fallback");
  }

  @Test
  void noMatchingRule_isPermanentFailureSayingSo() {
    var spec = spec(rule("refund", say("refunding")));
    assertThatThrownBy(() -> provider.complete(request(spec, List.of(new Message.User("hello")), 0), ModelStream.NONE))
        .isInstanceOfSatisfying(ModelFailure.class, f -> assertThat(f.kind()).isEqualTo(ModelFailure.Kind.PERMANENT))
        .hasMessageContaining("agent echo")
        .hasMessageContaining("no rule matches the input \"hello\"");
  }

  @Test
  void eachStep_answersItsTurn_withDeterministicCallIds() {
    var spec =
        spec(
            rule(
                null,
                say("", new ScriptCall("time_now", "{}"), new ScriptCall("memory_get", "{\"key\":\"k\"}")),
                say("it is {{result}}")));
    ModelResponse first = provider.complete(request(spec, List.of(new Message.User("time?")), 0), ModelStream.NONE);
    assertThat(first.text()).isEmpty();
    assertThat(first.toolCalls())
        .containsExactly(
            new ToolCall("call_0_0", "time_now", "{}"), new ToolCall("call_0_1", "memory_get", "{\"key\":\"k\"}"));

    List<Message> conversation =
        List.of(
            new Message.User("time?"),
            new Message.Assistant("", first.toolCalls()),
            new Message.ToolResult("call_0_0", "time_now", Content.inline("12:00"), false),
            new Message.ToolResult("call_0_1", "memory_get", Content.inline("noon"), false));
    ModelResponse second = provider.complete(request(spec, conversation, 1), ModelStream.NONE);
    assertThat(second.text()).isEqualTo("it is noon");
    assertThat(second.toolCalls()).isEmpty();
    assertThat(second.modelVersion()).isEqualTo("scripted/echo-bot");
  }

  @Test
  void templatesInArguments_produceValidJson_forInputWithQuotesAndNewlines() throws Exception {
    String input = "say \"hi\"\nand {{result}} \\ done";
    var spec =
        spec(
            rule(
                null,
                say(
                    "echo: {{input}}",
                    new ScriptCall(
                        "memory_put",
                        "{\"key\":\"last\",\"value\":\"{{input}}\",\"tags\":[\"{{result}}\",2],\"n\":{\"deep\":\"<{{input}}>\"}}"))));
    List<Message> conversation =
        List.of(
            new Message.ToolResult("c0", "t", Content.inline("prev \"r\""), false), new Message.User(input));
    ModelResponse response = provider.complete(request(spec, conversation, 0), ModelStream.NONE);

    assertThat(response.text()).isEqualTo("echo: " + input);
    JsonNode args = JsonMapper.builder().build().readTree(response.toolCalls().getFirst().arguments());
    assertThat(args.get("key").asString()).isEqualTo("last");
    assertThat(args.get("value").asString()).isEqualTo(input);
    assertThat(args.at("/tags/0").asString()).isEqualTo("prev \"r\"");
    assertThat(args.at("/tags/1").asInt()).isEqualTo(2);
    assertThat(args.at("/n/deep").asString()).isEqualTo("<" + input + ">");
  }

  @Test
  void runningOutOfTurns_isPermanentFailureNamingRuleAndTurn() {
    var spec = spec(rule("x", say("a")), rule(null, say("", new ScriptCall("time_now", "{}")), say("b")));
    assertThatThrownBy(() -> provider.complete(request(spec, List.of(new Message.User("hello")), 2), ModelStream.NONE))
        .isInstanceOfSatisfying(ModelFailure.class, f -> assertThat(f.retryable()).isFalse())
        .hasMessage(
            "scripted model for agent echo: rule 1 has no turn 2 (it has 2 turns); add a turn that answers without calling tools");
  }

  @Test
  void ungrantedTools_areStillReturned() {
    var spec = spec(rule(null, say("", new ScriptCall("delete_everything", "{}"))));
    ModelResponse response = provider.complete(request(spec, List.of(new Message.User("go")), 0), ModelStream.NONE);
    assertThat(response.toolCalls()).extracting(ToolCall::name).containsExactly("delete_everything");
  }

  @Test
  void invalidArgumentsJson_isPermanentFailure() {
    var spec = spec(rule(null, say("", new ScriptCall("t", "{not json"))));
    assertThatThrownBy(() -> provider.complete(request(spec, List.of(new Message.User("go")), 0), ModelStream.NONE))
        .isInstanceOf(ModelFailure.class)
        .hasMessageContaining("rule 0 turn 0 call 0 (t): arguments are not valid JSON");
  }

  @Test
  void streaming_deliversTextInPieces_thatConcatenateToTheAnswer() {
    var spec = spec(rule(null, say("the quick brown fox jumps over the lazy dog")));
    List<String> pieces = new ArrayList<>();
    ModelResponse response = provider.complete(request(spec, List.of(new Message.User("go")), 0), pieces::add);
    assertThat(pieces).hasSizeBetween(2, 5);
    assertThat(String.join("", pieces)).isEqualTo(response.text());
  }

  @Test
  void throwingSubscriber_doesNotFailTheCall() {
    var spec = spec(rule(null, say("some text here")));
    ModelResponse response =
        provider.complete(
            request(spec, List.of(new Message.User("go")), 0),
            text -> {
              throw new IllegalStateException("subscriber bug");
            });
    assertThat(response.text()).isEqualTo("some text here");
  }

  @Test
  void sameRequest_givesTheSameResponse() {
    var spec = spec(rule(null, say("answer {{input}}", new ScriptCall("t", "{\"q\":\"{{input}}\"}"))));
    ModelRequest request = request(spec, List.of(new Message.User("question")), 0);
    ModelResponse a = provider.complete(request, ModelStream.NONE);
    ModelResponse b = provider.complete(request, ModelStream.NONE);
    assertThat(a).isEqualTo(b);
    assertThat(a.usage().inputTokens()).isPositive();
    assertThat(a.usage().outputTokens()).isPositive();
  }
}
