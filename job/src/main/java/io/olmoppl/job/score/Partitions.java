package io.olmoppl.job.score;

import io.olmoppl.job.report.Progress;
import java.io.PrintStream;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

/**
 * How many partitions (tasks, and output files) a run scores in: {@code --partitions N}, else at
 * least {@code spark.default.parallelism}; never more than the input has rows, since each extra
 * partition is an empty task and temporary files to commit and delete (5000 of them for five rows
 * took minutes).
 */
final class Partitions {
  private Partitions() {}

  /**
   * @param asRead the input before any repartition, counted when the progress display has not
   *     counted it already and {@code --partitions} asks for a number
   * @param progress the progress display (its count of rows), or null
   * @param requested {@code --partitions}, or null
   * @return {@code input} spread over the partitions the run scores in
   */
  static Dataset<Row> spread(
      Dataset<Row> input,
      Dataset<Row> asRead,
      Progress progress,
      Integer requested,
      SparkSession spark,
      PrintStream err) {
    int target = requested != null ? requested : spark.sparkContext().defaultParallelism();
    long rows =
        progress != null ? progress.totalDocuments() : requested != null ? asRead.count() : -1;
    if (rows >= 0 && target > rows) {
      int capped = (int) Math.max(1, rows);
      if (requested != null) {
        err.println(
            "olmo-ppl: note: --partitions "
                + requested
                + " is more than the "
                + rows
                + " input rows; scoring in "
                + capped
                + " partitions");
      }
      target = capped;
    }
    if (requested != null || input.rdd().getNumPartitions() < target) {
      return input.repartition(target);
    }
    return input;
  }
}
