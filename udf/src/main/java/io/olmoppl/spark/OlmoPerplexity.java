package io.olmoppl.spark;

import io.olmoppl.checkpoint.Checkpoint;
import io.olmoppl.scoring.PerplexityScorer;
import io.olmoppl.scoring.ScoringOptions;
import io.olmoppl.checkpoint.Manifest;
import java.nio.file.Path;
import java.util.Arrays;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.SparkSession;
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

  /** Default largest checkpoint that {@code --distribution auto} broadcasts: 4 GiB of weights. */
  public static final long BROADCAST_MAX_BYTES_DEFAULT = 4L << 30;

  /**
   * How the weights reach executors.
   *
   * @param mode {@code broadcast}: the driver reads the weights once and broadcasts them; {@code files}: executors
   *     read the checkpoint path themselves; {@code auto}: broadcast up to {@code broadcastMaxBytes}, files above
   * @param broadcastMaxBytes the {@code auto} threshold
   */
  public record Distribution(String mode, long broadcastMaxBytes) implements java.io.Serializable {
    public Distribution {
      if (!java.util.List.of("auto", "files", "broadcast").contains(mode)) {
        throw new IllegalArgumentException("--distribution must be auto, files or broadcast, not '" + mode + "'");
      }
    }

    public static Distribution auto() {
      return new Distribution("auto", BROADCAST_MAX_BYTES_DEFAULT);
    }

    boolean broadcast(long weightBytes) {
      return mode.equals("broadcast") || (mode.equals("auto") && weightBytes <= broadcastMaxBytes);
    }
  }

  /** A validated scoring plan: the checkpoint as the driver saw it and what tasks need. */
  public record Plan(Checkpoint checkpoint, ModelSpec spec, int textIndex, StructType outputSchema, int window,
      int stride, long prefix) {
    /** @return weight bytes the driver broadcast (0 in files mode) */
    public long broadcastBytes() {
      return spec.weights() == null ? 0 : spec.weights().bytes();
    }

    /** Frees the broadcast manifest and weights on executors and driver (after the results are written). */
    public void release() {
      if (spec.weights() != null) {
        spec.weights().destroy();
      }
      spec.manifest().destroy();
    }
  }

  /**
   * Validates everything that can be checked on the driver: the checkpoint (strict loading and tying rule), the text
   * column (present, string), the options against the model (window vs positions).
   *
   * @throws io.olmoppl.checkpoint.CheckpointException or IllegalArgumentException with what, why and how to fix
   */
  public static Plan plan(SparkSession spark, StructType schema, String modelPath, String textColumn,
      ScoringOptions options, Distribution distribution) {
    Checkpoint ckpt = Checkpoint.open(Path.of(modelPath.startsWith("file:") ? java.net.URI.create(modelPath).getPath()
        : modelPath), options.tying());
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
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    Manifest manifest = Manifest.of(ckpt);
    WeightsBroadcast weights = distribution.broadcast(ckpt.uniqueWeightBytes())
        ? WeightsBroadcast.create(jsc, ckpt, manifest, WeightsBroadcast.BLOCK_BYTES_DEFAULT) : null;
    String path = modelPath.contains(":") ? modelPath : Path.of(modelPath).toAbsolutePath().toString();
    ModelSpec spec = new ModelSpec(path, ckpt.fingerprint(), jsc.broadcast(manifest), weights, options);
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
    Plan plan = plan(df.sparkSession(), df.schema(), modelPath, textColumn, options, Distribution.auto());
    return apply(df, plan, null);
  }

  /** Runs a validated plan. */
  public static Dataset<Row> apply(Dataset<Row> df, Plan plan, ScoreMetrics metrics) {
    return df.mapPartitions(new ScorePartitionFunction(plan.spec(), plan.textIndex(), metrics),
        Encoders.row(plan.outputSchema()));
  }

}
