package io.olmoppl.job.score;

import static org.apache.spark.sql.functions.to_json;

import io.olmoppl.job.cli.UsageException;
import io.olmoppl.job.report.Columns;
import java.io.IOException;
import java.util.List;
import java.util.Locale;
import org.apache.hadoop.conf.Configuration;
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
    Configuration conf = spark.sparkContext().hadoopConfiguration();
    InputFiles in =
        InputFiles.of(
            conf, req.input(), req.inputGlob(), req.inputGlob() ? "--input-glob" : "--input");
    String fmt = req.inputFormat().equals("auto") ? in.format() : req.inputFormat();
    in.requireReadable(conf, fmt);
    Dataset<Row> df = in.load(reader(spark, fmt));
    return fmt.equals("text") ? df.withColumnRenamed("value", req.textColumn()) : df;
  }

  /**
   * @return a reader of {@code format} with the options every read of this job uses: JSON lines
   *     without Jackson's 20-million-character limit on a string and with {@link Malformed#COLUMN}
   *     for lines that do not parse; CSV with a header row, multi-line values and whitespace kept
   */
  static DataFrameReader reader(SparkSession spark, String format) {
    DataFrameReader r = spark.read().format(format);
    return switch (format) {
      case "json" ->
          r.option("columnNameOfCorruptRecord", Malformed.COLUMN)
              .option("maxStringLen", Integer.MAX_VALUE);
      case "csv" ->
          r.option("header", "true")
              .option("multiLine", "true")
              .option("escape", "\"")
              .option("ignoreLeadingWhiteSpace", "false")
              .option("ignoreTrailingWhiteSpace", "false");
      default -> r;
    };
  }

  /**
   * @return the format of a data file by its name's extension (a compression extension removed)
   * @param what the option and the path the user named, for the message
   */
  static String detect(String what, String name) {
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
        "cannot tell the format of "
            + what
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
            flat = flat.withColumn(f.name(), to_json(Columns.named(f.name())));
          }
        }
        // Spark's CSV writer trims values unless told not to; the scores are of the untrimmed text
        Output.writer(flat)
            .option("header", "true")
            .option("escape", "\"")
            .option("ignoreLeadingWhiteSpace", "false")
            .option("ignoreTrailingWhiteSpace", "false")
            .csv(path);
      }
      default -> Output.writer(scored).parquet(path);
    }
  }
}
