package io.olmoppl.job.score;

import io.olmoppl.job.cli.JobException;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.DataFrameWriter;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;

/**
 * The outputs of a run ({@code --output}, and {@code --rejected} with a filter), replaced, never
 * destroyed.
 *
 * <p>{@link #open} checks everything about them before any work: that no output is or holds what
 * the run reads, nor sits inside the other output ({@link Places}); that an existing output is
 * replaced only with {@code --mode overwrite}; that each can be written; and it claims each for
 * this run ({@link Claim}): a second run on the same output fails without touching it.
 *
 * <p>Each output is written into a hidden sibling folder ({@code .NAME.olmo-ppl-new-ID}, on the
 * same file system, skipped by readers of the parent), rows first, then {@code _summary.json}, then
 * {@link #MARKER}. Only then does {@link #commit} move it in place with file-system renames: an old
 * output is renamed aside ({@code .NAME.olmo-ppl-old-ID}), the new one renamed to its name, and the
 * old one deleted last. A run that fails before that leaves the old output as it was and deletes
 * its own folder ({@link #close}).
 *
 * <p>The swap is two renames, not one: between them (milliseconds on HDFS and local disks, where a
 * rename is atomic) the output path is missing, never partial. A crash in that instant leaves the
 * old output in {@code .NAME.olmo-ppl-old-ID}, which the next run names. On object stores (S3A,
 * GCS) a rename is a copy, so there the window lasts as long as the copy.
 */
public final class Output implements AutoCloseable {
  public static final String MARKER = "_SUCCESS";

  /** The Hadoop committer setting that writes {@code _SUCCESS} when the rows are committed. */
  private static final String COMMITTER_MARKER = "mapreduce.fileoutputcommitter.marksuccessfuljobs";

  private static final String NEW = ".olmo-ppl-new-";
  private static final String OLD = ".olmo-ppl-old-";

  /** One output of the run: its path, the folder it is written into first, and its claim. */
  private record Target(
      String flag, String named, FileSystem fs, Path path, Path staged, Claim claim) {}

  private final List<Target> targets;
  private final boolean overwrite;
  private final String id;
  private boolean committed;

  private Output(List<Target> targets, boolean overwrite, String id) {
    this.targets = targets;
    this.overwrite = overwrite;
    this.id = id;
  }

  /**
   * Checks and claims the outputs of {@code req}, before any work.
   *
   * @throws JobException for an output that exists (without {@code --mode overwrite}), cannot be
   *     written, overlaps what the run reads or the other output, or is claimed by another run
   */
  static Output open(SparkSession spark, Request req) throws IOException {
    Configuration conf = spark.sparkContext().hadoopConfiguration();
    List<Places.Place> reads = new ArrayList<>();
    if (req.inputGlob()) { // a pattern: every folder or file it matches is read
      for (Path root : InputFiles.of(conf, req.input(), true, "--input-glob").roots()) {
        reads.add(Places.of(conf, "--input-glob", root.toString(), true));
      }
    } else {
      reads.add(Places.of(conf, "--input", req.input(), true));
    }
    if (req.run().previous() != null) {
      reads.add(Places.of(conf, "--previous", req.run().previous(), true));
    }
    List<Places.Place> writes = new ArrayList<>();
    writes.add(Places.of(conf, "--output", req.output(), false));
    String rejected = req.analysis().rejected();
    if (rejected != null) {
      writes.add(Places.of(conf, "--rejected", rejected, false));
    }
    Places.refuseOverlaps(reads, writes);

    String id = UUID.randomUUID().toString();
    List<Target> targets = new ArrayList<>();
    try {
      for (Places.Place w : writes) {
        Path p = new Path(w.path());
        FileSystem fs = p.getFileSystem(conf);
        Path q = fs.makeQualified(p);
        if (q.getParent() == null) {
          throw new JobException(
              w.flag() + " " + w.path() + " is the root of a file system; name a folder in it.");
        }
        boolean replace = req.run().overwrite() && w.flag().equals("--output");
        refuseExisting(fs, q, w, replace);
        Claim claim = Claim.take(fs, q, w.flag(), w.path());
        Path staged = new Path(q.getParent(), "." + q.getName() + NEW + id);
        targets.add(new Target(w.flag(), w.path(), fs, q, staged, claim));
        refuseExisting(fs, q, w, replace); // again under the claim: a run may have ended meanwhile
        refuseInterrupted(fs, q, w);
      }
    } catch (IOException | RuntimeException e) {
      new Output(targets, false, id).close();
      throw e;
    }
    return new Output(targets, req.run().overwrite(), id);
  }

