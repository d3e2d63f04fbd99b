package io.olmoppl.job.report;

import org.apache.spark.sql.Column;
import org.apache.spark.sql.functions;

/**
 * Columns by their exact names. Spark parses a name given to {@code col} as a path ({@code a.b} is
 * field {@code b} of struct {@code a}); a user's column may be named {@code my.text} or {@code
 * src.name} (a JSON field, a CSV header), so every name from the command line or the input is
 * quoted before Spark resolves it.
 */
public final class Columns {
  private Columns() {}

  /**
   * @return the top-level column named {@code name}, whatever characters it holds
   */
  public static Column named(String name) {
    return functions.col(quote(name));
  }

  /**
   * @return {@code name} as one quoted identifier: in backticks, a backtick doubled
   */
  public static String quote(String name) {
    return "`" + name.replace("`", "``") + "`";
  }
}
