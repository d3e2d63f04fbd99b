package io.olmoppl.job.score;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.to_json;

import io.olmoppl.job.cli.JobException;
import io.olmoppl.job.cli.UsageException;
import java.io.IOException;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.DataFrameReader;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.MapType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * The input and output formats of {@code score}: reading {@code --input} in its format (by file
 * extension under {@code auto}) and writing rows as parquet, JSON lines or CSV.
 */
public final class Formats {
  private Formats() {}

  static Dataset<Row> read(SparkSession spark, Request req) throws IOException {
    Path in = new Path(req.input());
    FileSystem fs = in.getFileSystem(spark.sparkContext().hadoopConfiguration());
    if (!fs.exists(in)) {
      throw new JobException(
          "--input " + req.input() + " does not exist. Pass a file or a directory of files.");
    }
    String fmt = req.inputFormat().equals("auto") ? detect(fs, in) : req.inputFormat();
    DataFrameReader r = spark.read();
    Dataset<Row> df =
        switch (fmt) {
          case "parquet" -> r.parquet(req.input());
          case "orc" -> r.orc(req.input());
          case "json" -> r.option("columnNameOfCorruptRecord", Malformed.COLUMN).json(req.input());
          case "csv" ->
              r.option("header", "true")
                  .option("multiLine", "true")
                  .option("escape", "\"")
                  .csv(req.input());
          case "text" -> r.text(req.input()).withColumnRenamed("value", req.textColumn());
          default -> throw new IllegalStateException(fmt);
        };
    return df;
  }

  /**
   * @return the format by file extension: of the file, or of every data file in a directory (which
   *     must agree)
   */
  static String detect(FileSystem fs, Path in) throws IOException {
    if (!fs.getFileStatus(in).isDirectory()) {
      return detect(in, in.getName());
    }
    Map<String, List<String>> byFormat = new java.util.TreeMap<>();
    for (FileStatus s : fs.listStatus(in)) {
      String n = s.getPath().getName();
      if (s.isFile() && !n.startsWith("_") && !n.startsWith(".")) {
        byFormat.computeIfAbsent(detect(in, n), k -> new java.util.ArrayList<>()).add(n);
      }
    }
    if (byFormat.isEmpty()) {
      throw new JobException("--input " + in + " is a directory with no data files.");
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
          "--input "
              + in
              + " mixes files of several formats ("
              + b
              + "). A directory is read"
              + " whole in one format; put each format in its own directory and score them separately.");
    }
    return byFormat.keySet().iterator().next();
  }

  private static String detect(Path in, String name) {
    String n = name.toLowerCase(Locale.ROOT);
    for (String suffix : List.of(".gz", ".bz2", ".zst", ".snappy", ".lz4", ".deflate")) {
      if (n.endsWith(suffix) && !n.endsWith(".parquet" + suffix)) {
        n = n.substring(0, n.length() - suffix.length());
      }
    }
    if (n.endsWith(".parquet") || n.contains(".parquet")) {
      return "parquet";
    }
    if (n.endsWith(".jsonl") || n.endsWith(".json") || n.endsWith(".ndjson")) {
      return "json";
    }
    if (n.endsWith(".csv")) {
      return "csv";
    }
    if (n.endsWith(".txt") || n.endsWith(".text")) {
      return "text";
    }
    if (n.endsWith(".orc")) {
      return "orc";
    }
    throw new UsageException(
        "cannot tell the format of --input "
            + in
            + " from the file name '"
            + name
            + "'. Pass --input-format parquet|json|csv|text|orc (a directory must hold files of one format).");
  }

  public static void write(Dataset<Row> scored, Request req, String path) {
    switch (req.outputFormat()) {
      case "json" ->
          Output.writer(scored)
              .option("ignoreNullFields", "false")
              .option("compression", "none")
              .json(path);
      case "csv" -> {
        Dataset<Row> flat = scored;
        for (StructField f : scored.schema().fields()) {
          if (f.dataType() instanceof ArrayType
              || f.dataType() instanceof StructType
              || f.dataType() instanceof MapType) {
            flat = flat.withColumn(f.name(), to_json(col(f.name())));
          }
        }
        Output.writer(flat).option("header", "true").option("escape", "\"").csv(path);
      }
      default -> Output.writer(scored).parquet(path);
    }
  }
}
