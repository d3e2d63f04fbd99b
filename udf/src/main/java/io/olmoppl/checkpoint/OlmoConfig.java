package io.olmoppl.checkpoint;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;

/**
 * A checkpoint's {@code config.json}, normalised to one architecture description for the three
 * layouts, and its consistency checks. Which layout a config is, and its keys and defaults, are the
 * {@link CheckpointLayout}'s (hf_olmo's defaults differ from transformers': e.g. {@code
 * weight_tying} defaults to true there and {@code tie_word_embeddings} to false here); this record
 * holds the result and the JSON accessors the layouts read with.
 *
 * @param intermediateSize the gated MLP width I (hf_olmo's fused {@code ff_proj} is 2I rows; each
 *     expert's width in a mixture of experts)
 * @param experts the mixture-of-experts facts, or null for a dense MLP
 * @param vocabRows rows of the embedding and of the output matrix (the logit width, padding rows
 *     included)
 * @param tied whether the config ties the output projection to the embedding
 * @param tyingKey the config key that says so ({@code weight_tying} or {@code tie_word_embeddings})
 * @param tyingKeyPresent false when the key is absent and {@link #tied} is the layout's default
 * @param attention each layer's attention kind, the sliding window and the rotary embedding per
 *     kind
 */
public record OlmoConfig(
    CheckpointLayout layout,
    int hiddenSize,
    int numHiddenLayers,
    int numAttentionHeads,
    int numKeyValueHeads,
    int intermediateSize,
    Experts experts,
    int vocabRows,
    int maxPositionEmbeddings,
    double ropeTheta,
    AttentionSpec attention,
    Double clipQkv,
    NormType normType,
    double normEps,
    boolean normAffine,
    boolean normBias,
    boolean qkNorm,
    boolean normAfter,
    boolean attentionBias,
    boolean mlpBias,
    boolean scaleLogits,
    boolean tied,
    String tyingKey,
    boolean tyingKeyPresent,
    int eosTokenId,
    Integer bosTokenId,
    List<String> warnings)
    implements Serializable {

  /** LayerNorm (mean and variance) or RMSNorm. */
  public enum NormType {
    LAYER_NORM,
    RMS_NORM
  }

  /**
   * Largest {@code max_position_embeddings} accepted: 2^24 positions, far above any released model;
   * a larger value is a corrupt config (the window the scorer can run is bounded separately by
   * memory).
   */
  public static final int MAX_POSITIONS = 1 << 24;

  /**
   * Largest layer count accepted (released OLMo models have at most 80); a larger value is a
   * corrupt config.
   */
  public static final int MAX_LAYERS = 1 << 12;

  public OlmoConfig {
    require(
        hiddenSize > 0 && numHiddenLayers > 0 && numAttentionHeads > 0 && numKeyValueHeads > 0,
        "hidden size, layers, heads and kv heads must be positive");
    require(
        attention.explicitHeadDim() > 0 || hiddenSize % numAttentionHeads == 0,
        "hidden size "
            + hiddenSize
            + " is not divisible by the number of heads "
            + numAttentionHeads);
    require(
        numAttentionHeads % numKeyValueHeads == 0,
        "the number of heads "
            + numAttentionHeads
            + " is not a multiple of the kv heads "
            + numKeyValueHeads);
    require(
        headDimOf(hiddenSize, numAttentionHeads, attention) % 2 == 0
            && headDimOf(hiddenSize, numAttentionHeads, attention) > 0,
        "head dim "
            + headDimOf(hiddenSize, numAttentionHeads, attention)
            + " is odd; rotary embeddings need an even head dim");
    require(
        intermediateSize > 0 && vocabRows > 0 && maxPositionEmbeddings > 0,
        "intermediate size, vocabulary and max positions must be positive");
    require(
        numHiddenLayers <= MAX_LAYERS,
        "the number of layers " + numHiddenLayers + " is above " + MAX_LAYERS);
    require(
        attention.kinds().size() == numHiddenLayers,
        "layer_types names "
            + attention.kinds().size()
            + " layers, the config has "
            + numHiddenLayers);
    require(
        attention.count(AttentionKind.SLIDING) == 0 || attention.slidingWindow() > 0,
        "sliding_window " + attention.slidingWindow() + " must be at least 1");
    require(
        maxPositionEmbeddings <= MAX_POSITIONS,
        "max positions "
            + maxPositionEmbeddings
            + " is above "
            + MAX_POSITIONS
            + "; no released model has that many (the config is corrupt)");
    require(
        Double.isFinite(ropeTheta) && ropeTheta > 0,
        "rope_theta "
            + ropeTheta
            + " must be a positive number"
            + " (rotary frequencies are rope_theta^(-2i/D); a value <= 0 gives NaN scores)");
    require(
        Double.isFinite(normEps) && normEps > 0 && normEps < 1,
        "the norm epsilon " + normEps + " must be in (0, 1)");
    require(
        clipQkv == null || (Double.isFinite(clipQkv) && clipQkv > 0),
        "clip_qkv " + clipQkv + " must be a positive number or null");
    require(
        eosTokenId >= 0 && eosTokenId < vocabRows,
        "eos_token_id " + eosTokenId + " is not a row of the " + vocabRows + "-row embedding");
    require(
        bosTokenId == null || (bosTokenId >= 0 && bosTokenId < vocabRows),
        "bos_token_id " + bosTokenId + " is not a row of the " + vocabRows + "-row embedding");
    warnings = List.copyOf(warnings);
  }

  /**
   * @return head dim D: the config's {@code head_dim}, else hidden / heads
   */
  public int headDim() {
    return headDimOf(hiddenSize, numAttentionHeads, attention);
  }

  private static int headDimOf(int hidden, int heads, AttentionSpec a) {
    return a.explicitHeadDim() > 0 ? a.explicitHeadDim() : hidden / heads;
  }

  /**
   * @return width of the Q projection = heads * D (the hidden size unless {@code head_dim} says
   *     otherwise)
   */
  public int qDim() {
    return numAttentionHeads * headDim();
  }

  /**
   * @return width of the K and V projections = kv heads * D
   */
  public int kvDim() {
    return numKeyValueHeads * headDim();
  }

  /**
   * Parses and normalises a config. Unsupported architecture options are refused here, before any
   * weight is read.
   *
   * @param json the parsed {@code config.json}
   * @param where the file, for messages
   */
  public static OlmoConfig fromJson(JsonObject json, String where) {
    try {
      return CheckpointLayout.of(json, where).parse(json, where);
    } catch (CheckpointException e) {
      throw e;
    } catch (RuntimeException e) {
      throw new CheckpointException(
          where
              + " has a value of the wrong type ("
              + e.getMessage()
              + "). Numbers must be"
              + " JSON numbers and flags JSON booleans, as in the model's original config.json.",
          e);
    }
  }

  /**
   * @return a copy with a different EOS id and one more warning
   */
  public OlmoConfig withEos(int eos, String warning) {
    List<String> w = new ArrayList<>(warnings);
    w.add(warning);
    return new OlmoConfig(
        layout,
        hiddenSize,
        numHiddenLayers,
        numAttentionHeads,
        numKeyValueHeads,
        intermediateSize,
        experts,
        vocabRows,
        maxPositionEmbeddings,
        ropeTheta,
        attention,
        clipQkv,
        normType,
        normEps,
        normAffine,
        normBias,
        qkNorm,
        normAfter,
        attentionBias,
        mlpBias,
        scaleLogits,
        tied,
        tyingKey,
        tyingKeyPresent,
        eos,
        bosTokenId,
        w);
  }

  static void require(boolean ok, String msg) {
    if (!ok) {
      throw new CheckpointException(
          "invalid OLMo config: " + msg + ". Use the model's own config.json.");
    }
  }

  static boolean present(JsonObject j, String k) {
    JsonElement e = j.get(k);
    return e != null && !e.isJsonNull();
  }

  static int integer(JsonObject j, String k, int def) {
    Integer v = optInt(j, k);
    return v != null ? v : def;
  }

  static Integer optInt(JsonObject j, String k) {
    if (!present(j, k)) {
      return null;
    }
    JsonElement e = j.get(k);
    java.math.BigDecimal v = number(j, k).stripTrailingZeros();
    try {
      if (v.scale() > 0
          || v.precision() - v.scale() > 10) { // a fraction, or more digits than an int has
        throw new ArithmeticException();
      }
      return v.intValueExact();
    } catch (ArithmeticException x) {
      throw new CheckpointException(
          "config key "
              + k
              + " is "
              + e
              + ", not a whole number between "
              + Integer.MIN_VALUE
              + " and "
              + Integer.MAX_VALUE
              + ". Restore the value from the model's original"
              + " config.json.");
    }
  }

  private static java.math.BigDecimal number(JsonObject j, String k) {
    JsonElement e = j.get(k);
    if (e.isJsonPrimitive() && e.getAsJsonPrimitive().isNumber()) {
      try {
        return new java.math.BigDecimal(e.getAsJsonPrimitive().getAsString());
      } catch (NumberFormatException x) {
        // NaN, Infinity (lenient JSON): not a number here
      }
    }
    throw new CheckpointException(
        "config key "
            + k
            + " is "
            + e
            + ", not a finite number. Restore the value from"
            + " the model's original config.json.");
  }

  static double dbl(JsonObject j, String k, double def) {
    Double v = optDouble(j, k);
    return v != null ? v : def;
  }

  static Double optDouble(JsonObject j, String k) {
    if (!present(j, k)) {
      return null;
    }
    double v = number(j, k).doubleValue();
    if (!Double.isFinite(v)) {
      throw new CheckpointException(
          "config key "
              + k
              + " is "
              + j.get(k)
              + ", too large for a double. Restore the"
              + " value from the model's original config.json.");
    }
    return v;
  }

  static boolean bool(JsonObject j, String k, boolean def) {
    return present(j, k) ? j.get(k).getAsBoolean() : def;
  }

  static String str(JsonObject j, String k, String def) {
    return present(j, k) ? j.get(k).getAsString() : def;
  }
}
