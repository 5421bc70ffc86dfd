package keel.server;

import static org.assertj.core.api.Assertions.assertThat;

import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import keel.data.MutableClock;
import org.junit.jupiter.api.Test;

/** The dashboard's signed-in browsers: idle expiry, renewal on use, the bound, and what toString hides. */
class WebSessionsTest {

  final MutableClock clock = new MutableClock(Instant.parse("2026-11-21T09:00:00Z"));
  final WebSessions sessions = new WebSessions(clock, new SecureRandom());

  @Test
  void aSession_expiresAfterItsIdleTime_andEachUseMovesTheExpiryOn() {
    WebSessions.Web w = sessions.open("keel_secret");
    clock.advance(WebSessions.IDLE.minusMinutes(1));
    assertThat(sessions.find(w.id())).isPresent();
    clock.advance(WebSessions.IDLE.minusMinutes(1));
    assertThat(sessions.find(w.id())).as("renewed by the last use").isPresent();
    clock.advance(WebSessions.IDLE);
    assertThat(sessions.find(w.id())).isEmpty();
    assertThat(sessions.size()).isZero();
  }

  @Test
  void closedOrUnknownIds_findNothing() {
    WebSessions.Web w = sessions.open("keel_secret");
    sessions.close(w.id());
    assertThat(sessions.find(w.id())).isEmpty();
    assertThat(sessions.find("")).isEmpty();
    assertThat(sessions.find(null)).isEmpty();
    assertThat(sessions.find("guess")).isEmpty();
  }

  @Test
  void ids_andCsrfTokens_areRandomAndDistinct() {
    WebSessions.Web a = sessions.open("t");
    WebSessions.Web b = sessions.open("t");
    assertThat(a.id()).isNotEqualTo(b.id()).isNotEqualTo(a.csrf()).hasSize(43);
    assertThat(a.csrf()).isNotEqualTo(b.csrf());
  }

  @Test
  void beyondTheBound_theLeastRecentlyUsedSessionIsDropped() {
    WebSessions.Web first = sessions.open("t");
    WebSessions.Web second = sessions.open("t");
    for (int i = 2; i < WebSessions.MAX_SESSIONS; i++) {
      sessions.open("t");
    }
    clock.advance(Duration.ofSeconds(1));
    assertThat(sessions.find(first.id())).isPresent(); // now the most recently used
    sessions.open("t");
    assertThat(sessions.size()).isEqualTo(WebSessions.MAX_SESSIONS);
    assertThat(sessions.find(second.id())).isEmpty();
    assertThat(sessions.find(first.id())).isPresent();
  }

  @Test
  void toString_neverShowsTheTokenOrTheIds() {
    WebSessions.Web w = sessions.open("keel_secret");
    assertThat(w.toString()).doesNotContain("keel_secret").doesNotContain(w.id()).doesNotContain(w.csrf());
  }

  @Test
  void same_comparesSecrets_andRefusesMissingOnes() {
    assertThat(WebSessions.same("abc", "abc")).isTrue();
    assertThat(WebSessions.same("abc", "abd")).isFalse();
    assertThat(WebSessions.same(null, "abc")).isFalse();
    assertThat(WebSessions.same("", "")).isFalse();
  }
}
