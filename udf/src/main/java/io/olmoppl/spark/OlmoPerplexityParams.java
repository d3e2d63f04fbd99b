package io.olmoppl.spark;

import io.olmoppl.checkpoint.TyingRule;
import io.olmoppl.model.Precision;
import io.olmoppl.scoring.Bos;
import io.olmoppl.scoring.DeviceSetting;
import io.olmoppl.scoring.ScoringOptions;
import java.io.Serializable;
import java.util.Arrays;
import java.util.List;
import java.util.function.Function;
import org.apache.spark.ml.Transformer;
import org.apache.spark.ml.param.BooleanParam;
import org.apache.spark.ml.param.IntParam;
import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.param.ParamValidators;
import scala.runtime.AbstractFunction1;

/**
 * The params of {@link OlmoPerplexityTransformer}: typed, documented, validated when set, with the
 * defaults of {@link ScoringOptions#defaults()} and the allowed values of the options' enums; and
 * {@link #scoringOptions()}, the options they give. As Spark ML's own {@code *Params} traits, kept
 * apart from what the stage does with them.
 */
public abstract class OlmoPerplexityParams extends Transformer {
  private static final long serialVersionUID = 1L;

  private final String uid;
  final Param<String> inputCol;
  final Param<String> modelPath;
  final IntParam window;
  final IntParam stride;
  final Param<String> bos;
  final Param<String> tying;
  final Param<String> precision;
  final IntParam batchTokens;
  final BooleanParam tokenLogprobs;
  final BooleanParam allowLongWindow;
  final Param<String> device;

  /**
   * @param uid the stage's unique id (used by {@link #copy} and by loading)
   */
  protected OlmoPerplexityParams(String uid) {
    this.uid = uid; // before the params: a Param reads its parent's uid
    ScoringOptions d = ScoringOptions.defaults();
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
    bos = choice("bos", "prefix token", Bos.values(), Bos::id, d.bos());
    tying = choice("tying", "weight tying rule", TyingRule.values(), TyingRule::id, d.tying());
    precision =
        choice("precision", "matmul precision", Precision.values(), Precision::id, d.precision());
    batchTokens =
        new IntParam(
            this,
            "batchTokens",
            "padded tokens (B x T) per forward batch, >= 1 (default: " + d.batchTokens() + ")",
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
        choice("device", "engine device", DeviceSetting.values(), DeviceSetting::id, d.device());
    setDefault(inputCol, "text");
    setDefault(bos, d.bos().id());
    setDefault(tying, d.tying().id());
    setDefault(precision, d.precision().id());
    setDefault(batchTokens, d.batchTokens());
    setDefault(tokenLogprobs, d.tokenLogprobs());
    setDefault(allowLongWindow, d.allowLongWindow());
    setDefault(device, d.device().id());
  }

  /**
   * A string param whose allowed values are an enum's ids, listed in its doc as "a, b or c
   * (default: a)".
   */
  private <E extends Enum<E>> Param<String> choice(
      String name, String what, E[] values, Function<E, String> id, E dflt) {
    List<String> ids = Arrays.stream(values).map(id).toList();
    String allowed =
        String.join(", ", ids.subList(0, ids.size() - 1)) + " or " + ids.get(ids.size() - 1);
    return new Param<>(
        this,
        name,
        what + ": " + allowed + " (default: " + id.apply(dflt) + ")",
        ParamValidators.inArray(ids));
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
        DeviceSetting.parse(getDevice()));
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
}
