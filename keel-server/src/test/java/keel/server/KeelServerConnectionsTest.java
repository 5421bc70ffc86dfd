package keel.server;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The HTTP connector under a burst of new connections: a connection the kernel completed is
 * answered, never reset because the listen backlog (the connector's accept queue) overflowed.
 */
class KeelServerConnectionsTest {

  private static final int CONNECTIONS = 1_000;

  @TempDir Path dir;

  /**
   * Regression: with Jetty's default accept queue (the JVM's backlog of 50) a burst of 1,000 new
   * connections overflowed the listen queue; the kernel dropped the handshakes' last ACKs and later
   * reset those connections ({@code Connection reset} on the client).
   */
  @Test
  void burstOfNewConnections_isAnswered_noneReset() throws Exception {
    try (KeelServer server = KeelServer.start(ServerConfig.of(0, dir).withEnvironment(Map.of()))) {
      URI url = URI.create(server.url());
      InetSocketAddress address = new InetSocketAddress(url.getHost(), url.getPort());
      CountDownLatch go = new CountDownLatch(1);
      AtomicInteger ok = new AtomicInteger();
      Map<String, AtomicInteger> failures = new ConcurrentHashMap<>();
      try (ExecutorService ex = Executors.newVirtualThreadPerTaskExecutor()) {
        List<Future<?>> fs = new ArrayList<>();
        for (int i = 0; i < CONNECTIONS; i++) {
          fs.add(ex.submit(() -> {
            go.await();
            // every client opens its own connection at the same moment, as 1,000 users would
            try (Socket s = new Socket()) {
              s.setSoTimeout(60_000);
              s.connect(address, 60_000);
              OutputStream out = s.getOutputStream();
              out.write(("GET /healthz HTTP/1.1\r\nHost: " + url.getHost() + "\r\nConnection: close\r\n\r\n")
                  .getBytes(StandardCharsets.US_ASCII));
              out.flush();
              String status = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.US_ASCII)).readLine();
              if (status != null && status.startsWith("HTTP/1.1 200")) {
                ok.incrementAndGet();
              } else {
                failures.computeIfAbsent("status line " + status, k -> new AtomicInteger()).incrementAndGet();
              }
            } catch (java.io.IOException e) {
              failures.computeIfAbsent(e.toString(), k -> new AtomicInteger()).incrementAndGet();
            }
            return null;
          }));
        }
        go.countDown();
        for (Future<?> f : fs) {
          f.get();
        }
      }
      assertThat(failures).as("connections that failed, by error").isEmpty();
      assertThat(ok.get()).isEqualTo(CONNECTIONS);
    }
  }

  @Test
  void connector_hasTheDocumentedAcceptQueue() throws Exception {
    try (KeelServer server = KeelServer.start(ServerConfig.of(0, dir).withEnvironment(Map.of()))) {
      assertThat(server.acceptQueueSize()).isEqualTo(KeelServer.ACCEPT_QUEUE_SIZE);
    }
  }
}