  private static void refuseExisting(FileSystem fs, Path p, Places.Place w, boolean replace)
      throws IOException {
    if (!fs.exists(p) || replace) {
      return;
    }
    String state =
        fs.exists(new Path(p, MARKER))
            ? ""
            : " (it has no " + MARKER + " marker: an earlier run did not finish)";
    throw new JobException(
        w.flag()
            + " "
            + w.path()
            + " already exists"
            + state
            + ". olmo-ppl does not overwrite results unless asked; choose a new path, remove the old"
            + " one"
            + (w.flag().equals("--output") ? ", or pass --mode overwrite." : "."));
  }

  /** Refuses an output whose last replacement was cut off between its two renames. */
  private static void refuseInterrupted(FileSystem fs, Path p, Places.Place w) throws IOException {
    if (fs.exists(p)) {
      return;
    }
    String prefix = "." + p.getName() + OLD;
    FileStatus[] left = fs.listStatus(p.getParent(), c -> c.getName().startsWith(prefix));
    if (left.length > 0) {
      throw new JobException(
          w.flag()
              + " "
              + w.path()
              + " is missing, and "
              + left[0].getPath()
              + " holds the output it replaced: an earlier run was stopped while swapping in its new"
              + " output. Rename that folder back to "
              + p.getName()
              + " (or delete it if it is no longer wanted), then run again.");
    }
  }

  /**
   * @return where this run writes the rows, summary and marker of {@code --output}
   */
  Path rows() {
    return targets.get(0).staged();
  }

  /**
   * @return where this run writes the rows of {@code --rejected}, or null without
   */
  Path rejectedRows() {
    return targets.size() > 1 ? targets.get(1).staged() : null;
  }

  /**
   * @return the file system of {@code --output}
   */
  FileSystem fs() {
    return targets.get(0).fs();
  }

  /**
   * Moves the complete outputs in place, {@code --output} last; an old {@code --output} is deleted
   * only after the new one is in place.
   */
  void commit() throws IOException {
    for (int i = targets.size() - 1; i >= 0; i--) {
      install(targets.get(i));
    }
    committed = true;
  }

  private void install(Target t) throws IOException {
    FileSystem fs = t.fs();
    Path old = null;
    if (fs.exists(t.path())) {
      if (!overwrite || !t.flag().equals("--output")) {
        throw new JobException(
            t.flag()
                + " "
                + t.named()
                + " was created by something else while this run wrote it; it was left"
                + " as it is and this run's rows were discarded. Run again with a new path.");
      }
      old = new Path(t.path().getParent(), "." + t.path().getName() + OLD + id);
      if (!fs.rename(t.path(), old)) {
        throw new IOException("cannot move the old " + t.flag() + " " + t.path() + " aside");
      }
    }
    // the window: between the renames the path is missing (see the class comment)
    if (!fs.rename(t.staged(), t.path())) {
      if (old != null) {
        fs.rename(old, t.path());
      }
      throw new IOException(
          "cannot move the new " + t.flag() + " from " + t.staged() + " to " + t.path());
    }
    if (old != null) {
      fs.delete(old, true);
    }
  }

  /**
   * Deletes this run's unfinished folders (never an output it did not write) and releases the
   * claims.
   */
  @Override
  public void close() throws IOException {
    IOException first = null;
    for (Target t : targets) {
      try {
        if (!committed && t.fs().exists(t.staged())) {
          t.fs().delete(t.staged(), true);
        }
      } catch (IOException e) {
        first = first == null ? e : first;
      } finally {
        t.claim().close();
      }
    }
    if (first != null) {
      throw first;
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
}
