package io.olmoppl.job.score;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.from_json;
import static org.apache.spark.sql.functions.sha2;

import io.olmoppl.job.cli.JobException;
import io.olmoppl.job.report.Columns;
import io.olmoppl.job.report.ScoreSummary;
import io.olmoppl.spark.OlmoPerplexity;
import io.olmoppl.spark.ScoreColumns;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;

/**
 * Scheduled re-runs ({@code --previous}): an input row whose key ({@code --id-column}, else a hash
 * of its text) is in the earlier output with the same text and the same {@code ppl_model} stamp
 * keeps its earlier score unchanged; every other row (new, edited, or scored under another model or
 * settings) is scored. Rows of the earlier output that are no longer in the input are not written.
 * The output holds every input row exactly once.
 */
public final class Rerun {
  private static final String KEY = "__olmoppl_key";
  private static final String HASH = "__olmoppl_text_hash";
  private static final String PREFIX = "__olmoppl_prev_";

  private final Dataset<Row> toScore;
  private final Dataset<Row> carried;
  private final String[] inputColumns;

  private Rerun(Dataset<Row> toScore, Dataset<Row> carried, String[] inputColumns) {
    this.toScore = toScore;
    this.carried = carried;
    this.inputColumns = inputColumns;
  }

  /**
   * Splits the input into rows to score and rows carried from {@code --previous} (all rows to score
   * without it).
   */
  static Rerun split(SparkSession spark, Dataset<Row> input, OlmoPerplexity.Plan plan, Request req)
      throws IOException {
    String[] cols = input.columns();
    String prevPath = req.run().previous();
    if (prevPath == null) {
      return new Rerun(input, null, cols);
    }
    Path p = new Path(prevPath);
    FileSystem fs = p.getFileSystem(spark.sparkContext().hadoopConfiguration());
    if (!fs.exists(p)) {
      throw new JobException(
          "--previous "
              + prevPath
              + " does not exist. Pass the output directory of an earlier"
              + " run, or drop --previous to score every row.");
    }
    if (!fs.exists(new Path(p, Output.MARKER))) {
      throw new JobException(
          "--previous "
              + prevPath
              + " has no "
              + Output.MARKER
              + " marker: the run that wrote"
              + " it did not finish, so its rows cannot be trusted. Pass a complete output.");
    }
    InputFiles files =
        InputFiles.of(spark.sparkContext().hadoopConfiguration(), prevPath, false, "--previous");
    String fmt = files.format();
    Dataset<Row> prev = files.load(Formats.reader(spark, fmt));
    String text = req.textColumn();
    String id = req.run().idColumn();
    List<StructField> scoreFields = ScoreColumns.fields(req.options().tokenLogprobs());
    List<String> missing = new ArrayList<>();
    // a scores-only output (--output-columns) holds the text's hash instead of the text
    boolean prevHashOnly =
        !Arrays.asList(prev.columns()).contains(text)
            && Arrays.asList(prev.columns()).contains(OutputColumns.TEXT_HASH);
    for (String c : id == null ? List.of(text) : List.of(text, id)) {
      boolean inPrev =
          Arrays.asList(prev.columns()).contains(c) || (c.equals(text) && prevHashOnly);
      if (!inPrev || !Arrays.asList(cols).contains(c)) {
        missing.add(c);
      }
    }
    for (StructField f : scoreFields) {
      if (!Arrays.asList(prev.columns()).contains(f.name())) {
        missing.add(f.name());
      }
    }
    if (!missing.isEmpty()) {
      throw new JobException(
          "--previous "
              + prevPath
              + " or --input lacks the column(s) "
              + missing
              + " that"
              + " carrying scores over needs. Pass an output of 'olmo-ppl score' with the same options (e.g."
              + " --token-logprobs), and an --id-column both have, or drop --previous.");
    }
    Column prevHash =
        prevHashOnly ? prev.col(OutputColumns.TEXT_HASH) : sha2(prev.col(Columns.quote(text)), 256);
    Column prevKey = id == null ? prevHash : prev.col(Columns.quote(id)).cast("string");
    List<Column> prevCols =
        new ArrayList<>(List.of(prevKey.as(KEY + "_p"), prevHash.as(HASH + "_p")));
    for (StructField f : scoreFields) {
      prevCols.add(
          convert(prev.col(f.name()), prev.schema().apply(f.name()).dataType(), f)
              .as(PREFIX + f.name()));
    }
    Dataset<Row> previous =
        prev.select(prevCols.toArray(Column[]::new))
            .where(col(KEY + "_p").isNotNull())
            .dropDuplicates(KEY + "_p");
    Column inputText = input.col(Columns.quote(text));
    Column key = id == null ? sha2(inputText, 256) : input.col(Columns.quote(id)).cast("string");
    Dataset<Row> keyed = input.withColumn(KEY, key).withColumn(HASH, sha2(inputText, 256));
    Dataset<Row> joined =
        keyed.join(previous, keyed.col(KEY).equalTo(previous.col(KEY + "_p")), "left");
    String stamp = plan.spec().stamp();
    Column same =
        col(KEY + "_p")
            .isNotNull()
            .and(col(HASH).eqNullSafe(col(HASH + "_p")))
            .and(col(PREFIX + ScoreColumns.MODEL).equalTo(stamp));
    Column[] inputCols = Arrays.stream(cols).map(Columns::named).toArray(Column[]::new);
    Dataset<Row> rescore =
        joined
            .where(
                org.apache
                    .spark
                    .sql
                    .functions
                    .not(same)
                    .or(col(PREFIX + ScoreColumns.MODEL).isNull()))
            .select(inputCols);
    List<Column> carryCols = new ArrayList<>(Arrays.asList(inputCols));
    for (StructField f : scoreFields) {
      carryCols.add(col(PREFIX + f.name()).as(f.name()));
    }
    Dataset<Row> carried = joined.where(same).select(carryCols.toArray(Column[]::new));
    return new Rerun(rescore, carried, cols);
  }

  private static Column convert(
      Column c, org.apache.spark.sql.types.DataType from, StructField to) {
    if (to.dataType() instanceof ArrayType && from.equals(DataTypes.StringType)) {
      return from_json(c, to.dataType()); // csv output writes arrays as JSON strings
    }
    return c.cast(to.dataType());
  }

  /**
   * @return the rows to score, with the input's columns
   */
  Dataset<Row> toScore() {
    return toScore;
  }

  /**
   * @return {@code scored} (the scored rows) with the carried rows added
   */
  Dataset<Row> combine(Dataset<Row> scored) {
    return carried == null ? scored : scored.unionByName(carried);
  }

  /**
   * @param documents the documents of the output
   * @return the summary's {@code previous: {carried, scored}} (after the output is written), or
   *     null without {@code --previous}
   */
  ScoreSummary.Previous describe(long documents) {
    if (carried == null) {
      return null;
    }
    long c = carried.count();
    return new ScoreSummary.Previous(c, documents - c);
  }
}
