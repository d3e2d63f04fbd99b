package io.olmoppl.job.score;

import io.olmoppl.job.cli.JobException;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.DataFrameReader;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;

/**
 * What {@code --input} (or {@code --input-glob}, {@code --previous}) names: its data files, listed
 * as Spark lists them (folders below are read too, hidden names skipped, {@code key=value} folders
 * give partition columns), and the path that makes Spark read exactly those.
 *
 * <p>Spark's file readers treat {@code [ ] { } * ? \} in a path as a pattern. A path the user names
 * is a path: those characters are escaped, so a folder {@code batch[2024]} is read, not a sibling
 * {@code batch2} that the pattern would match. Only {@code --input-glob} passes a pattern on.
 */
final class InputFiles {
  /** The characters of a Hadoop path pattern (and its escape). */
  private static final String PATTERN_CHARS = "\\[]{}*?";

  /** Input files opened at once to check their first bytes. */
  private static final int READ_THREADS = 16;

  private final String option;
  private final String named;
  private final String sparkPath;
  private final String basePath;
  private final List<Path> roots;
  private final List<FileStatus> files;

  private InputFiles(
      String option,
      String named,
      String sparkPath,
      String basePath,
      List<Path> roots,
      List<FileStatus> files) {
    this.option = option;
    this.named = named;
    this.sparkPath = sparkPath;
    this.basePath = basePath;
    this.roots = roots;
    this.files = files;
  }

  /**
   * Lists what {@code path} names.
   *
   * @param pattern true for a Hadoop glob ({@code --input-glob}), false for a literal path
   * @param option the option that named it, for messages
   * @throws JobException when nothing is there
   */
  static InputFiles of(Configuration conf, String path, boolean pattern, String option)
      throws IOException {
    Path p = new Path(path);
    FileSystem fs = p.getFileSystem(conf);
    List<FileStatus> matched = new ArrayList<>();
    if (pattern) {
      FileStatus[] g = fs.globStatus(p);
      if (g != null) {
        matched.addAll(List.of(g));
      }
      if (matched.isEmpty()) {
        throw new JobException(
            option + " " + path + " matches no file or folder. Check the pattern and its quoting.");
      }
    } else {
      if (!fs.exists(p)) {
        throw new JobException(
            option + " " + path + " does not exist. Pass a file or a directory of files.");
      }
      matched.add(fs.getFileStatus(p));
    }
    List<FileStatus> files = new ArrayList<>();
    for (FileStatus m : matched) {
      list(fs, m, files);
    }
    if (files.isEmpty()) {
      throw new JobException(
          option
              + " "
              + path
              + (pattern ? " matches" : " is a directory with")
              + " no data files"
              + " (names starting with _ or . are not read).");
    }
    return new InputFiles(
        option,
        path,
        pattern ? path : escape(path),
        pattern ? fixedPrefix(p) : null,
        matched.stream().map(FileStatus::getPath).toList(),
        files);
  }

  /** Adds the data files at or below {@code s}, skipping the names Spark's file index skips. */
  private static void list(FileSystem fs, FileStatus s, List<FileStatus> into) throws IOException {
    if (!s.isDirectory()) {
      into.add(s);
      return;
    }
    for (FileStatus c : fs.listStatus(s.getPath())) {
      if (!hidden(c.getPath().getName())) {
        list(fs, c, into);
      }
    }
  }

  /** Spark's rule ({@code InMemoryFileIndex}): a name Spark does not read. */
  private static boolean hidden(String name) {
    return (name.startsWith("_") && !name.contains("="))
        || name.startsWith(".")
        || name.endsWith("._COPYING_");
  }

  /**
   * @return {@code path} with every pattern character escaped, so Hadoop's globbing matches it
   *     alone
   */
  static String escape(String path) {
    StringBuilder b = new StringBuilder(path.length() + 8);
    for (char c : path.toCharArray()) {
      if (PATTERN_CHARS.indexOf(c) >= 0) {
        b.append('\\');
      }
      b.append(c);
    }
    return b.toString();
  }

  /**
   * @return the folder above the pattern's first component with a pattern character: partition
   *     columns are found below it ({@code data/lang=*} gives {@code lang})
   */
  private static String fixedPrefix(Path pattern) {
    Path p = pattern;
    while (p != null && p.toUri().getPath().chars().anyMatch(c -> PATTERN_CHARS.indexOf(c) >= 0)) {
      p = p.getParent();
    }
    return p == null ? null : p.toString();
  }

  /**
   * @return the format by file extension, of every data file (which must agree)
   */
  String format() {
    Map<String, List<String>> byFormat = new TreeMap<>();
    for (FileStatus f : files) {
      byFormat
          .computeIfAbsent(
              Formats.detect(option + " " + named, f.getPath().getName()), k -> new ArrayList<>())
          .add(relative(f.getPath()));
    }
    if (byFormat.size() > 1) {
      StringBuilder b = new StringBuilder();
      byFormat.forEach(
          (f, names) ->
              b.append(b.length() == 0 ? "" : "; ")
                  .append(f)
                  .append(": ")
                  .append(
                      names.size() <= 5
                          ? names
                          : names.subList(0, 5) + " and " + (names.size() - 5) + " more"));
      throw new JobException(
          option
              + " "
              + named
              + " mixes files of several formats ("
              + b
              + "). A directory is read"
              + " whole in one format; put each format in its own directory and score them separately.");
    }
    return byFormat.keySet().iterator().next();
  }

  /**
   * Refuses, before any work, a file Spark would read wrongly: compressed data whose name does not
   * tell Hadoop its codec, or a codec that cannot read it (see {@link Compression}). The files are
   * opened {@link #READ_THREADS} at a time: on an object store each open is a request.
   */
  void requireReadable(Configuration conf, String format) throws IOException {
    if (format.equals("parquet") || format.equals("orc")) {
      return; // compressed inside the file, by the format
    }
    Compression c = new Compression(conf);
    ExecutorService pool =
        Executors.newFixedThreadPool(
            Math.min(READ_THREADS, files.size()),
            r -> {
              Thread t = new Thread(r, "olmo-ppl input check");
              t.setDaemon(true);
              return t;
            });
    try {
      List<Future<String>> problems = new ArrayList<>();
      for (FileStatus f : files) {
        problems.add(pool.submit(() -> c.problem(f)));
      }
      for (int i = 0; i < files.size(); i++) {
        String problem = result(problems.get(i));
        if (problem != null) {
          throw new JobException(
              option
                  + " "
                  + named
                  + ": file "
                  + files.get(i).getPath()
                  + " "
                  + problem
                  + " Nothing was scored.");
        }
      }
    } finally {
      pool.shutdownNow();
    }
  }

  private static String result(Future<String> f) throws IOException {
    try {
      return f.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while checking the input files");
    } catch (ExecutionException e) {
      if (e.getCause() instanceof IOException io) {
        throw io;
      }
      if (e.getCause() instanceof RuntimeException re) {
        throw re;
      }
      throw new IllegalStateException(e.getCause());
    }
  }

  /**
   * @return the rows, read by {@code reader} from exactly the named files
   */
  Dataset<Row> load(DataFrameReader reader) {
    if (basePath != null) {
      reader = reader.option("basePath", basePath);
    }
    return reader.load(sparkPath);
  }

  /**
   * @return the files or folders named (the matches of a pattern)
   */
  List<Path> roots() {
    return roots;
  }

  private String relative(Path file) {
    String s = file.toString();
    for (Path r : roots) {
      String rs = r.toString();
      if (s.startsWith(rs + "/")) {
        return s.substring(rs.length() + 1);
      }
    }
    return file.getName();
  }
}
