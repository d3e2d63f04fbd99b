package io.olmoppl.job.score;

import io.olmoppl.job.cli.JobException;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.DataFrameWriter;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;

/**
 * The output directory of a run. Checked before any work (exists? writable?); written with Spark's
 * success marker turned off, then {@code _summary.json}, then {@link #MARKER} last, so that an
 * output a crash left behind never looks complete.
 */
public final class Output {
  public static final String MARKER = "_SUCCESS";

  /** The Hadoop committer setting that writes {@code _SUCCESS} when the rows are committed. */
  private static final String COMMITTER_MARKER = "mapreduce.fileoutputcommitter.marksuccessfuljobs";

  private Output() {}

  /**
   * Refuses an existing output (unless {@code --mode overwrite}) or one that cannot be written, and
   * an output that is the input or the previous output (overwriting it would destroy what the run
   * reads).
   */
  static void prepare(SparkSession spark, Request req) throws IOException {
    Path out = new Path(req.output());
    FileSystem fs = out.getFileSystem(spark.sparkContext().hadoopConfiguration());
    Path q = fs.makeQualified(out);
    List<String> read = new ArrayList<>(List.of(req.input()));
    if (req.run().previous() != null) {
      read.add(req.run().previous());
    }
    for (String r : read) {
      Path p = new Path(r);
      Path rq = p.getFileSystem(spark.sparkContext().hadoopConfiguration()).makeQualified(p);
      if (isUnder(rq, q) || isUnder(q, rq)) {
        throw new JobException(
            "--output "
                + req.output()
                + " overlaps "
                + r
                + ", which this run reads. Write the"
                + " results to a new path.");
      }
    }
    boolean exists = fs.exists(out);
    if (exists && !req.run().overwrite()) {
      String state =
          fs.exists(new Path(out, MARKER))
              ? ""
              : " (it has no " + MARKER + " marker: an earlier run" + " did not finish)";
      throw new JobException(
          "--output "
              + req.output()
              + " already exists"
              + state
              + ". olmo-ppl does not"
              + " overwrite results unless asked; choose a new output path, remove the old one, or pass --mode"
              + " overwrite.");
    }
    Path probe = new Path(out, "_olmo-ppl-probe-" + UUID.randomUUID());
    try {
      fs.create(probe, false).close();
      fs.delete(probe, false);
      if (!exists) {
        fs.delete(out, true);
      }
    } catch (IOException | RuntimeException e) {
      throw new JobException(
          "--output "
              + req.output()
              + " cannot be written ("
              + firstLine(e)
              + "). Choose a"
              + " path whose parent is a directory you can write, before any scoring is done.");
    }
  }

  /**
   * With {@code --mode overwrite}: removes the old output, just before the new rows are written.
   */
  static void clearForOverwrite(FileSystem fs, Path out, Request req) throws IOException {
    if (req.run().overwrite() && fs.exists(out)) {
      fs.delete(out, true);
    }
  }

  /**
   * @return a writer that refuses an existing path and writes no success marker (see {@link
   *     #markComplete})
   */
  static DataFrameWriter<Row> writer(Dataset<Row> rows) {
    return rows.write().mode(SaveMode.ErrorIfExists).option(COMMITTER_MARKER, "false");
  }

  /** Writes the success marker: the last file of a complete output. */
  static void markComplete(FileSystem fs, Path out) throws IOException {
    fs.create(new Path(out, MARKER), false).close();
  }

  private static boolean isUnder(Path p, Path dir) {
    String a = p.toUri().toString();
    String b = dir.toUri().toString();
    return a.equals(b) || a.startsWith(b.endsWith("/") ? b : b + "/");
  }

  private static String firstLine(Throwable e) {
    String m = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    int nl = m.indexOf('\n');
    return nl < 0 ? m : m.substring(0, nl);
  }
}
