package keel.server;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import keel.core.KeelException;

/**
 * An exclusive lock on a data directory, so that two servers never share one embedded store. The
 * operating system releases it when the process dies, even by {@code kill -9}.
 */
final class DataDirLock implements AutoCloseable {

  private final FileChannel channel;
  private final FileLock lock;

  private DataDirLock(FileChannel channel, FileLock lock) {
    this.channel = channel;
    this.lock = lock;
  }

  static DataDirLock acquire(Path dataDir) {
    Path file = dataDir.resolve("server.lock");
    try {
      if (!Files.exists(dataDir)) {
        // the store holds every conversation: a data directory the server creates is its owner's only
        Files.createDirectories(dataDir);
        try {
          Files.setPosixFilePermissions(dataDir, java.nio.file.attribute.PosixFilePermissions.fromString("rwx------"));
        } catch (UnsupportedOperationException notPosix) {
          // nothing to set on this file system
        }
      }
      FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.READ);
      FileLock l = ch.tryLock();
      if (l == null) {
        String holder = new String(Files.readAllBytes(file), StandardCharsets.UTF_8).strip();
        ch.close();
        throw new KeelException.Conflict(
            "another Keel server (" + (holder.isEmpty() ? "unknown process" : holder) + ") is using the data directory "
                + dataDir.toAbsolutePath() + "; stop it or choose another --data-dir");
      }
      ch.truncate(0);
      ch.write(java.nio.ByteBuffer.wrap(("pid " + ProcessHandle.current().pid()).getBytes(StandardCharsets.UTF_8)));
      ch.force(true);
      return new DataDirLock(ch, l);
    } catch (IOException e) {
      throw new KeelException.Unavailable("cannot lock the data directory " + dataDir + ": " + e.getMessage(), e);
    }
  }

  @Override
  public void close() {
    try {
      lock.release();
      channel.close();
    } catch (IOException ignored) {
      // the lock goes with the process anyway
    }
  }
}
