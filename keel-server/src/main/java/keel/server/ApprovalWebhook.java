package keel.server;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HexFormat;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import keel.data.Approval;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Posts approval notifications to a URL, off the step path: a bounded queue drained by one virtual
 * thread, each delivery retried with backoff. A full queue drops the notification (logged); a
 * session never waits for the webhook. Each node posts only the changes it made, so each change is
 * posted once cluster-wide. Each request carries {@code Keel-Event} ({@code requested},
 * {@code decided}, {@code expired} or {@code withdrawn}) and {@code Keel-Signature: sha256=<hex>}, the HMAC-SHA256 of
 * the body under the shared secret, so the receiver can check it came from this server.
 *
 * <p>Thread-safe.
 */
final class ApprovalWebhook implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(ApprovalWebhook.class);
  static final String URL_VARIABLE = "KEEL_APPROVAL_WEBHOOK";
  static final String SECRET_VARIABLE = "KEEL_APPROVAL_WEBHOOK_SECRET";
  private static final int ATTEMPTS = 5;

  private record Notice(String event, String body) {}

  private final URI url;
  private final byte[] secret;
  private final Duration firstBackoff;
  private final BlockingQueue<Notice> queue = new ArrayBlockingQueue<>(1000);
  private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
  private final Thread sender;
  private volatile boolean closed;

  ApprovalWebhook(URI url, String secret, Duration firstBackoff) {
    if (secret.isBlank()) {
      throw new keel.core.KeelException.Invalid(URL_VARIABLE + " is set, so " + SECRET_VARIABLE
          + " must hold the shared secret the webhook's signature is made with (environment or secrets file)");
    }
    this.url = url;
    this.secret = secret.getBytes(StandardCharsets.UTF_8);
    this.firstBackoff = firstBackoff;
    this.sender = Thread.ofVirtual().name("approval-webhook").start(this::drain);
  }

  /** Queues a notification; never blocks. */
  void notify(String event, Approval approval) {
    String body = Views.JSON.writeValueAsString(Views.JSON.createObjectNode().put("type", event).set("approval", Views.approval(approval)));
    if (!queue.offer(new Notice(event, body))) {
      LOG.warn("approval webhook: queue full, dropped the {} notice of approval {}", event, approval.id());
    }
  }

  static String signature(byte[] secret, String body) {
    try {
      Mac mac = Mac.getInstance("HmacSHA256");
      mac.init(new SecretKeySpec(secret, "HmacSHA256"));
      return "sha256=" + HexFormat.of().formatHex(mac.doFinal(body.getBytes(StandardCharsets.UTF_8)));
    } catch (java.security.GeneralSecurityException e) {
      throw new IllegalStateException(e);
    }
  }

  private void drain() {
    while (!closed) {
      Notice n;
      try {
        n = queue.poll(1, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        return;
      }
      if (n != null) {
        deliver(n);
      }
    }
  }

  private void deliver(Notice n) {
    Duration backoff = firstBackoff;
    for (int attempt = 1; attempt <= ATTEMPTS && !closed; attempt++) {
      try {
        HttpRequest req = HttpRequest.newBuilder(url).timeout(Duration.ofSeconds(10))
            .header("Content-Type", "application/json")
            .header("Keel-Event", n.event())
            .header("Keel-Signature", signature(secret, n.body()))
            .POST(HttpRequest.BodyPublishers.ofString(n.body())).build();
        int status = http.send(req, HttpResponse.BodyHandlers.discarding()).statusCode();
        if (status / 100 == 2) {
          return;
        }
        LOG.warn("approval webhook: {} answered {} (attempt {} of {})", url.getHost(), status, attempt, ATTEMPTS);
      } catch (java.io.IOException e) {
        LOG.warn("approval webhook: {} failed (attempt {} of {}): {}", url.getHost(), attempt, ATTEMPTS, e.toString());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
      try {
        Thread.sleep(backoff);
      } catch (InterruptedException e) {
        return;
      }
      backoff = backoff.multipliedBy(2);
    }
  }

  @Override
  public void close() {
    closed = true;
    sender.interrupt();
  }
}
