package io.olmoppl.checkpoint;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * A checkpoint's {@code config.json}, normalised to one architecture description for the three layouts.
 *
 * <p>The layout is detected by keys, not {@code model_type} (hf_olmo files have said {@code "olmo"} too): {@code
 * d_model}/{@code n_layers}/{@code n_heads} mean allenai hf_olmo; {@code model_type} {@code olmo2} (or its pre-release
 * name {@code olmo_1124}) means OLMo-2; {@code hidden_size} with {@code model_type} {@code olmo} means transformers'
 * OLMo. Missing keys take that layout's own defaults (hf_olmo's {@code ModelConfig} defaults differ from
 * transformers': e.g. {@code weight_tying} defaults to true there and {@code tie_word_embeddings} to false here).
 *
 * @param intermediateSize the gated MLP width I (hf_olmo's fused {@code ff_proj} is 2I rows)
 * @param vocabRows rows of the embedding and of the output matrix (the logit width, padding rows included)
 * @param tied whether the config ties the output projection to the embedding
 * @param tyingKey the config key that says so ({@code weight_tying} or {@code tie_word_embeddings})
 * @param tyingKeyPresent false when the key is absent and {@link #tied} is the layout's default
 */
public record OlmoConfig(
    Layout layout,
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
    List<String> warnings) implements java.io.Serializable {

  /** Checkpoint layouts (OLMO.md section 2). */
  public enum Layout {
    HF_OLMO("hf_olmo"),
    OLMO("olmo"),
    OLMO2("olmo2");

    private final String id;

    Layout(String id) {
      this.id = id;
    }

    public String id() {
      return id;
    }
  }

  /** LayerNorm (mean and variance) or RMSNorm. */
  public enum NormType {
    LAYER_NORM,
    RMS_NORM
  }

  /**
   * Largest {@code max_position_embeddings} accepted: 2^24 positions, far above any released model; a larger value
   * is a corrupt config (the window the scorer can run is bounded separately by memory).
   */
  public static final int MAX_POSITIONS = 1 << 24;

  /** Largest layer count accepted (released OLMo models have at most 80); a larger value is a corrupt config. */
  public static final int MAX_LAYERS = 1 << 12;

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
    require(numHiddenLayers <= MAX_LAYERS, "the number of layers " + numHiddenLayers + " is above " + MAX_LAYERS);
    require(maxPositionEmbeddings <= MAX_POSITIONS, "max positions " + maxPositionEmbeddings + " is above "
        + MAX_POSITIONS + "; no released model has that many (the config is corrupt)");
    require(Double.isFinite(ropeTheta) && ropeTheta > 0, "rope_theta " + ropeTheta + " must be a positive number"
        + " (rotary frequencies are rope_theta^(-2i/D); a value <= 0 gives NaN scores)");
    require(Double.isFinite(normEps) && normEps > 0 && normEps < 1, "the norm epsilon " + normEps
        + " must be in (0, 1)");
    require(clipQkv == null || (Double.isFinite(clipQkv) && clipQkv > 0), "clip_qkv " + clipQkv
        + " must be a positive number or null");
    require(eosTokenId >= 0 && eosTokenId < vocabRows, "eos_token_id " + eosTokenId + " is not a row of the "
        + vocabRows + "-row embedding");
    require(bosTokenId == null || (bosTokenId >= 0 && bosTokenId < vocabRows), "bos_token_id " + bosTokenId
        + " is not a row of the " + vocabRows + "-row embedding");
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
      return parse(json, where);
    } catch (CheckpointException e) {
      throw e;
    } catch (RuntimeException e) {
      throw new CheckpointException(where + " has a value of the wrong type (" + e.getMessage() + "). Numbers must be"
          + " JSON numbers and flags JSON booleans, as in the model's original config.json.", e);
    }
  }

  private static OlmoConfig parse(JsonObject json, String where) {
    String modelType = str(json, "model_type", "");
    if (json.has("d_model") && json.has("n_layers") && json.has("n_heads")) {
      return hfOlmo(json, where);
    }
    String mt = modelType.toLowerCase(Locale.ROOT);
    if (mt.equals("olmo2") || mt.equals("olmo_1124")) {
      return transformers(json, where, Layout.OLMO2);
    }
    if (mt.equals("olmo") && json.has("hidden_size")) {
      return transformers(json, where, Layout.OLMO);
    }
    throw new CheckpointException(where + ": cannot tell the checkpoint layout (model_type \"" + modelType
        + "\"). olmo-ppl reads allenai hf_olmo configs (keys d_model, n_layers, n_heads), transformers OLMo"
        + " (model_type \"olmo\" with hidden_size) and OLMo-2 (model_type \"olmo2\"). Point --model at the Hugging Face"
        + " checkpoint directory of an OLMo model.");
  }

  private static OlmoConfig hfOlmo(JsonObject j, String where) {
    List<String> warnings = new ArrayList<>();
    // Defaults are OLMo's ModelConfig (olmo/config.py), which hf_olmo's OLMoConfig starts from.
    int dModel = integer(j, "d_model", 768);
    int nHeads = integer(j, "n_heads", 12);
    int nLayers = integer(j, "n_layers", 12);
    Integer nKv = optInt(j, "n_kv_heads");
    Boolean mqa = j.has("multi_query_attention") && !j.get("multi_query_attention").isJsonNull()
        ? j.get("multi_query_attention").getAsBoolean() : null;
    int kv;
    if (nKv == null) {
      kv = Boolean.TRUE.equals(mqa) ? 1 : nHeads;
    } else if (mqa == null) {
      kv = nKv;
    } else {
      int should = mqa ? 1 : nHeads;
      require(nKv == should, where + ": multi_query_attention " + mqa + " contradicts n_kv_heads " + nKv
          + " (OLMo refuses both set); remove one of them");
      kv = nKv;
    }
    int mlpRatio = integer(j, "mlp_ratio", 4);
    Integer mlpHidden = optInt(j, "mlp_hidden_size");
    int fused = mlpHidden != null ? mlpHidden : mlpRatio * dModel;
    require(fused % 2 == 0, where + ": the fused MLP width " + fused + " must be even (it holds [up | gate])");
    int vocab = integer(j, "vocab_size", 50257);
    Integer emb = optInt(j, "embedding_size");
    int rows = emb != null ? emb : vocab;
    boolean rope = bool(j, "rope", false);
    if (bool(j, "alibi", false) || !rope) {
      throw unsupported(where, rope ? "alibi" : "learned absolute positions (rope false)");
    }
    if (integer(j, "block_group_size", 1) != 1) {
      throw unsupported(where, "block_group_size != 1");
    }
    String block = str(j, "block_type", "sequential");
    if (!block.equals("sequential")) {
      throw unsupported(where, "block_type " + block);
    }
    String act = str(j, "activation_type", "swiglu");
    if (!act.equals("swiglu")) {
      throw unsupported(where, "activation_type " + act);
    }
    if (bool(j, "attention_layer_norm", false)) {
      throw unsupported(where, "attention_layer_norm (QK-norm in the hf_olmo layout)");
    }
    if (bool(j, "embedding_layer_norm", false)) {
      throw unsupported(where, "embedding_layer_norm");
    }
    String lnType = str(j, "layer_norm_type", "default");
    NormType norm;
    switch (lnType) {
      case "default", "low_precision" -> norm = NormType.LAYER_NORM;
      case "rms" -> norm = NormType.RMS_NORM;
      default -> throw unsupported(where, "layer_norm_type " + lnType);
    }
    boolean includeBias = bool(j, "include_bias", true);
    boolean affine = bool(j, "layer_norm_with_affine", true);
    Boolean biasForLn = j.has("bias_for_layer_norm") && !j.get("bias_for_layer_norm").isJsonNull()
        ? j.get("bias_for_layer_norm").getAsBoolean() : null;
    boolean normBias = affine && (biasForLn != null ? biasForLn : includeBias);
    boolean tyingPresent = j.has("weight_tying") && !j.get("weight_tying").isJsonNull();
    boolean tied = bool(j, "weight_tying", true);
    return new OlmoConfig(Layout.HF_OLMO, dModel, nLayers, nHeads, kv, fused / 2, rows,
        integer(j, "max_sequence_length", 1024), dbl(j, "rope_theta", 10000.0), optDouble(j, "clip_qkv"),
        norm, dbl(j, "layer_norm_eps", 1e-5), affine, normBias, false,
        bool(j, "norm_after", false), includeBias, includeBias, bool(j, "scale_logits", false), tied,
        "weight_tying", tyingPresent, integer(j, "eos_token_id", 50256), null, warnings);
  }

  private static OlmoConfig transformers(JsonObject j, String where, Layout layout) {
    List<String> warnings = new ArrayList<>();
    if (j.has("rope_scaling") && !j.get("rope_scaling").isJsonNull()) {
      throw unsupported(where, "rope_scaling " + j.get("rope_scaling"));
    }
    int hidden = integer(j, "hidden_size", 4096);
    int heads = integer(j, "num_attention_heads", 32);
    Integer kv = optInt(j, "num_key_value_heads");
    boolean olmo2 = layout == Layout.OLMO2;
    boolean tyingPresent = j.has("tie_word_embeddings") && !j.get("tie_word_embeddings").isJsonNull();
    boolean bias = bool(j, "attention_bias", false);
    return new OlmoConfig(layout, hidden, integer(j, "num_hidden_layers", 32), heads, kv != null ? kv : heads,
        integer(j, "intermediate_size", 11008), integer(j, "vocab_size", 50304),
        integer(j, "max_position_embeddings", 2048), dbl(j, "rope_theta", 10000.0),
        olmo2 ? null : optDouble(j, "clip_qkv"),
        olmo2 ? NormType.RMS_NORM : NormType.LAYER_NORM,
        // OlmoLayerNorm hard-codes eps 1e-5; Olmo2's RMSNorm takes rms_norm_eps (class default 1e-5)
        olmo2 ? dbl(j, "rms_norm_eps", 1e-5) : 1e-5,
        olmo2, false, olmo2, olmo2, bias, false, false, bool(j, "tie_word_embeddings", false),
        "tie_word_embeddings", tyingPresent, integer(j, "eos_token_id", 50279), optInt(j, "bos_token_id"), warnings);
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

  private static CheckpointException unsupported(String where, String what) {
    return new CheckpointException(where + ": " + what + " is not supported by olmo-ppl, which implements the"
        + " released OLMo-1 and OLMo-2 architectures (rotary positions, SwiGLU, sequential blocks). Use a checkpoint"
        + " with the released architecture.");
  }

  private static void require(boolean ok, String msg) {
    if (!ok) {
      throw new CheckpointException("invalid OLMo config: " + msg + ". Use the model's own config.json.");
    }
  }

  private static boolean present(JsonObject j, String k) {
    JsonElement e = j.get(k);
    return e != null && !e.isJsonNull();
  }

  private static int integer(JsonObject j, String k, int def) {
    Integer v = optInt(j, k);
    return v != null ? v : def;
  }

  private static Integer optInt(JsonObject j, String k) {
    if (!present(j, k)) {
      return null;
    }
    JsonElement e = j.get(k);
    java.math.BigDecimal v = number(j, k).stripTrailingZeros();
    try {
      if (v.scale() > 0 || v.precision() - v.scale() > 10) { // a fraction, or more digits than an int has
        throw new ArithmeticException();
      }
      return v.intValueExact();
    } catch (ArithmeticException x) {
      throw new CheckpointException("config key " + k + " is " + e + ", not a whole number between "
          + Integer.MIN_VALUE + " and " + Integer.MAX_VALUE + ". Restore the value from the model's original"
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
    throw new CheckpointException("config key " + k + " is " + e + ", not a finite number. Restore the value from"
        + " the model's original config.json.");
  }

  private static double dbl(JsonObject j, String k, double def) {
    Double v = optDouble(j, k);
    return v != null ? v : def;
  }

  private static Double optDouble(JsonObject j, String k) {
    if (!present(j, k)) {
      return null;
    }
    double v = number(j, k).doubleValue();
    if (!Double.isFinite(v)) {
      throw new CheckpointException("config key " + k + " is " + j.get(k) + ", too large for a double. Restore the"
          + " value from the model's original config.json.");
    }
    return v;
  }

  private static boolean bool(JsonObject j, String k, boolean def) {
    return present(j, k) ? j.get(k).getAsBoolean() : def;
  }

  private static String str(JsonObject j, String k, String def) {
    return present(j, k) ? j.get(k).getAsString() : def;
  }
}
