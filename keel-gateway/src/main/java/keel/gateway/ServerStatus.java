package keel.gateway;

import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * How an upstream server is doing.
 *
 * @param name the server
 * @param transport {@code stdio} or {@code streamable-http}
 * @param connected whether a connection (or child process) is up now
 * @param starts how many times the connection was started
 * @param failuresInARow failures since the last success (the backoff grows with them)
 * @param lastError what broke last, if anything did
 * @param retryAt when the next start may happen, while backing off
 * @param problems what of the descriptor could not be honoured (a declared tool the server does
 *     not list, a model name collision)
 */
public record ServerStatus(
    String name,
    String transport,
    boolean connected,
    int starts,
    int failuresInARow,
    Optional<String> lastError,
    Optional<Instant> retryAt,
    List<String> problems) {
  public ServerStatus {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(transport, "transport");
    Objects.requireNonNull(lastError, "lastError");
    Objects.requireNonNull(retryAt, "retryAt");
    problems = List.copyOf(problems);
  }
}
