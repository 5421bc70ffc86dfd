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
    return Map.of("KEEL_STORE", TestPostgres.url(TestPostgres.newDatabase("crash")));
  }
}
