package keel.data;

import java.time.Clock;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The tool catalog store contract, unchanged, against a real PostgreSQL: a fresh schema for every test,
 * so each test starts from an empty, freshly migrated store.
 */
class PostgresToolCatalogStoreTest extends ToolCatalogStoreContract {

  private static final PostgresConfig DATABASE = TestPostgres.newDatabase("tools");
  private static final AtomicInteger SCHEMAS = new AtomicInteger();

  private PostgresConfig current;

  @Override
  protected Store openStore(Clock clock) {
    current = DATABASE.withSchema("t" + SCHEMAS.incrementAndGet());
    return Store.postgresql(current, "node-a", clock);
  }

  @Override
  protected Store reopenStore(Clock clock) {
    return Store.postgresql(current, "node-a", clock);
  }
}
