package keel.data;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import javax.sql.DataSource;
import keel.core.KeelException;

/**
 * Small helpers for reads: borrow a connection, bind arguments, map rows, turn SQL errors into
 * Keel's. Stateless and thread-safe.
 */
final class Jdbc {

  @FunctionalInterface
  interface Read<T> {
    T run(Connection c) throws SQLException;
  }

  /** Maps the current row of a result set; it must not move the cursor. */
  @FunctionalInterface
  interface Row<T> {
    T map(ResultSet rs) throws SQLException;
  }

  private Jdbc() {}

  static <T> T read(DataSource readers, String what, Read<T> read) {
    try (Connection c = readers.getConnection()) {
      return read.run(c);
    } catch (SQLException e) {
      throw new KeelException.Unavailable("cannot read " + what + ": " + e.getMessage(), e);
    }
  }

  /** Runs a query on a borrowed connection and maps every row; {@code what} names it in errors. */
  static <T> List<T> list(DataSource readers, String what, String sql, Row<T> row, Object... args) {
    return read(readers, what, c -> {
      try (PreparedStatement ps = c.prepareStatement(sql)) {
        return list(bind(ps, args), row);
      }
    });
  }

  /** Like {@link #list(DataSource, String, String, Row, Object...)}, for at most one row. */
  static <T> Optional<T> first(DataSource readers, String what, String sql, Row<T> row, Object... args) {
    return list(readers, what, sql, row, args).stream().findFirst();
  }

  /** Executes a prepared, bound query and maps every row. */
  static <T> List<T> list(PreparedStatement ps, Row<T> row) throws SQLException {
    List<T> out = new ArrayList<>();
    try (ResultSet rs = ps.executeQuery()) {
      while (rs.next()) {
        out.add(row.map(rs));
      }
    }
    return out;
  }

  /** Binds {@code args} to the statement's parameters, in order; returns the statement. */
  static PreparedStatement bind(PreparedStatement ps, Object... args) throws SQLException {
    for (int i = 0; i < args.length; i++) {
      ps.setObject(i + 1, args[i]);
    }
    return ps;
  }
}
