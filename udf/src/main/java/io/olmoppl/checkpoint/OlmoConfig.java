package io.olmoppl.checkpoint;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;

/**
 * A checkpoint's {@code config.json}, normalised to one architecture description for the three layouts, and its
 * consistency checks. Which layout a config is, and its keys and defaults, are the {@link CheckpointLayout}'s (hf_olmo's
 * defaults differ from transformers': e.g. {@code weight_tying} defaults to true there and {@code
 * tie_word_embeddings} to false here); this record holds the result and the JSON accessors the layouts read with.
 *
 * @param intermediateSize the gated MLP width I (hf_olmo's fused {@code ff_proj} is 2I rows)
 * @param vocabRows rows of the embedding and of the output matrix (the logit width, padding rows included)
 * @param tied whether the config ties the output projection to the embedding
 * @param tyingKey the config key that says so ({@code weight_tying} or {@code tie_word_embeddings})
 * @param tyingKeyPresent false when the key is absent and {@link #tied} is the layout's default
 */
public record OlmoConfig(
    CheckpointLayout layout,
    int hiddenSize,
    int numHiddenLayers,
    int numAttentionHeads,
    int numKeyValueHeads,
    int intermediateSize,
    int vocabRows,
    int maxPositionEmbeddings,
    double ropeTheta,
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
    List<String> warnings) implements Serializable {

  /** LayerNorm (mean and variance) or RMSNorm. */
  public enum NormType {
    LAYER_NORM,
    RMS_NORM
  }

  public OlmoConfig {
    require(hiddenSize > 0 && numHiddenLayers > 0 && numAttentionHeads > 0 && numKeyValueHeads > 0,
        "hidden size, layers, heads and kv heads must be positive");
    require(hiddenSize % numAttentionHeads == 0,
        "hidden size " + hiddenSize + " is not divisible by the number of heads " + numAttentionHeads);
    require(numAttentionHeads % numKeyValueHeads == 0,
        "the number of heads " + numAttentionHeads + " is not a multiple of the kv heads " + numKeyValueHeads);
    require((hiddenSize / numAttentionHeads) % 2 == 0,
        "head dim " + hiddenSize / numAttentionHeads + " is odd; rotary embeddings need an even head dim");
    require(intermediateSize > 0 && vocabRows > 0 && maxPositionEmbeddings > 0,
        "intermediate size, vocabulary and max positions must be positive");
    warnings = List.copyOf(warnings);
  }

  /** @return head dim D = hidden / heads */
  public int headDim() {
    return hiddenSize / numAttentionHeads;
  }

  /** @return width of the K and V projections = kv heads * D */
  public int kvDim() {
    return numKeyValueHeads * headDim();
  }

  /**
   * Parses and normalises a config. Unsupported architecture options are refused here, before any weight is read.
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
      throw new CheckpointException(where + " has a value of the wrong type (" + e.getMessage() + "). Numbers must be"
          + " JSON numbers and flags JSON booleans, as in the model's original config.json.", e);
    }
  }

  /** @return a copy with a different EOS id and one more warning */
  public OlmoConfig withEos(int eos, String warning) {
    List<String> w = new ArrayList<>(warnings);
    w.add(warning);
    return new OlmoConfig(layout, hiddenSize, numHiddenLayers, numAttentionHeads, numKeyValueHeads,
        intermediateSize, vocabRows, maxPositionEmbeddings, ropeTheta, clipQkv, normType, normEps, normAffine,
        normBias, qkNorm, normAfter, attentionBias, mlpBias, scaleLogits, tied, tyingKey, tyingKeyPresent, eos,
        bosTokenId, w);
  }

  static void require(boolean ok, String msg) {
    if (!ok) {
      throw new CheckpointException("invalid OLMo config: " + msg);
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
    if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isNumber()) {
      throw new CheckpointException("config key " + k + " is " + e + ", not a number. Restore the value from the"
          + " model's original config.json.");
    }
    return e.getAsInt();
  }

  static double dbl(JsonObject j, String k, double def) {
    return present(j, k) ? j.get(k).getAsDouble() : def;
  }

  static Double optDouble(JsonObject j, String k) {
    return present(j, k) ? j.get(k).getAsDouble() : null;
  }

  static boolean bool(JsonObject j, String k, boolean def) {
    return present(j, k) ? j.get(k).getAsBoolean() : def;
  }

  static String str(JsonObject j, String k, String def) {
    return present(j, k) ? j.get(k).getAsString() : def;
  }
}
