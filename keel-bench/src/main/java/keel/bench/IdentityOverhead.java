package keel.bench;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import keel.control.Identity;
import keel.control.IdentitySettings;
import keel.data.Store;

/**
 * What agent identity adds to each use: issuing a session token (an ES256 signature); the first
 * check of a token on a node (parse, signature verification, claims, grant); and a check of a token
 * the node verified before (the signature is remembered; expiry, session and grant are checked
 * again), which is what every call of a run after its first costs. One at a time on a real SQLite
 * key store, after a warm-up.
 *
 * <p>Not thread-safe; one run at a time.
 */
final class IdentityOverhead {

  private final int ops;
  private final int reps;
  private final Path workDir;
  private final Progress progress;

  IdentityOverhead(int ops, int reps, Path workDir, Progress progress) {
    this.ops = ops;
    this.reps = reps;
    this.workDir = workDir;
    this.progress = progress;
  }

  Map<String, Object> run() throws Exception {
    Path dir = Files.createTempDirectory(workDir, "keel-identity-bench");
    try (Store store = Store.sqlite(dir, "bench", Clock.systemUTC(), false)) {
      Identity identity = new Identity(store.signingKeys(), Clock.systemUTC(), IdentitySettings.defaults());
      // another node sharing the store: it has never seen the tokens, so its first check is a full one
      Identity other = new Identity(store.signingKeys(), Clock.systemUTC(), IdentitySettings.defaults());
      Identity.Subject subject = new Identity.Subject("bench", 1, "s_bench", "s_bench",
          List.of("internal://time", "internal://memory", "mcp://gateway/crm", "agent://helper"), List.of("operator:bench"));
      List<Long> issue = new ArrayList<>();
      List<Long> first = new ArrayList<>();
      List<Long> again = new ArrayList<>();
      int tokenBytes = 0;
      for (int rep = -1; rep < reps; rep++) {
        boolean warm = rep < 0;
        for (int i = 0; i < ops; i++) {
          long t0 = System.nanoTime();
          String token = identity.issue(subject).compact();
          long t1 = System.nanoTime();
          check(other.authorize(token, "s_bench", "mcp://gateway/crm/read"));
          long t2 = System.nanoTime();
          check(other.authorize(token, "s_bench", "mcp://gateway/crm/read"));
          long t3 = System.nanoTime();
          tokenBytes = token.length();
          if (!warm) {
            issue.add(t1 - t0);
            first.add(t2 - t1);
            again.add(t3 - t2);
          }
        }
        progress.line(String.format("identity overhead %s %d/%d", warm ? "warm-up" : "rep", rep + 1, reps));
      }
      Map<String, Object> out = new LinkedHashMap<>();
      out.put("ops_per_rep", ops);
      out.put("reps", reps);
      out.put("issue_us", micros(issue));
      out.put("first_check_us", micros(first));
      out.put("repeat_check_us", micros(again));
      out.put("token_bytes", tokenBytes);
      return out;
    } finally {
      try (var files = Files.walk(dir)) {
        files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
      }
    }
  }

  private static void check(Identity.Verdict v) {
    if (!(v instanceof Identity.Verdict.Verified)) {
      throw new IllegalStateException("the benchmark's own token was refused: " + v);
    }
  }

  private static Map<String, Object> micros(List<Long> nanos) {
    Map<String, Object> m = new LinkedHashMap<>();
    for (int p : new int[] {50, 90, 99}) {
      m.put("p" + p, Stats.percentile(nanos, p) / 1000.0);
    }
    return m;
  }
}
