package keel.server;

import java.security.MessageDigest;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The dashboard's signed-in browsers: a random session id (the value of an HttpOnly,
 * SameSite=Strict cookie) mapped to the operator token it signed in with and the CSRF token its
 * forms carry. The operator token stays in this process's memory only: it is never written to a
 * page, a cookie, a log or the store. Every request authenticates the token again through {@link
 * keel.control.Operators}, so revoking an operator or replacing its token signs its browsers out
 * on their next request.
 *
 * <p>Bounded: at most {@link #MAX_SESSIONS} at once (signing in beyond that drops the sessions that
 * were used least recently), each expiring after {@link #IDLE} without a request. Sessions do not
 * survive a restart: the browser signs in again.
 *
 * <p>Thread-safe: the map is guarded by {@code lock}.
 */
final class WebSessions {

  /** How many browsers may be signed in at once. */
  static final int MAX_SESSIONS = 10_000;
  /** How long a session lives without a request. */
  static final Duration IDLE = Duration.ofHours(8);

  /** One signed-in browser. */
  record Web(String id, String token, String csrf, Instant expires) {
    Web {
      Objects.requireNonNull(id, "id");
      Objects.requireNonNull(token, "token");
      Objects.requireNonNull(csrf, "csrf");
    }

    /** Never shows the token or the ids. */
    @Override
    public String toString() {
      return "Web[expires=" + expires + "]";
    }
  }

  private final Clock clock;
  private final SecureRandom random;
  private final ReentrantLock lock = new ReentrantLock();
  /** Guarded by {@code lock}; in access order, so the first entry is the least recently used. */
  private final LinkedHashMap<String, Web> sessions = new LinkedHashMap<>(16, 0.75f, true);

  WebSessions(Clock clock, SecureRandom random) {
    this.clock = clock;
    this.random = random;
  }

  /** A new random value for an id or a CSRF token: 256 bits, URL-safe. */
  String randomValue() {
    byte[] b = new byte[32];
    random.nextBytes(b);
    return Base64.getUrlEncoder().withoutPadding().encodeToString(b);
  }

  /** Signs a browser in with an operator token that was just verified. */
  Web open(String token) {
    Web w = new Web(randomValue(), token, randomValue(), clock.instant().plus(IDLE));
    lock.lock();
    try {
      purgeExpired();
      while (sessions.size() >= MAX_SESSIONS) {
        Iterator<String> it = sessions.keySet().iterator();
        it.next();
        it.remove();
      }
      sessions.put(w.id(), w);
    } finally {
      lock.unlock();
    }
    return w;
  }

  /** The live session with this id, its expiry moved on; empty when unknown or expired. */
  Optional<Web> find(String id) {
    if (id == null || id.isEmpty()) {
      return Optional.empty();
    }
    lock.lock();
    try {
      Web w = sessions.get(id);
      if (w == null) {
        return Optional.empty();
      }
      Instant now = clock.instant();
      if (!now.isBefore(w.expires())) {
        sessions.remove(id);
        return Optional.empty();
      }
      Web renewed = new Web(w.id(), w.token(), w.csrf(), now.plus(IDLE));
      sessions.put(id, renewed);
      return Optional.of(renewed);
    } finally {
      lock.unlock();
    }
  }

  /** Signs a browser out. */
  void close(String id) {
    lock.lock();
    try {
      sessions.remove(id);
    } finally {
      lock.unlock();
    }
  }

  int size() {
    lock.lock();
    try {
      return sessions.size();
    } finally {
      lock.unlock();
    }
  }

  /** Compares two secrets in constant time; false when either is missing. */
  static boolean same(String a, String b) {
    if (a == null || b == null || a.isEmpty()) {
      return false;
    }
    return MessageDigest.isEqual(a.getBytes(java.nio.charset.StandardCharsets.UTF_8), b.getBytes(java.nio.charset.StandardCharsets.UTF_8));
  }

  private void purgeExpired() {
    Instant now = clock.instant();
    sessions.values().removeIf(w -> !now.isBefore(w.expires()));
  }
}
