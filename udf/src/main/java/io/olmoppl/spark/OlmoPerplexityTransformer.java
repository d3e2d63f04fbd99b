package io.olmoppl.spark;

import io.olmoppl.scoring.ScoringOptions;
import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.param.ParamMap;
import org.apache.spark.ml.util.DefaultParamsReadable;
import org.apache.spark.ml.util.DefaultParamsWritable;
import org.apache.spark.ml.util.Identifiable;
import org.apache.spark.ml.util.MLReader;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.StructType;

/**
 * Spark ML {@link org.apache.spark.ml.Transformer}: appends the per-document perplexity columns
 * ({@link ScoreColumns}) to a dataset, by {@link OlmoPerplexity#score} (the job's partition
 * function, batched, on the executor-cached model). Usable in a {@link
 * org.apache.spark.ml.Pipeline}; saved with {@code write().save(path)} and loaded with {@link
 * #load} (params only: the checkpoint stays where {@code modelPath} points).
 *
 * <pre>{@code
 * Dataset<Row> scored = new OlmoPerplexityTransformer()
 *     .setModelPath("/models/OLMo-1B-hf").setInputCol("text").setWindow(2048)
 *     .transform(df);
 * }</pre>
 *
 * <p>Params mirror the CLI options of {@code olmo-ppl score} and are validated when set: an invalid
 * value fails at once with an {@link IllegalArgumentException} naming the param and its allowed
 * values. {@code modelPath} is required; {@code window} and {@code stride} are optional (the
 * model's positions and the window).
 */
public class OlmoPerplexityTransformer extends OlmoPerplexityParams
    implements DefaultParamsWritable {
  private static final long serialVersionUID = 1L;

  public OlmoPerplexityTransformer() {
    this(Identifiable.randomUID("olmoPerplexity"));
  }

  /**
   * @param uid the stage's unique id (used by {@link #copy} and by loading)
   */
  public OlmoPerplexityTransformer(String uid) {
    super(uid);
  }

  // ---- setters (validate at once) ----

  public OlmoPerplexityTransformer setInputCol(String v) {
    return put(inputCol, v);
  }

  public OlmoPerplexityTransformer setModelPath(String v) {
    return put(modelPath, v);
  }

  public OlmoPerplexityTransformer setWindow(int v) {
    return put(window, v);
  }

  public OlmoPerplexityTransformer setStride(int v) {
    return put(stride, v);
  }

  public OlmoPerplexityTransformer setBos(String v) {
    return put(bos, v);
  }

  public OlmoPerplexityTransformer setTying(String v) {
    return put(tying, v);
  }

  public OlmoPerplexityTransformer setPrecision(String v) {
    return put(precision, v);
  }

  public OlmoPerplexityTransformer setBatchTokens(int v) {
    return put(batchTokens, v);
  }

  public OlmoPerplexityTransformer setTokenLogprobs(boolean v) {
    return put(tokenLogprobs, v);
  }

  public OlmoPerplexityTransformer setAllowLongWindow(boolean v) {
    return put(allowLongWindow, v);
  }

  public OlmoPerplexityTransformer setDevice(String v) {
    return put(device, v);
  }

  /**
   * Sets a param; Spark's own message ("... parameter window given invalid value 0.") gets the
   * allowed values.
   */
  private <T> OlmoPerplexityTransformer put(Param<T> p, T v) {
    try {
      set(p, v);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(e.getMessage() + " " + p.name() + ": " + p.doc(), e);
    }
    return this;
  }

  /**
   * Checks the params and the input column (present, string) without opening the checkpoint.
   *
   * @return the input schema with the score columns appended
   */
  @Override
  public StructType transformSchema(StructType schema) {
    if (getModelPath() == null) {
      throw new IllegalArgumentException(
          uid()
              + ": param modelPath is required (the checkpoint directory); set it"
              + " with setModelPath(...)");
    }
    ScoringOptions options;
    try {
      options = scoringOptions();
    } catch (IllegalArgumentException e) { // stride above window: each valid alone
      throw new IllegalArgumentException(uid() + ": invalid params: " + e.getMessage(), e);
    }
    try {
      OlmoPerplexity.textColumnIndex(schema, getInputCol(), "inputCol");
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(uid() + ": " + e.getMessage(), e);
    }
    return ScoreColumns.outputSchema(schema, options.tokenLogprobs());
  }

  /**
   * Validates on the driver (params, column, checkpoint), then scores with {@link
   * OlmoPerplexity#score}.
   */
  @Override
  public Dataset<Row> transform(Dataset<?> dataset) {
    transformSchema(dataset.schema());
    return OlmoPerplexity.score(dataset.toDF(), getModelPath(), getInputCol(), scoringOptions());
  }

  @Override
  public OlmoPerplexityTransformer copy(ParamMap extra) {
    return defaultCopy(extra);
  }

  /**
   * @return a reader for transformers written by {@code write().save(path)}
   */
  public static MLReader<OlmoPerplexityTransformer> read() {
    return new DefaultParamsReadable<OlmoPerplexityTransformer>() {}.read();
  }

  /**
   * @return the transformer {@code write().save(path)} wrote to {@code path}
   */
  public static OlmoPerplexityTransformer load(String path) {
    return read().load(path);
  }
}
