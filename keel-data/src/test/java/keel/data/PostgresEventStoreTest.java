package keel.data;

import java.time.Clock;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The store contract, unchanged, against a real PostgreSQL: one database for this class, and a
 * fresh schema in it for every test, so each test starts from an empty, freshly migrated store.
 */
class PostgresEventStoreTest extends EventStoreContract {

  private static final PostgresConfig DATABASE = TestPostgres.newDatabase("contract");
  private static final AtomicInteger SCHEMAS = new AtomicInteger();

  private PostgresConfig current;

  @Override
  protected Store openStore(String node, Clock clock) {
    current = DATABASE.withSchema("t" + SCHEMAS.incrementAndGet());
    return Store.postgresql(current, node, clock);
  }

  @Override
  protected Store reopenStore(String node, Clock clock) {
    return Store.postgresql(current, node, clock);
  }
}
