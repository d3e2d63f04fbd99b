package io.olmoppl.job.score;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.when;

import io.olmoppl.job.cli.JobException;
import io.olmoppl.job.report.Columns;
import io.olmoppl.scoring.Status;
import io.olmoppl.spark.ScoreColumns;
import java.util.Arrays;
import java.util.UUID;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;

/**
 * JSON lines that do not parse. Spark keeps such a line in the column {@link #COLUMN} (its other
 * columns null); its row gets the status {@link #STATUS} instead of {@code null_text}, or, with
 * {@code --on-malformed fail}, the run stops before scoring. The output holds the line in {@link
 * #OUTPUT}.
 */
public final class Malformed {
  /**
   * The reader's column for the raw text of a line that does not parse (present only when there is
   * one). Spark takes an input field of this name for that column, so it is a name no input can
   * have (not Spark's default {@code _corrupt_record}, which an input may hold as its own field).
   */
  static final String COLUMN =
      "__olmoppl_malformed_" + UUID.randomUUID().toString().substring(0, 8);

  /** The output column of the raw line of a malformed row (null on the other rows). */
  public static final String OUTPUT = "ppl_malformed_line";

  static final String STATUS = Status.MALFORMED.id();

  private Malformed() {}

  /** With {@code --on-malformed fail}: refuses an input with malformed lines, counting them. */
  static void check(Dataset<Row> input, Request req) {
    if (!req.run().failOnMalformed() || !has(input)) {
      return;
    }
    // Spark refuses a query on raw JSON that reads only the corrupt-record column: read the text
    // column too (an RDD
    // count keeps both; a Dataset count would prune the text column away)
    long n =
        input
            .where(col(COLUMN).isNotNull())
            .select(col(COLUMN), Columns.named(req.textColumn()))
            .javaRDD()
            .count();
    if (n > 0) {
      Row first =
          input
              .where(col(COLUMN).isNotNull())
              .select(col(COLUMN), Columns.named(req.textColumn()))
              .first();
      String line = first.getString(0);
      throw new JobException(
          "--input "
              + req.input()
              + " has "
              + n
              + " malformed JSON line(s), e.g. "
              + (line.length() > 80 ? line.substring(0, 80) + "..." : line).strip()
              + ". Fix or remove them, or drop"
              + " --on-malformed fail to score the rest (malformed lines then get status "
              + STATUS
              + ").");
    }
  }

  /**
   * @return {@code scored} with status {@link #STATUS} on the rows Spark could not parse, their
   *     line in {@link #OUTPUT}
   */
  static Dataset<Row> mark(Dataset<Row> scored) {
    if (!has(scored)) {
      return scored;
    }
    return scored
        .withColumn(
            ScoreColumns.STATUS,
            when(col(COLUMN).isNotNull(), lit(STATUS)).otherwise(col(ScoreColumns.STATUS)))
        .withColumnRenamed(COLUMN, OUTPUT);
  }

  private static boolean has(Dataset<Row> df) {
    return Arrays.asList(df.columns()).contains(COLUMN);
  }
}
