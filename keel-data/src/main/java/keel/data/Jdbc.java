package keel.data;

import java.sql.Connection;
import java.sql.SQLException;
import javax.sql.DataSource;
import keel.core.KeelException;

/** Small helpers for reads: borrow a connection, turn SQL errors into Keel's. */
final class Jdbc {

  @FunctionalInterface
  interface Read<T> {
    T run(Connection c) throws SQLException;
  }

  private Jdbc() {}

  static <T> T read(DataSource readers, String what, Read<T> read) {
    try (Connection c = readers.getConnection()) {
      return read.run(c);
    } catch (SQLException e) {
      throw new KeelException.Unavailable("cannot read " + what + ": " + e.getMessage(), e);
    }
  }
}
