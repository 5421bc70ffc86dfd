package keel.data;

import java.nio.file.Path;
import java.time.Clock;
import org.junit.jupiter.api.io.TempDir;

/** The cost ledger contract against the embedded SQLite store. */
class SqliteCostLedgerTest extends CostLedgerContract {

  @TempDir Path dir;

  @Override
  protected Store openStore(Clock clock) {
    return Store.sqlite(dir, "node-a", clock, true);
  }
}
