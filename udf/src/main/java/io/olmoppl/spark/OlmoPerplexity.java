package io.olmoppl.spark;

import io.olmoppl.checkpoint.Checkpoint;
import io.olmoppl.checkpoint.Manifest;
import io.olmoppl.checkpoint.WeightScan;
import io.olmoppl.runtime.TorchEngine;
import io.olmoppl.scoring.DeviceSetting;
import io.olmoppl.scoring.PerplexityScorer;
import io.olmoppl.scoring.ScoringOptions;
import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.expressions.UserDefinedFunction;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * Spark APIs besides the CLI.
 *
 * <ul>
 *   <li>DataFrame: {@link #score} appends the per-document perplexity columns to a dataset, with
 *       the same partition function the job uses. This is the fast path: each task scores many
 *       documents per forward pass (windows sorted by length and packed up to {@code batchTokens}).
 *   <li>Spark ML: {@link OlmoPerplexityTransformer}, the same path behind typed, validated params.
 *   <li>SQL: {@link #register} makes a function returning the score columns as one struct, row at a
 *       time.
 * </ul>
 *
 * <pre>{@code
 * Dataset<Row> scored = OlmoPerplexity.score(df, "/models/OLMo-1B-hf", "text", ScoringOptions.defaults());
 *
 * OlmoPerplexity.register(spark, "olmo_perplexity", "/models/OLMo-1B-hf", ScoringOptions.defaults());
 * spark.sql("SELECT s.perplexity, s.ppl_status FROM (SELECT olmo_perplexity(text) AS s FROM docs)");
 * }</pre>
 */
public final class OlmoPerplexity {
  private OlmoPerplexity() {}

  /** Default largest checkpoint that distribution {@code auto} broadcasts: 4 GiB of weights. */
  public static final long BROADCAST_MAX_BYTES_DEFAULT = 4L << 30;

  /**
   * How the weights reach executors.
   *
   * @param mode {@code broadcast}: the driver reads the weights once and broadcasts them; {@code
   *     files}: executors read the checkpoint path themselves; {@code auto}: broadcast up to {@code
   *     broadcastMaxBytes}, files above
   * @param broadcastMaxBytes the {@code auto} threshold
   */
  public record Distribution(String mode, long broadcastMaxBytes) implements Serializable {
    public Distribution {
      if (!List.of("auto", "files", "broadcast").contains(mode)) {
        throw new IllegalArgumentException(
            "distribution must be auto, files or broadcast, not '" + mode + "'");
      }
    }

    public static Distribution auto() {
      return new Distribution("auto", BROADCAST_MAX_BYTES_DEFAULT);
    }

    /**
     * @param local whether the tasks run in the driver's JVM ({@code local[...]}), where
     *     broadcasting would only copy the weights within one process: {@code auto} then reads the
     *     files
     */
    boolean broadcast(long weightBytes, boolean local) {
      return mode.equals("broadcast")
          || (mode.equals("auto") && !local && weightBytes <= broadcastMaxBytes);
    }
  }

  /**
   * Broadcasts shared by the plans of one application: calling {@link #score} again with the same
   * checkpoint reuses them instead of broadcasting the weights again. They live until {@link
   * Plan#release()} or the session ends.
   */
  private static final Map<String, Shared> SHARED = new ConcurrentHashMap<>();

  private record Shared(Broadcast<Manifest> manifest, WeightsBroadcast weights) {}

  /** A validated scoring plan: the checkpoint as the driver saw it and what tasks need. */
  public record Plan(
      Checkpoint checkpoint,
      ModelSpec spec,
      int textIndex,
      StructType outputSchema,
      int window,
      int stride,
      long prefix,
      String sharedKey) {
    /**
     * @return weight bytes the driver broadcast (0 in files mode)
     */
    public long broadcastBytes() {
      return spec.weights() == null ? 0 : spec.weights().bytes();
    }

    /**
     * Frees the broadcast manifest and weights on executors and driver (after the results are
     * written).
     */
    public void release() {
      SHARED.remove(sharedKey);
      if (spec.weights() != null) {
        spec.weights().destroy();
      }
      spec.manifest().destroy();
    }
  }

  /**
   * Validates everything that can be checked on the driver: the checkpoint (strict loading and
   * tying rule), the text column (present, string), the options against the model (window vs
   * positions).
   *
   * @throws io.olmoppl.checkpoint.CheckpointException or IllegalArgumentException with what, why
   *     and how to fix
   */
  public static Plan plan(
      SparkSession spark,
      StructType schema,
      String modelPath,
      String textColumn,
      ScoringOptions options,
      Distribution distribution) {
    Checkpoint ckpt = Checkpoint.open(Localizer.localize(modelPath), options.tying());
    if (!spark.conf().get(SCAN_WEIGHTS, "true").equalsIgnoreCase("false")) {
      WeightScan.requireFinite(ckpt, SCAN_WEIGHTS + "=false");
    }
    if (options.device() == DeviceSetting.GPU
        && spark.sparkContext().isLocal()
        && TorchEngine.get().getGpuCount() == 0) {
      throw new IllegalArgumentException(
          "device gpu, but the engine sees no GPU on this machine, where local[...]"
              + " tasks run. Use device cpu or auto, or run where a CUDA GPU and the -Pcuda build are available.");
    }
    int idx = textColumnIndex(schema, textColumn, "textColumn");
    int window = PerplexityScorer.resolveWindow(ckpt.config(), options);
    int stride = PerplexityScorer.resolveStride(window, options);
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    boolean broadcast =
        distribution.broadcast(ckpt.uniqueWeightBytes(), spark.sparkContext().isLocal());
    String key =
        spark.sparkContext().applicationId()
            + "/"
            + ckpt.fingerprint()
            + "/"
            + options.tying().id()
            + "/"
            + broadcast;
    Shared shared =
        SHARED.computeIfAbsent(
            key,
            k -> {
              Manifest manifest = Manifest.of(ckpt);
              return new Shared(
                  jsc.broadcast(manifest),
                  broadcast
                      ? WeightsBroadcast.create(
                          jsc, ckpt, manifest, WeightsBroadcast.BLOCK_BYTES_DEFAULT)
                      : null);
            });
    Path local = Localizer.localPath(modelPath);
    String path = local == null ? modelPath : local.toAbsolutePath().toString();
    long prefix = PerplexityScorer.prefixToken(ckpt.config(), options.bos());
    ModelSpec spec =
        new ModelSpec(
            path,
            ckpt.fingerprint(),
            shared.manifest(),
            shared.weights(),
            options,
            stamp(ckpt, options, window, stride, prefix));
    return new Plan(
        ckpt,
        spec,
        idx,
        ScoreColumns.outputSchema(schema, options.tokenLogprobs()),
        window,
        stride,
        prefix,
        key);
  }

  /**
   * The Spark setting that turns off the driver's scan of the weights for NaN and infinite values
   * ({@code true} by default; the CLI's {@code --scan-weights}).
   */
  public static final String SCAN_WEIGHTS = "spark.olmoppl.scan-weights";

  /**
   * @return the row stamp {@code ppl_model}: the checkpoint fingerprint, then a hash of everything
   *     else that changes a score (the tying decision, precision, prefix token, window, stride);
   *     equal stamps mean comparable numbers
   */
  public static String stamp(
      Checkpoint ckpt, ScoringOptions o, int window, int stride, long prefix) {
    String settings =
        "tied="
            + ckpt.tying().tied()
            + "|output="
            + ckpt.tying().outputTensor()
            + "|precision="
            + o.precision().id()
            + "|prefix="
            + prefix
            + "|window="
            + window
            + "|stride="
            + stride;
    try {
      byte[] h =
          MessageDigest.getInstance("SHA-256").digest(settings.getBytes(StandardCharsets.UTF_8));
      return ckpt.fingerprint() + "-" + HexFormat.of().formatHex(h).substring(0, 8);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * The one check of the text column, for every entry point: it exists and holds strings.
   *
   * @param setting how the caller's user names the column setting, for the message ({@code
   *     textColumn}, {@code inputCol}, {@code --text-column})
   * @return the column's index in {@code schema}
   * @throws IllegalArgumentException naming the column, the input's columns or its type, and the
   *     setting
   */
  public static int textColumnIndex(StructType schema, String column, String setting) {
    if (schema.fields().length == 0) {
      throw new IllegalArgumentException(
          "the input is empty: it has no rows and no columns. Check the input path"
              + " (an empty file or a directory of empty files).");
    }
    int idx = Arrays.asList(schema.fieldNames()).indexOf(column);
    if (idx < 0) {
      throw new IllegalArgumentException(
          "the input has no column '"
              + column
              + "' (columns: "
              + String.join(", ", schema.fieldNames())
              + "). Set "
              + setting
              + " to the column that holds the documents.");
    }
    StructField f = schema.fields()[idx];
    if (!f.dataType().equals(DataTypes.StringType)) {
      throw new IllegalArgumentException(
          "the text column '"
              + column
              + "' ("
              + setting
              + ") has type "
              + f.dataType().simpleString()
              + ", not string. Set "
              + setting
              + " to a string column, or cast it first.");
    }
    return idx;
  }

  /**
   * Scores {@code df}: every input column is kept and the {@code ppl_*} columns are appended; one
   * output row per input row.
   *
   * @param df the documents
   * @param modelPath checkpoint directory, visible to every executor at the same path
   * @param textColumn the string column holding the documents
   * @param options scoring options
   */
  public static Dataset<Row> score(
      Dataset<Row> df, String modelPath, String textColumn, ScoringOptions options) {
    Plan plan =
        plan(df.sparkSession(), df.schema(), modelPath, textColumn, options, Distribution.auto());
    return apply(df, plan, null);
  }

  /**
   * Registers a SQL function {@code name(text)} returning a struct with exactly the columns {@link
   * #score} appends ({@link ScoreColumns#fields}: {@code ppl_tokens}, {@code ppl_nll}, {@code
   * perplexity}, ..., {@code ppl_model}, and {@code ppl_token_logprobs} when {@code
   * options.tokenLogprobs()}); a null text gives status {@code null_text}.
   *
   * <pre>{@code
   * OlmoPerplexity.register(spark, "olmo_perplexity", "/models/OLMo-1B-hf", ScoringOptions.defaults());
   * spark.sql("SELECT olmo_perplexity(text).perplexity FROM docs");
   * }</pre>
   *
   * <p>The checkpoint and options are validated now, on the driver, as {@link #plan} does (the
   * broadcast manifest and weights live as long as the session). Executors use the same per-JVM
   * model cache as {@link #score}, but a SQL function is called once per row, so each document is
   * its own forward batch: <b>{@link #score} (or {@link OlmoPerplexityTransformer}) is the fast
   * path</b>, packing many documents into each forward pass. Select several fields from one call
   * ({@code SELECT s.* FROM (SELECT olmo_perplexity(text) AS s FROM docs)}) rather than calling the
   * function once per field.
   *
   * @param spark the session to register in
   * @param name the SQL function name
   * @param modelPath checkpoint directory, visible to every executor at the same path
   * @param options scoring options
   * @return the registered function (also callable in the DataFrame API: {@code
   *     df.select(f.apply(col("text")))})
   * @throws io.olmoppl.checkpoint.CheckpointException or IllegalArgumentException with what, why
   *     and how to fix
   */
  public static UserDefinedFunction register(
      SparkSession spark, String name, String modelPath, ScoringOptions options) {
    StructType textOnly = new StructType().add("text", DataTypes.StringType);
    Plan plan = plan(spark, textOnly, modelPath, "text", options, Distribution.auto());
    StructType result = DataTypes.createStructType(ScoreColumns.fields(options.tokenLogprobs()));
    // never null (a null text gives a struct with status null_text), so the fields keep the job's
    // nullability
    return spark
        .udf()
        .register(
            name,
            org.apache.spark.sql.functions.udf(new ScoreUdf(plan.spec()), result).asNonNullable());
  }

  /** Runs a validated plan. */
  public static Dataset<Row> apply(Dataset<Row> df, Plan plan, ScoreMetrics metrics) {
    return df.mapPartitions(
        new ScorePartitionFunction(plan.spec(), plan.textIndex(), metrics),
        Encoders.row(plan.outputSchema()));
  }
}
