package io.olmoppl.checkpoint.writer;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import io.olmoppl.checkpoint.AttentionKind;
import io.olmoppl.checkpoint.CheckpointLayout;
import io.olmoppl.checkpoint.DType;
import io.olmoppl.checkpoint.Experts;
import io.olmoppl.checkpoint.RopeParameters;

/**
 * The config.json of a random checkpoint in each {@link CheckpointLayout}, in the layout's own
 * keys: the given dimensions, no biases, OLMo's released choices for the rest (rotary positions,
 * SwiGLU, the layout's norm and eos). The switch names every layout, so a new layout does not
 * compile until it says how its config is written.
 */
public final class LayoutConfigWriter {
  private LayoutConfigWriter() {}

  /**
   * Dimensions of a random checkpoint: C, blocks, H, K, I, embedding rows, context length, and the
   * experts of a mixture-of-experts layout (null for the dense ones).
   */
  public record Dims(
      int hidden,
      int layers,
      int heads,
      int kvHeads,
      int intermediate,
      int vocabRows,
      int maxPositions,
      Experts experts) {}

  /**
   * @return config.json of a {@code layout} checkpoint with dimensions {@code d}
   */
  public static JsonObject configJson(CheckpointLayout layout, Dims d, boolean tied, DType dtype) {
    return switch (layout) {
      case HF_OLMO -> hfOlmo(d, tied, dtype);
      case OLMO -> transformers(layout, false, d, tied, dtype);
      case OLMO2 -> transformers(layout, true, d, tied, dtype);
      case OLMO3 -> olmo3(d, tied, dtype);
      case OLMOE -> experts(layout, false, d, tied, dtype);
      case FLEX_OLMO -> experts(layout, true, d, tied, dtype);
    };
  }

  /**
   * transformers' OLMoE and FlexOlmo keys: OLMo-1's (OLMoE, with OLMoE's RMSNorm eps) or OLMo-2's
   * (FlexOlmo), and the experts.
   */
  private static JsonObject experts(
      CheckpointLayout layout, boolean olmo2, Dims d, boolean tied, DType dtype) {
    if (d.experts() == null) {
      throw new IllegalArgumentException(layout.id() + " checkpoints need experts");
    }
    JsonObject c = transformers(layout, olmo2, d, tied, dtype);
    if (!olmo2) {
      c.addProperty("rms_norm_eps", 1e-5); // allenai/OLMoE-1B-7B-0924-Instruct
    }
    c.addProperty("hidden_act", "silu");
    c.addProperty("num_experts", d.experts().count());
    c.addProperty("num_experts_per_tok", d.experts().topK());
    c.addProperty("norm_topk_prob", d.experts().normTopkProb());
    return c;
  }

  /** allenai hf_olmo's keys (OLMo-1B's choices: weightless LayerNorm, no biases, NeoX vocab). */
  private static JsonObject hfOlmo(Dims d, boolean tied, DType dtype) {
    JsonObject c = new JsonObject();
    c.add("architectures", array(CheckpointLayout.HF_OLMO.architecture()));
    c.addProperty("model_type", "hf_olmo");
    c.addProperty("d_model", d.hidden());
    c.addProperty("n_heads", d.heads());
    c.addProperty("n_kv_heads", d.kvHeads());
    c.addProperty("n_layers", d.layers());
    c.addProperty("mlp_hidden_size", 2 * d.intermediate());
    c.addProperty("vocab_size", CheckpointLayout.NEOX_VOCAB_SIZE);
    c.addProperty("embedding_size", d.vocabRows());
    c.addProperty("max_sequence_length", d.maxPositions());
    c.addProperty("rope", true);
    c.addProperty("rope_theta", 10000.0);
    c.addProperty("weight_tying", tied);
    c.addProperty("layer_norm_type", "default");
    c.addProperty("layer_norm_with_affine", false);
    c.addProperty("bias_for_layer_norm", false);
    c.addProperty("include_bias", false);
    c.addProperty("attention_layer_norm", false);
    c.addProperty("activation_type", "swiglu");
    c.addProperty("block_type", "sequential");
    c.addProperty("eos_token_id", CheckpointLayout.NEOX_EOS);
    c.addProperty("pad_token_id", 1);
    c.addProperty("torch_dtype", dtype.torchName());
    return c;
  }

  /**
   * transformers' OLMo and OLMo-2 keys.
   *
   * @param olmo2 OLMo-2's choices (RMSNorm eps, rope theta, the dolma2 tokenizer's ids)
   */
  private static JsonObject transformers(
      CheckpointLayout layout, boolean olmo2, Dims d, boolean tied, DType dtype) {
    JsonObject c = new JsonObject();
    c.add("architectures", array(layout.architecture()));
    c.addProperty("model_type", layout.id());
    c.addProperty("hidden_size", d.hidden());
    c.addProperty("intermediate_size", d.intermediate());
    c.addProperty("num_attention_heads", d.heads());
    c.addProperty("num_hidden_layers", d.layers());
    c.addProperty("num_key_value_heads", d.kvHeads());
    c.addProperty("vocab_size", d.vocabRows());
    c.addProperty("max_position_embeddings", d.maxPositions());
    // allenai/OLMo-2-1124-7B-hf: rope_theta 500000, rms_norm_eps 1e-6, eos 100257, pad 100277
    // (dolma2 tokenizer)
    c.addProperty("rope_theta", olmo2 ? 500000.0 : 10000.0);
    c.add("rope_scaling", null);
    c.addProperty("attention_bias", false);
    if (olmo2) {
      c.addProperty("rms_norm_eps", 1e-6);
    } else {
      c.add("clip_qkv", null);
    }
    c.addProperty("tie_word_embeddings", tied);
    c.addProperty("eos_token_id", olmo2 ? 100257 : CheckpointLayout.NEOX_EOS);
    c.addProperty("pad_token_id", olmo2 ? 100277 : 1);
    c.add("bos_token_id", null);
    c.addProperty("torch_dtype", dtype.torchName());
    return c;
  }

  /**
   * Olmo 3's keys as the released configs write them (Olmo-3-1025-7B: every fourth layer full, the
   * others a 4,096-token sliding window; legacy {@code rope_scaling} YaRN factor 8 over 8,192 of
   * 65,536 positions), scaled to the given positions: window = positions / 16 (at most 4,096),
   * YaRN's original length = positions / 8, so that small checkpoints exercise both.
   */
  private static JsonObject olmo3(Dims d, boolean tied, DType dtype) {
    JsonObject c = transformers(CheckpointLayout.OLMO3, true, d, tied, dtype);
    JsonArray types = new JsonArray();
    for (int i = 0; i < d.layers(); i++) {
      types.add(((i + 1) % 4 != 0 ? AttentionKind.SLIDING : AttentionKind.FULL).configName());
    }
    c.add("layer_types", types);
    c.addProperty("sliding_window", Math.max(1, Math.min(4096, d.maxPositions() / 16)));
    JsonObject yarn = new JsonObject();
    yarn.addProperty("rope_type", "yarn");
    yarn.addProperty("factor", 8.0);
    yarn.addProperty("original_max_position_embeddings", Math.max(1, d.maxPositions() / 8));
    yarn.addProperty("beta_fast", 32.0);
    yarn.addProperty("beta_slow", 1.0);
    yarn.addProperty("attention_factor", RopeParameters.defaultAttentionFactor(8.0));
    c.add("rope_scaling", yarn);
    return c;
  }

  private static JsonArray array(String s) {
    JsonArray a = new JsonArray();
    a.add(s);
    return a;
  }
}
