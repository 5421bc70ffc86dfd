package keel.execution;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.crypto.ECDSASigner;
import com.nimbusds.jose.jwk.Curve;
import com.nimbusds.jose.jwk.gen.ECKeyGenerator;
import com.nimbusds.jose.util.Base64URL;
import com.nimbusds.jwt.SignedJWT;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import keel.control.Identity;
import keel.control.SessionToken;
import keel.core.SessionEvent;
import keel.core.SessionStatus;
import keel.data.SessionRecord;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An agent can never exceed its grants, whatever its model asks for and whatever token is
 * presented: scripted models try tools outside their grants, tools granted only to another agent,
 * and (in a sub-agent) a tool the parent lacks; forged, altered, expired and other sessions'
 * tokens are presented. Every attempt is refused, recorded as a denial, and the session goes on.
 */
class IdentityEnforcementTest {

  @TempDir Path dir;
  IdentityHarness h;

  @BeforeEach
  void open() {
    h = new IdentityHarness(dir);
  }

  @AfterEach
  void close() {
    h.close();
  }

  static final String TRY_THEN_TELL = """
      - turns:
          - call: [{tool: %s, args: %s}]
          - say: "told: {{result}}"
      """;

  @Test
  void aToolOutsideItsGrants_isNotOffered_isDenied_andTheDenialNamesThePrincipalAndToken() {
    h.apply(IdentityHarness.agent("clerk", TRY_THEN_TELL.formatted("memory_put", "{key: k, value: v}"), "internal://time"));
    SessionRecord r = h.start("clerk", "go", false);
    h.awaitStatus(r.id(), SessionStatus.IDLE);

    assertThat(h.offered.get(r.id()).getFirst()).containsExactly("time_now");
    SessionEvent.ToolCallDenied denied = h.events(r.id(), SessionEvent.ToolCallDenied.class).getFirst();
    assertThat(denied.reason()).isEqualTo("agent:clerk is not granted internal://memory (its token grants internal://time)");
    assertThat(denied.principal()).isEqualTo("agent:clerk");
    SessionEvent.ModelCalled called = h.events(r.id(), SessionEvent.ModelCalled.class).getFirst();
    assertThat(called.principal()).isEqualTo("agent:clerk");
    assertThat(denied.tokenId()).isEqualTo(called.tokenId()).startsWith("t_");
    assertThat(h.types(r.id())).doesNotContain("ToolCallStarted");
    assertThat(h.store.memory().get("clerk", "", "k")).isEmpty();
    assertThat(h.sessions.view(r.id()).lastAnswer()).startsWith("told: agent:clerk is not granted internal://memory");
  }

  @Test
  void aToolGrantedOnlyToAnotherAgent_isDeniedToThisOne_andRunsForTheOther() {
    h.apply(
        IdentityHarness.agent("keeper", TRY_THEN_TELL.formatted("wait_gate", "{}"), "internal://gate"),
        IdentityHarness.agent("clerk", TRY_THEN_TELL.formatted("wait_gate", "{}"), "internal://time"));
    h.gate.countDown();
    SessionRecord clerk = h.start("clerk", "go", false);
    SessionRecord keeper = h.start("keeper", "go", false);
    h.awaitStatus(clerk.id(), SessionStatus.IDLE);
    h.awaitStatus(keeper.id(), SessionStatus.IDLE);

    assertThat(h.events(clerk.id(), SessionEvent.ToolCallDenied.class).getFirst().reason())
        .isEqualTo("agent:clerk is not granted internal://gate (its token grants internal://time)");
    assertThat(h.offered.get(clerk.id()).getFirst()).doesNotContain("wait_gate");
    assertThat(h.gateCalls).containsExactly(keeper.id());
    SessionEvent.ToolCallAuthorized ok = h.events(keeper.id(), SessionEvent.ToolCallAuthorized.class).getFirst();
    assertThat(ok.principal()).isEqualTo("agent:keeper");
    assertThat(h.sessions.view(keeper.id()).lastAnswer()).isEqualTo("told: opened for agent:keeper");
  }

