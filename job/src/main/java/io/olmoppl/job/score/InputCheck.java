package io.olmoppl.job.score;

import io.olmoppl.job.cli.JobException;
import io.olmoppl.job.report.Analysis;
import io.olmoppl.job.report.Buckets;
import io.olmoppl.spark.ScoreColumns;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.MapType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.types.VariantType;

/**
 * The input's columns against what the run writes and resolves, checked before any work: every
 * input column must reach the output unchanged, so one named like a column the run adds is refused
 * (Spark resolves names case-insensitively, so {@code PPL_STATUS} collides with {@code
 * ppl_status}); {@code --id-column} must be in the input and hold a scalar.
 */
final class InputCheck {
  /** The prefix of the run's own working columns ({@link Rerun}); no input column may use it. */
  static final String WORKING_PREFIX = "__olmoppl_";

  private InputCheck() {}

  /**
   * @throws JobException naming the column, what the run writes under its name and how to fix it
   */
  static void require(StructType input, Request req) {
    Map<String, String> written = new LinkedHashMap<>();
    for (StructField f : ScoreColumns.fields(req.options().tokenLogprobs())) {
      written.put(f.name().toLowerCase(Locale.ROOT), f.name() + " (a score column)");
    }
    Analysis an = req.analysis();
    if (an.buckets() != null || an.cutoffsFile() != null) {
      written.put(
          Buckets.COLUMN.toLowerCase(Locale.ROOT),
          Buckets.COLUMN + " (added by --buckets/--cutoffs)");
    }
    written.put(
        Malformed.OUTPUT.toLowerCase(Locale.ROOT),
        Malformed.OUTPUT + " (the line of a malformed JSON row)");
    List<String> clashes = new ArrayList<>();
    for (String c : input.fieldNames()) {
      String ours = written.get(c.toLowerCase(Locale.ROOT));
      if (ours != null) {
        clashes.add("'" + c + "' would be replaced by " + ours);
      } else if (c.toLowerCase(Locale.ROOT).startsWith(WORKING_PREFIX)
          && !c.equals(Malformed.COLUMN)) { // the reader's own column of malformed lines
        clashes.add(
            "'" + c + "' starts with " + WORKING_PREFIX + ", which the run uses internally");
      }
    }
    if (!clashes.isEmpty()) {
      throw new JobException(
          "the input has column(s) the output cannot keep: "
              + String.join("; ", clashes)
              + ". Every input column is written unchanged, so rename or drop these before"
              + " scoring (column names are compared ignoring case, as Spark resolves them).");
    }
    String id = req.run().idColumn();
    if (id != null) {
      int i = List.of(input.fieldNames()).indexOf(id);
      if (i < 0) {
        throw new JobException(
            "--id-column '"
                + id
                + "' is not in the input. Its columns are: "
                + String.join(", ", input.fieldNames()));
      }
      var type = input.fields()[i].dataType();
      if (type instanceof StructType
          || type instanceof ArrayType
          || type instanceof MapType
          || type instanceof VariantType) {
        throw new JobException(
            "--id-column '"
                + id
                + "' has type "
                + type.simpleString()
                + "; a row key must be a scalar (a string, number, date...). Pass a scalar column,"
                + " or drop --id-column to key rows by a hash of their text.");
      }
    }
  }
}
