package keel.cli;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;

/** A table for people: a header row and aligned columns separated by two spaces. */
final class Table {

  private final List<String> headers;
  private final List<List<String>> rows = new ArrayList<>();

  Table(String... headers) {
    this.headers = List.of(headers);
  }

  Table row(String... cells) {
    if (cells.length != headers.size()) {
      throw new IllegalArgumentException("expected " + headers.size() + " cells, got " + cells.length);
    }
    rows.add(List.of(cells));
    return this;
  }

  boolean isEmpty() {
    return rows.isEmpty();
  }

  void print(PrintStream out) {
    int[] widths = new int[headers.size()];
    for (int i = 0; i < widths.length; i++) {
      widths[i] = headers.get(i).length();
      for (List<String> r : rows) {
        widths[i] = Math.max(widths[i], r.get(i).length());
      }
    }
    line(out, headers, widths);
    for (List<String> r : rows) {
      line(out, r, widths);
    }
  }

  private static void line(PrintStream out, List<String> cells, int[] widths) {
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < cells.size(); i++) {
      String c = cells.get(i);
      sb.append(c);
      if (i < cells.size() - 1) {
        sb.append(" ".repeat(widths[i] - c.length() + 2));
      }
    }
    out.println(sb.toString().stripTrailing());
  }
}