  @Test
  void aSubagentTryingAToolItsParentLacks_isDenied_becauseItsGrantsAreTheIntersection() {
    h.apply(
        IdentityHarness.agent("planner", """
            - turns:
                - call: [{tool: agent_researcher, args: {task: "look up {{input}}"}}]
                - say: "planner got: {{result}}"
            """, "agent://researcher, internal://time"),
        IdentityHarness.agent("researcher", """
            - turns:
                - call: [{tool: memory_put, args: {key: k, value: "{{input}}"}}, {tool: time_now}]
                - say: "researched"
            """, "internal://time, internal://memory"));
    SessionRecord parent = h.start("planner", "invoices", false);
    h.awaitStatus(parent.id(), SessionStatus.IDLE);

    SessionRecord child = h.children(parent.id()).getFirst();
    SessionEvent.SessionStarted started = h.events(child.id(), SessionEvent.SessionStarted.class).getFirst();
    assertThat(started.grants()).containsExactly("internal://time");
    assertThat(started.chain()).containsExactly("operator:ann", "agent:planner");
    assertThat(h.offered.get(child.id()).getFirst()).containsExactly("time_now");
    SessionEvent.ToolCallDenied denied = h.events(child.id(), SessionEvent.ToolCallDenied.class).getFirst();
    assertThat(denied.reason()).isEqualTo("agent:researcher is not granted internal://memory (its token grants internal://time)");
    assertThat(denied.principal()).isEqualTo("agent:researcher");
    assertThat(h.events(child.id(), SessionEvent.ToolCallAuthorized.class)).singleElement()
        .satisfies(a -> assertThat(a.capability()).isEqualTo("internal://time"));
    assertThat(h.store.memory().get("researcher", "", "k")).isEmpty();
    assertThat(h.sessions.view(parent.id()).lastAnswer()).isEqualTo("planner got: researched");
  }

  // ---- tokens that are not the session's own -----------------------------------------------------

  /** Runs a clerk whose one time_now call is made with the token {@code attack} makes. */
  private SessionEvent.ToolCallDenied refusedWith(java.util.function.UnaryOperator<SessionToken> attack) {
    return refusedWith("time_now", "{}", "internal://time", attack);
  }

  /** Runs a clerk (granted internal://time) whose one call of {@code tool} is made with the token {@code attack} makes. */
  private SessionEvent.ToolCallDenied refusedWith(
      String tool, String args, String capability, java.util.function.UnaryOperator<SessionToken> attack) {
    h.apply(IdentityHarness.agent("clerk", TRY_THEN_TELL.formatted(tool, args), "internal://time"));
    h.presenter = (use, held) -> use.equals(capability) ? attack.apply(held).compact() : held.compact();
    SessionRecord r = h.start("clerk", "go", false);
    h.awaitStatus(r.id(), SessionStatus.IDLE);
    assertThat(h.types(r.id())).doesNotContain("ToolCallAuthorized", "ToolCallStarted");
    SessionEvent.ToolCallDenied denied = h.events(r.id(), SessionEvent.ToolCallDenied.class).getFirst();
    // a refused token vouches for nobody: no principal or token id is recorded from it
    assertThat(denied.principal()).isEmpty();
    assertThat(denied.tokenId()).isEmpty();
    // the session survives: the model read the refusal and answered
    assertThat(h.sessions.view(r.id()).lastAnswer()).isEqualTo("told: " + denied.reason());
    return denied;
  }

  private static SessionToken withCompact(SessionToken t, String compact) {
    return new SessionToken(t.tokenId(), t.principal(), t.agent(), t.revision(), t.sessionId(), t.rootSessionId(),
        t.grants(), t.chain(), t.issuer(), t.keyId(), t.issuedAt(), t.expiresAt(), compact);
  }

