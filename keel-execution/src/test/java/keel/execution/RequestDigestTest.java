package keel.execution;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Optional;
import keel.core.AgentDescriptor;
import keel.core.Content;
import keel.core.Message;
import keel.core.ToolCall;
import org.junit.jupiter.api.Test;

/**
 * The request digest keys the response cache and the coalescing of identical calls, so its bytes
 * must not change when its implementation does: golden values, and what changes the digest.
 */
class RequestDigestTest {

  private static ModelRequest request(Optional<String> baseUrl, Optional<Double> temperature, List<Message> conversation) {
    AgentDescriptor.ModelSpec model = new AgentDescriptor.ModelSpec(
        "openai", "gpt-4o-mini", Optional.empty(), baseUrl, temperature, AgentDescriptor.OnDrift.WARN, Optional.empty(), List.of());
    return new ModelRequest("support", "s-1", model, "Be terse. \"Quoted\" and \u00e9\u00e8 and a tab\t.", conversation,
        List.of(new ToolSpec("time_now", "Returns the time.", "{\"type\":\"object\",\"properties\":{}}")), 3);
  }

  private static final List<Message> CONVERSATION = List.of(
      new Message.User("what time is it? \u2603 \uD83D\uDE00"),
      new Message.Assistant("", List.of(new ToolCall("call_1", "time_now", "{}"), new ToolCall("call_2", "lookup", "{\"q\":\"a\\nb\"}"))),
      new Message.ToolResult("call_1", "time_now", new Content.Inline("{\"utc\":\"2026-11-21T12:00:00Z\"}"), false),
      new Message.ToolResult("call_2", "lookup", new Content.Blob("ab".repeat(32), 123_456, "preview"), true),
      new Message.Assistant("It is noon.", List.of()));

  @Test
  void canonicalJson_isStable() {
    assertThat(RequestDigest.canonicalJson("support", request(Optional.of("http://127.0.0.1:1/v1"), Optional.of(0.25), CONVERSATION),
        "openai", "gpt-4o-mini"))
        .isEqualTo("{\"agent\":\"support\",\"provider\":\"openai\",\"model\":\"gpt-4o-mini\",\"base_url\":\"http://127.0.0.1:1/v1\","
            + "\"temperature\":0.25,\"instructions\":\"Be terse. \\\"Quoted\\\" and \u00e9\u00e8 and a tab\\t.\",\"conversation\":["
            + "{\"role\":\"user\",\"text\":\"what time is it? \u2603 \uD83D\uDE00\"},"
            + "{\"role\":\"assistant\",\"text\":\"\",\"tool_calls\":[{\"id\":\"call_1\",\"name\":\"time_now\",\"arguments\":\"{}\"},"
            + "{\"id\":\"call_2\",\"name\":\"lookup\",\"arguments\":\"{\\\"q\\\":\\\"a\\\\nb\\\"}\"}]},"
            + "{\"role\":\"tool\",\"call_id\":\"call_1\",\"tool\":\"time_now\",\"error\":false,\"text\":\"{\\\"utc\\\":\\\"2026-11-21T12:00:00Z\\\"}\"},"
            + "{\"role\":\"tool\",\"call_id\":\"call_2\",\"tool\":\"lookup\",\"error\":true,\"blob_sha256\":\"" + "ab".repeat(32) + "\"},"
            + "{\"role\":\"assistant\",\"text\":\"It is noon.\",\"tool_calls\":[]}],"
            + "\"tools\":[{\"name\":\"time_now\",\"description\":\"Returns the time.\",\"parameters_schema\":\"{\\\"type\\\":\\\"object\\\",\\\"properties\\\":{}}\"}]}");
  }

  @Test
  void sha256_goldenValues_withAndWithoutAgent_nullsIncluded() {
    ModelRequest full = request(Optional.of("http://127.0.0.1:1/v1"), Optional.of(0.25), CONVERSATION);
    ModelRequest bare = request(Optional.empty(), Optional.empty(), List.of(new Message.User("hi")));
    assertThat(RequestDigest.sha256("support", full, "openai", "gpt-4o-mini")).isEqualTo(GOLDEN_FULL);
    assertThat(RequestDigest.sha256(null, bare, "openai", "gpt-4o-mini")).isEqualTo(GOLDEN_BARE);
    assertThat(RequestDigest.canonicalJson(null, bare, "openai", "gpt-4o-mini"))
        .startsWith("{\"provider\":\"openai\",\"model\":\"gpt-4o-mini\",\"base_url\":null,\"temperature\":null,");
  }

  @Test
  void sha256_changesWithTheConversation_notWithSessionOrStep() {
    ModelRequest a = request(Optional.empty(), Optional.empty(), CONVERSATION);
    ModelRequest otherSession = new ModelRequest(a.agent(), "s-2", a.model(), a.instructions(), a.conversation(), a.tools(), 7);
    ModelRequest longer = new ModelRequest(a.agent(), a.sessionId(), a.model(), a.instructions(),
        java.util.stream.Stream.concat(CONVERSATION.stream(), java.util.stream.Stream.of(new Message.User("and now?"))).toList(),
        a.tools(), a.step());
    assertThat(RequestDigest.sha256(null, otherSession, "openai", "m")).isEqualTo(RequestDigest.sha256(null, a, "openai", "m"));
    assertThat(RequestDigest.sha256(null, longer, "openai", "m")).isNotEqualTo(RequestDigest.sha256(null, a, "openai", "m"));
    assertThat(RequestDigest.sha256("x", a, "openai", "m")).isNotEqualTo(RequestDigest.sha256(null, a, "openai", "m"));
  }

  private static final String GOLDEN_FULL = "7104f436ba4ba7a11e6673507efbdbdaf92bab0d3141f00e63bae519813bc888";
  private static final String GOLDEN_BARE = "489a1ad2b044399d01ba9734f67560376336bcb1cdf1cfc257526d67effe1d2d";
}
