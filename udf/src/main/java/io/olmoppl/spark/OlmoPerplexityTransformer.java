package io.olmoppl.spark;

import io.olmoppl.checkpoint.TyingRule;
import io.olmoppl.model.Precision;
import io.olmoppl.scoring.Bos;
import io.olmoppl.scoring.ScoringOptions;
import java.io.Serializable;
import java.util.List;
import org.apache.spark.ml.Transformer;
import org.apache.spark.ml.param.BooleanParam;
import org.apache.spark.ml.param.IntParam;
import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.param.ParamMap;
import org.apache.spark.ml.param.ParamValidators;
import org.apache.spark.ml.util.DefaultParamsReadable;
import org.apache.spark.ml.util.DefaultParamsWritable;
import org.apache.spark.ml.util.Identifiable;
import org.apache.spark.ml.util.MLReader;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.StructType;
import scala.runtime.AbstractFunction1;

/**
 * Spark ML {@link Transformer}: appends the per-document perplexity columns ({@link ScoreColumns})
 * to a dataset, by {@link OlmoPerplexity#score} (the job's partition function, batched, on the
 * executor-cached model). Usable in a {@link org.apache.spark.ml.Pipeline}; saved with {@code
 * write().save(path)} and loaded with {@link #load} (params only: the checkpoint stays where {@code
 * modelPath} points).
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
public class OlmoPerplexityTransformer extends Transformer implements DefaultParamsWritable {
  private static final long serialVersionUID = 1L;

  private final String uid;
  private final Param<String> inputCol;
  private final Param<String> modelPath;
  private final IntParam window;
  private final IntParam stride;
  private final Param<String> bos;
  private final Param<String> tying;
  private final Param<String> precision;
  private final IntParam batchTokens;
  private final BooleanParam tokenLogprobs;
  private final BooleanParam allowLongWindow;
  private final Param<String> device;

  public OlmoPerplexityTransformer() {
    this(Identifiable.randomUID("olmoPerplexity"));
  }

  /**
   * @param uid the stage's unique id (used by {@link #copy} and by loading)
   */
  public OlmoPerplexityTransformer(String uid) {
    this.uid = uid; // before the params: a Param reads its parent's uid
    inputCol =
        new Param<>(
            this,
            "inputCol",
            "string column holding the documents (default: text)",
            new NonBlank());
    modelPath =
        new Param<>(
            this,
            "modelPath",
            "checkpoint directory, visible to every executor at the same path" + " (required)",
            new NonBlank());
    window =
        new IntParam(
            this,
            "window",
            "tokens per forward pass, >= 1 (default: the model's positions)",
            ParamValidators.gtEq(1));
    stride =
        new IntParam(
            this,
            "stride",
            "new targets per window after the first, 1..window (default: window)",
            ParamValidators.gtEq(1));
    bos =
        new Param<>(
            this,
            "bos",
            "prefix token: auto, eos or none (default: auto)",
            ParamValidators.inArray(List.of("auto", "eos", "none")));
    tying =
        new Param<>(
            this,
            "tying",
            "weight tying rule: strict, config or checkpoint (default: strict)",
            ParamValidators.inArray(List.of("strict", "config", "checkpoint")));
    precision =
        new Param<>(
            this,
            "precision",
            "matmul precision: fp32 or fp16 (default: fp32)",
            ParamValidators.inArray(List.of("fp32", "fp16")));
    batchTokens =
        new IntParam(
            this,
            "batchTokens",
            "padded tokens (B x T) per forward batch, >= 1 (default: "
                + ScoringOptions.BATCH_TOKENS_DEFAULT
                + ")",
            ParamValidators.gtEq(1));
    tokenLogprobs =
        new BooleanParam(
            this, "tokenLogprobs", "append " + ScoreColumns.TOKEN_LOGPROBS + " (default: false)");
    allowLongWindow =
        new BooleanParam(
            this,
            "allowLongWindow",
            "allow a window above the model's positions" + " (default: false)");
    device =
        new Param<>(
            this,
            "device",
            "engine device: auto, cpu or gpu (default: auto)",
            ParamValidators.inArray(List.of("auto", "cpu", "gpu")));
    ScoringOptions d = ScoringOptions.defaults();
    setDefault(inputCol, "text");
    setDefault(bos, d.bos().id());
    setDefault(tying, d.tying().id());
    setDefault(precision, d.precision().id());
    setDefault(batchTokens, d.batchTokens());
    setDefault(tokenLogprobs, d.tokenLogprobs());
    setDefault(allowLongWindow, d.allowLongWindow());
    setDefault(device, d.device());
  }

  @Override
  public String uid() {
    return uid;
  }

  // ---- params (public no-arg accessors: Spark ML discovers params by reflection) ----

  public Param<String> inputCol() {
    return inputCol;
  }

  public Param<String> modelPath() {
    return modelPath;
  }

  public IntParam window() {
    return window;
  }

  public IntParam stride() {
    return stride;
  }

  public Param<String> bos() {
    return bos;
  }

  public Param<String> tying() {
    return tying;
  }

  public Param<String> precision() {
    return precision;
  }

  public IntParam batchTokens() {
    return batchTokens;
  }

  public BooleanParam tokenLogprobs() {
    return tokenLogprobs;
  }

  public BooleanParam allowLongWindow() {
    return allowLongWindow;
  }

  public Param<String> device() {
    return device;
  }

  // ---- getters ----

  public String getInputCol() {
    return getOrDefault(inputCol);
  }

  /**
   * @return the checkpoint path, or null when not set yet
   */
  public String getModelPath() {
    return isDefined(modelPath) ? getOrDefault(modelPath) : null;
  }

  /**
   * @return the window, or null for the model's positions
   */
  public Integer getWindow() {
    return isDefined(window) ? (Integer) getOrDefault(window) : null;
  }

  /**
   * @return the stride, or null for the window
   */
  public Integer getStride() {
    return isDefined(stride) ? (Integer) getOrDefault(stride) : null;
  }

  public String getBos() {
    return getOrDefault(bos);
  }

  public String getTying() {
    return getOrDefault(tying);
  }

  public String getPrecision() {
    return getOrDefault(precision);
  }

  public int getBatchTokens() {
    return (Integer) getOrDefault(batchTokens);
  }

  public boolean getTokenLogprobs() {
    return (Boolean) getOrDefault(tokenLogprobs);
  }

  public boolean getAllowLongWindow() {
    return (Boolean) getOrDefault(allowLongWindow);
  }

  public String getDevice() {
    return getOrDefault(device);
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

  // ---- Transformer ----

  /**
   * @return the scoring options these params give
   * @throws IllegalArgumentException when {@code stride} exceeds {@code window}
   */
  public ScoringOptions scoringOptions() {
    return new ScoringOptions(
        Bos.parse(getBos()),
        getWindow(),
        getStride(),
        getBatchTokens(),
        getTokenLogprobs(),
        getAllowLongWindow(),
        TyingRule.parse(getTying()),
        Precision.parse(getPrecision()),
        getDevice());
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
          uid
              + ": param modelPath is required (the checkpoint directory); set it"
              + " with setModelPath(...)");
    }
    ScoringOptions options;
    try {
      options = scoringOptions();
    } catch (IllegalArgumentException e) { // stride above window: each valid alone
      throw new IllegalArgumentException(uid + ": invalid params: " + e.getMessage(), e);
    }
    try {
      OlmoPerplexity.textColumnIndex(schema, getInputCol(), "inputCol");
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(uid + ": " + e.getMessage(), e);
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

  /** Validator of string params that must not be empty. */
  private static final class NonBlank extends AbstractFunction1<String, Object>
      implements Serializable {
    private static final long serialVersionUID = 1L;

    @Override
    public Object apply(String s) {
      return s != null && !s.isBlank();
    }
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