  @Test
  void aForgedToken_signedByAnotherKey_isRefused() {
    SessionEvent.ToolCallDenied denied = refusedWith(held -> {
      try {
        SignedJWT forged = new SignedJWT(new JWSHeader.Builder(JWSAlgorithm.ES256).keyID(held.keyId()).build(),
            SignedJWT.parse(held.compact()).getJWTClaimsSet());
        forged.sign(new ECDSASigner(new ECKeyGenerator(Curve.P_256).generate()));
        return withCompact(held, forged.serialize());
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    });
    assertThat(denied.reason()).contains("signature does not match");
  }

  @Test
  void aTamperedToken_withGrantsEditedToAddMemory_isRefused_andNothingIsWritten() {
    SessionEvent.ToolCallDenied denied = refusedWith("memory_put", "{key: k, value: v}", "internal://memory", held -> {
      String[] parts = held.compact().split("\\.");
      String payload = new String(Base64URL.from(parts[1]).decode(), StandardCharsets.UTF_8)
          .replace("\"internal://time\"", "\"internal://time\",\"internal://memory\"");
      assertThat(payload).contains("internal://memory");
      return withCompact(held, parts[0] + "." + Base64URL.encode(payload.getBytes(StandardCharsets.UTF_8)) + "." + parts[2]);
    });
    assertThat(denied.reason()).contains("signature does not match").contains("altered");
    assertThat(h.store.memory().get("clerk", "", "k")).isEmpty();
  }

  @Test
  void aTokenOfAnotherSession_isRefused() {
    SessionEvent.ToolCallDenied denied = refusedWith(held -> h.identity.issue(new Identity.Subject(
        held.agent(), held.revision(), "s_someone_else", "s_someone_else", held.grants(), held.chain())));
    assertThat(denied.reason()).startsWith("the token is for session s_someone_else, not for session s_");
  }

  @Test
  void anExpiredToken_replayedAfterItsLifetime_isRefused_whileTheSessionRenewsItsOwn() {
    h.apply(IdentityHarness.agent("clerk", """
        - turns:
            - call: [{tool: wait_gate}]
            - call: [{tool: time_now}]
            - say: "told: {{result}}"
        """, "internal://time, internal://gate"));
    AtomicReference<SessionToken> first = new AtomicReference<>();
    h.presenter = (use, held) -> {
      first.compareAndSet(null, held);
      return use.equals("internal://time") ? first.get().compact() : held.compact();
    };
    SessionRecord r = h.start("clerk", "go", false);
    await().atMost(Duration.ofSeconds(20)).until(() -> !h.gateCalls.isEmpty());
    h.identityClock.advance(Duration.ofMinutes(11));
    h.gate.countDown();
    h.awaitStatus(r.id(), SessionStatus.IDLE);

    SessionEvent.ToolCallDenied denied = h.events(r.id(), SessionEvent.ToolCallDenied.class).getFirst();
    assertThat(denied.reason()).startsWith("the token expired at ");
    assertThat(h.sessions.view(r.id()).lastAnswer()).startsWith("told: the token expired at ");
    // the session itself took a fresh token after the clock moved: its model calls carry two ids
    List<String> tokenIds = h.events(r.id(), SessionEvent.ModelCalled.class).stream().map(SessionEvent.ModelCalled::tokenId).toList();
    assertThat(tokenIds).hasSize(3);
    assertThat(tokenIds.get(0)).isEqualTo(first.get().tokenId());
    assertThat(tokenIds.get(2)).isNotEqualTo(tokenIds.get(0));
  }

  @Test
  void aToolRemovedByANewerRevision_isRefusedToASessionAlreadyRunning_atItsNextCall() {
    String script = """
        - turns:
            - call: [{tool: wait_gate}]
            - call: [{tool: time_now}]
            - say: "told: {{result}}"
        """;
    h.apply(IdentityHarness.agent("clerk", script, "internal://time, internal://gate"));
    SessionRecord r = h.start("clerk", "go", false);
    await().atMost(Duration.ofSeconds(20)).until(() -> !h.gateCalls.isEmpty());
    // revision 2 narrows the agent while the session (on revision 1) waits inside a tool
    h.apply(IdentityHarness.agent("clerk", script, "internal://gate"));
    h.sessions.agentChanged("clerk");
    h.gate.countDown();
    h.awaitStatus(r.id(), SessionStatus.IDLE);

    assertThat(h.sessions.record(r.id()).revision()).isEqualTo(1);
    SessionEvent.ToolCallDenied denied = h.events(r.id(), SessionEvent.ToolCallDenied.class).getFirst();
    assertThat(denied.reason()).isEqualTo("agent:clerk is not granted internal://time (its token grants internal://gate)");
    assertThat(h.events(r.id(), SessionEvent.ToolCallCompleted.class)).hasSize(1); // only wait_gate ran
  }

  @Test
  void aModelCallWhoseTokenIsRefused_isNeverMade_andTheSessionFailsClosed() {
    h.apply(IdentityHarness.agent("clerk", TRY_THEN_TELL.formatted("time_now", "{}"), "internal://time"));
    h.presenter = (use, held) -> use.equals("model") ? held.compact() + "x" : held.compact();
    SessionRecord r = h.start("clerk", "go", false);
    h.awaitStatus(r.id(), SessionStatus.FAILED);
    assertThat(h.offered.get(r.id())).isNull();
    assertThat(h.sessions.view(r.id()).failure())
        .startsWith("identity_refused: the session's token was refused for a model call: ");
  }
}
