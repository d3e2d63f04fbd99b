package io.olmoppl.spark;

import io.olmoppl.checkpoint.Checkpoint;
import io.olmoppl.scoring.PerplexityScorer;
import io.olmoppl.scoring.ScoringOptions;
import java.nio.file.Path;
import java.util.Arrays;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * DataFrame API: appends per-document perplexity columns to a dataset, with the same partition function the job uses.
 *
 * <pre>{@code
 * Dataset<Row> scored = OlmoPerplexity.score(df, "/models/OLMo-1B-hf", "text", ScoringOptions.defaults());
 * }</pre>
 */
public final class OlmoPerplexity {
  private OlmoPerplexity() {}

  /** A validated scoring plan: the checkpoint as the driver saw it and what tasks need. */
  public record Plan(Checkpoint checkpoint, ModelSpec spec, int textIndex, StructType outputSchema, int window,
      int stride, long prefix) {}

  /**
   * Validates everything that can be checked on the driver: the checkpoint (strict loading and tying rule), the text
   * column (present, string), the options against the model (window vs positions).
   *
   * @throws io.olmoppl.checkpoint.CheckpointException or IllegalArgumentException with what, why and how to fix
   */
  public static Plan plan(StructType schema, String modelPath, String textColumn, ScoringOptions options) {
    Checkpoint ckpt = Checkpoint.open(Path.of(modelPath), options.tying());
    int idx = Arrays.asList(schema.fieldNames()).indexOf(textColumn);
    if (idx < 0) {
      throw new IllegalArgumentException("the input has no column '" + textColumn + "' (columns: "
          + String.join(", ", schema.fieldNames()) + "). Name the column that holds the documents with"
          + " --text-column.");
    }
    StructField f = schema.fields()[idx];
    if (!f.dataType().equals(DataTypes.StringType)) {
      throw new IllegalArgumentException("the text column '" + textColumn + "' has type "
          + f.dataType().simpleString() + ", not string. Point --text-column at a string column, or cast it first.");
    }
    int window = PerplexityScorer.resolveWindow(ckpt.config(), options);
    int stride = options.stride() == null ? window : options.stride();
    if (stride > window) {
      throw new IllegalArgumentException("--stride " + stride + " is larger than the window " + window
          + "; pass a stride between 1 and the window");
    }
    ModelSpec spec = new ModelSpec(Path.of(modelPath).toAbsolutePath().toString(), ckpt.fingerprint(), options);
    return new Plan(ckpt, spec, idx, ScoreColumns.outputSchema(schema, options.tokenLogprobs()), window, stride,
        PerplexityScorer.prefixToken(ckpt.config(), options.bos()));
  }

  /**
   * Scores {@code df}: every input column is kept and the {@code ppl_*} columns are appended; one output row per input
   * row.
   *
   * @param df the documents
   * @param modelPath checkpoint directory, visible to every executor at the same path
   * @param textColumn the string column holding the documents
   * @param options scoring options
   */
  public static Dataset<Row> score(Dataset<Row> df, String modelPath, String textColumn, ScoringOptions options) {
    Plan plan = plan(df.schema(), modelPath, textColumn, options);
    return apply(df, plan, null);
  }

  /** Runs a validated plan. */
  public static Dataset<Row> apply(Dataset<Row> df, Plan plan, ScoreMetrics metrics) {
    return df.mapPartitions(new ScorePartitionFunction(plan.spec(), plan.textIndex(), metrics),
        Encoders.row(plan.outputSchema()));
  }

}
