package keel.data;

import java.time.Clock;
import java.util.concurrent.atomic.AtomicInteger;

/** The cost ledger contract, unchanged, against a real PostgreSQL: a fresh schema for every test. */
class PostgresCostLedgerTest extends CostLedgerContract {

  private static final PostgresConfig DATABASE = TestPostgres.newDatabase("ledger");
  private static final AtomicInteger SCHEMAS = new AtomicInteger();

  @Override
  protected Store openStore(Clock clock) {
    return Store.postgresql(DATABASE.withSchema("t" + SCHEMAS.incrementAndGet()), "node-a", clock);
  }
}
