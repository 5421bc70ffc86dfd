package keel.data;

import java.nio.file.Path;
import java.time.Clock;
import org.junit.jupiter.api.io.TempDir;

/** The approvals store contract against the embedded SQLite store (a second store on the same file). */
class SqliteApprovalStoreTest extends ApprovalStoreContract {

  @TempDir Path dir;

  @Override
  protected Store openStore(String node, Clock clock) {
    return Store.sqlite(dir, node, clock, true);
  }

  @Override
  protected Store openPeer(String node, Clock clock) {
    return Store.sqlite(dir, node, clock, true);
  }
}
