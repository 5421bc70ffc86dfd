package keel.data;

import java.time.Clock;
import java.util.concurrent.atomic.AtomicInteger;

/** The MCP call store contract against a real PostgreSQL; the second node is a separate pool. */
class PostgresMcpCallStoreTest extends McpCallStoreContract {

  private static final PostgresConfig DATABASE = TestPostgres.newDatabase("mcpcalls");
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

  @Override
  protected boolean manyWriters() {
    return true;
  }
}
