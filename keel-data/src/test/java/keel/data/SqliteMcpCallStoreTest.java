package keel.data;

import java.nio.file.Path;
import java.time.Clock;
import org.junit.jupiter.api.io.TempDir;

/** The MCP call store contract against the embedded SQLite store (a second store on the same file). */
class SqliteMcpCallStoreTest extends McpCallStoreContract {

  @TempDir Path dir;

  @Override
  protected Store openStore(String node, Clock clock) {
    return Store.sqlite(dir, node, clock, true);
  }

  @Override
  protected Store openPeer(String node, Clock clock) {
    return Store.sqlite(dir, node, clock, true);
  }

  @Override
  protected boolean manyWriters() {
    return false;
  }
}
