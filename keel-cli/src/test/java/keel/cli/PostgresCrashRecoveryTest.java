package keel.cli;

import java.util.Map;
import keel.data.TestPostgres;

/**
 * The same SIGKILL test as {@link CrashRecoveryTest}, with the servers on a real PostgreSQL
 * ({@code keel serve} with {@code KEEL_STORE}): the same promises hold on the scale-out store.
 */
class PostgresCrashRecoveryTest extends CrashRecoveryTest {

  @Override
  protected Map<String, String> storeEnvironment() {
    // a restarted server is a new node: it takes the killed one's sessions over when their leases expire
    return Map.of("KEEL_STORE", TestPostgres.url(TestPostgres.newDatabase("crash")), "KEEL_LEASE_TTL", "2s");
  }
}
