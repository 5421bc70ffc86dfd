package keel.data;

import java.nio.file.Path;
import java.time.Clock;
import org.junit.jupiter.api.io.TempDir;

/** The tool catalog contract against the embedded SQLite store. */
class SqliteToolCatalogStoreTest extends ToolCatalogStoreContract {

  @TempDir Path dir;

  @Override
  protected Store openStore(Clock clock) {
    return Store.sqlite(dir, "node-a", clock, true);
  }

  @Override
  protected Store reopenStore(Clock clock) {
    return Store.sqlite(dir, "node-a", clock, true);
  }
}
