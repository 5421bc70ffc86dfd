package keel.testkit.mcp;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Function;
import tools.jackson.core.JacksonException;
import tools.jackson.core.type.TypeReference;
import tools.jackson.databind.DeserializationFeature;
import tools.jackson.databind.ObjectMapper;
import tools.jackson.databind.json.JsonMapper;

/**
 * JSON helpers of the demo servers: one mapper (decimals read as {@link BigDecimal}, so money
 * survives a round trip exactly), JSON-lines files appended under a file lock, and the codecs of
 * {@link JournalEntry} and {@link ReceivedCall}.
 *
 * <p>Thread-safe. A JSON-lines file is read and appended under an exclusive {@link FileLock}, so
 * several processes (a server restarted while its predecessor exits, a test reading the journal)
 * see whole lines; within one process the lock is taken behind {@link #IN_PROCESS}, because a JVM
 * cannot hold two overlapping file locks.
 */
final class Json {

  static final ObjectMapper MAPPER =
      JsonMapper.builder().enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS).build();

  private static final TypeReference<Map<String, Object>> MAP = new TypeReference<>() {};

  /** Serializes the file locks taken by this process (guards no data of its own). */
  private static final ReentrantLock IN_PROCESS = new ReentrantLock();

  private Json() {}

  static String write(Object value) {
    return MAPPER.writeValueAsString(value);
  }

  static Map<String, Object> readObject(String json, String where) {
    try {
      Map<String, Object> m = MAPPER.readValue(json, MAP);
      if (m == null) {
        throw new IllegalArgumentException(where + ": expected a JSON object, got null");
      }
      return m;
    } catch (JacksonException e) {
      throw new IllegalArgumentException(where + ": not a JSON object: " + e.getOriginalMessage(), e);
    }
  }

  /** A JSON number (or numeric string) as an exact decimal. */
  static BigDecimal decimal(Object value) {
    return new BigDecimal(value.toString());
  }

  /** Whether two JSON values are equal, numbers compared by value (1.5 equals 1.50). */
  static boolean same(Object a, Object b) {
    if (a instanceof Number x && b instanceof Number y) {
      return decimal(x).compareTo(decimal(y)) == 0;
    }
    if (a instanceof Map<?, ?> x && b instanceof Map<?, ?> y) {
      if (!x.keySet().equals(y.keySet())) {
        return false;
      }
      for (Map.Entry<?, ?> e : x.entrySet()) {
        if (!same(e.getValue(), y.get(e.getKey()))) {
          return false;
        }
      }
      return true;
    }
    if (a instanceof List<?> x && b instanceof List<?> y) {
      if (x.size() != y.size()) {
        return false;
      }
      Iterator<?> i = x.iterator();
      Iterator<?> j = y.iterator();
      while (i.hasNext()) {
        if (!same(i.next(), j.next())) {
          return false;
        }
      }
      return true;
    }
    return a == null ? b == null : a.equals(b);
  }

  // ---------------------------------------------------------------- JSON-lines files

  /** The objects of a JSON-lines file, oldest first; a missing file has none. */
  static List<Map<String, Object>> readLines(Path file) {
    return underFileLock(file, lines -> null).lines();
  }

  /**
   * Under the file's lock: reads its objects, asks {@code next} for one more (null: none) and
   * appends it, forced to the disk before the lock is released. A torn last line (a writer that died
   * mid-line: its action was never acknowledged) is cut off first.
   */
  static Locked underFileLock(Path file, Function<List<Map<String, Object>>, Map<String, Object>> next) {
    IN_PROCESS.lock();
    try (FileChannel ch =
            FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
        FileLock ignored = ch.lock()) {
      ByteBuffer buf = ByteBuffer.allocate(Math.toIntExact(ch.size()));
      while (buf.hasRemaining() && ch.read(buf, buf.position()) >= 0) {
        // read until full
      }
      String text = new String(buf.array(), StandardCharsets.UTF_8);
      int end = text.lastIndexOf('\n') + 1;
      if (end < text.length()) {
        ch.truncate(text.substring(0, end).getBytes(StandardCharsets.UTF_8).length);
        text = text.substring(0, end);
      }
      List<Map<String, Object>> lines = new ArrayList<>();
      int n = 0;
      for (String line : text.split("\n")) {
        n++;
        if (!line.isBlank()) {
          lines.add(readObject(line, file + " line " + n));
        }
      }
      Map<String, Object> added = next.apply(List.copyOf(lines));
      if (added != null) {
        byte[] bytes = (write(added) + "\n").getBytes(StandardCharsets.UTF_8);
        ch.write(ByteBuffer.wrap(bytes), ch.size());
        ch.force(true);
        lines.add(added);
      }
      return new Locked(List.copyOf(lines), added);
    } catch (NoSuchFileException e) {
      throw new UncheckedIOException("the directory of " + file + " does not exist", e);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read or append " + file + ": " + e.getMessage(), e);
    } finally {
      IN_PROCESS.unlock();
    }
  }

  /** What {@link #underFileLock} saw and appended (null: nothing). */
  record Locked(List<Map<String, Object>> lines, Map<String, Object> added) {}

  /** Writes {@code value} to {@code file} atomically (a temporary file moved over it). */
  static void writeAtomically(Path file, Object value) {
    try {
      Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
      Files.writeString(tmp, MAPPER.writerWithDefaultPrettyPrinter().writeValueAsString(value));
      Files.move(tmp, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + file + ": " + e.getMessage(), e);
    }
  }

  // ---------------------------------------------------------------- codecs

  static Map<String, Object> encode(JournalEntry e) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("sequence", e.sequence());
    m.put("tool", e.tool());
    m.put("arguments", e.arguments());
    m.put("result", e.result());
    m.put("meta", e.meta());
    m.put("at", e.at().toString());
    return m;
  }

  static JournalEntry decodeEntry(Map<String, Object> m) {
    return new JournalEntry(
        decimal(m.get("sequence")).longValueExact(),
        (String) m.get("tool"),
        object(m.get("arguments")),
        object(m.get("result")),
        object(m.get("meta")),
        Instant.parse((String) m.get("at")));
  }

  static Map<String, Object> encode(ReceivedCall c) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("tool", c.tool());
    m.put("arguments", c.arguments());
    m.put("meta", c.meta());
    m.put("at", c.at().toString());
    return m;
  }

  static ReceivedCall decodeCall(Map<String, Object> m) {
    return new ReceivedCall(
        (String) m.get("tool"), object(m.get("arguments")), object(m.get("meta")), Instant.parse((String) m.get("at")));
  }

  @SuppressWarnings("unchecked")
  static Map<String, Object> object(Object value) {
    return value instanceof Map<?, ?> m ? (Map<String, Object>) m : Map.of();
  }
}
