package keel.data;

import java.time.Clock;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The lease store contract, unchanged, against a real PostgreSQL: a fresh schema for every test,
 * and the second node's store a separate pool on the same schema.
 */
class PostgresLeaseStoreTest extends LeaseStoreContract {

  private static final PostgresConfig DATABASE = TestPostgres.newDatabase("leases");
  private static final AtomicInteger SCHEMAS = new AtomicInteger();

  private PostgresConfig current;

  @Override
  protected Store openStore(String node, Clock clock) {
    current = DATABASE.withSchema("t" + SCHEMAS.incrementAndGet());
    return Store.postgresql(current, node, clock);
  }

  @Override
  protected Store openPeer(String node, Clock clock) {
    return Store.postgresql(current, node, clock);
  }
}
