package io.olmoppl.checkpoint;

import static io.olmoppl.checkpoint.CheckpointErrors.unsupported;
import static io.olmoppl.checkpoint.OlmoConfig.bool;
import static io.olmoppl.checkpoint.OlmoConfig.dbl;
import static io.olmoppl.checkpoint.OlmoConfig.integer;
import static io.olmoppl.checkpoint.OlmoConfig.optDouble;
import static io.olmoppl.checkpoint.OlmoConfig.optInt;
import static io.olmoppl.checkpoint.OlmoConfig.present;
import static io.olmoppl.checkpoint.OlmoConfig.require;
import static io.olmoppl.checkpoint.OlmoConfig.str;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import io.olmoppl.checkpoint.OlmoConfig.NormType;
import java.util.ArrayList;
import java.util.List;

/**
 * How each {@link CheckpointLayout} reads its {@code config.json}: the layout's own keys, with the
 * layout's own defaults, normalised into one {@link OlmoConfig}; a config asking for what the model
 * does not compute is refused here. The layouts' {@code parse} methods call these.
 */
final class LayoutConfigReader {
  private LayoutConfigReader() {}

  /**
   * allenai hf_olmo ({@code olmo/config.py}'s {@code ModelConfig}, which hf_olmo's {@code
   * OLMoConfig} starts from): {@code d_model}, {@code n_heads}, {@code n_kv_heads} or {@code
   * multi_query_attention}, the fused MLP width, {@code embedding_size} padding, and the
   * architecture switches olmo-ppl refuses unless they are OLMo's released choices.
   */
  static OlmoConfig hfOlmo(CheckpointLayout layout, JsonObject j, String where) {
    // Defaults are OLMo's ModelConfig (olmo/config.py), which hf_olmo's OLMoConfig starts from.
    int dModel = integer(j, "d_model", 768);
    int nHeads = integer(j, "n_heads", 12);
    int nLayers = integer(j, "n_layers", 12);
    Integer nKv = optInt(j, "n_kv_heads");
    Boolean mqa =
        present(j, "multi_query_attention") ? j.get("multi_query_attention").getAsBoolean() : null;
    int kv;
    if (nKv == null) {
      kv = Boolean.TRUE.equals(mqa) ? 1 : nHeads;
    } else if (mqa == null) {
      kv = nKv;
    } else {
      int should = mqa ? 1 : nHeads;
      require(
          nKv == should,
          where
              + ": multi_query_attention "
              + mqa
              + " contradicts n_kv_heads "
              + nKv
              + " (OLMo refuses both set); remove one of them");
      kv = nKv;
    }
    int mlpRatio = integer(j, "mlp_ratio", 4);
    Integer mlpHidden = optInt(j, "mlp_hidden_size");
    int fused = mlpHidden != null ? mlpHidden : mlpRatio * dModel;
    require(
        fused % 2 == 0,
        where + ": the fused MLP width " + fused + " must be even (it holds [up | gate])");
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
    Boolean biasForLn =
        present(j, "bias_for_layer_norm") ? j.get("bias_for_layer_norm").getAsBoolean() : null;
    boolean normBias = affine && (biasForLn != null ? biasForLn : includeBias);
    return new OlmoConfig(
        layout,
        dModel,
        nLayers,
        nHeads,
        kv,
        fused / 2,
        null,
        rows,
        integer(j, "max_sequence_length", 1024),
        dbl(j, "rope_theta", 10000.0),
        AttentionSpec.allFull(nLayers, dbl(j, "rope_theta", 10000.0)),
        optDouble(j, "clip_qkv"),
        norm,
        dbl(j, "layer_norm_eps", 1e-5),
        affine,
        normBias,
        false,
        bool(j, "norm_after", false),
        includeBias,
        includeBias,
        bool(j, "scale_logits", false),
        bool(j, "weight_tying", true),
        "weight_tying",
        present(j, "weight_tying"),
        integer(j, "eos_token_id", 50256),
        null,
        new ArrayList<>());
  }

  /**
   * transformers OLMo and OLMo-2 ({@code configuration_olmo.py}, {@code configuration_olmo2.py}).
   *
   * @param olmo2 OLMo-2's blocks: RMSNorm after the sub-layers, QK-norm, no clip
   */
  static OlmoConfig transformers(
      CheckpointLayout layout, JsonObject j, String where, boolean olmo2) {
    // transformers OLMo and OLMo-2 (configuration_olmo.py, configuration_olmo2.py)
    if (present(j, "rope_scaling")) {
      throw unsupported(where, "rope_scaling " + j.get("rope_scaling"));
    }
    double theta = dbl(j, "rope_theta", 10000.0);
    return transformers(
        layout,
        j,
        where,
        olmo2,
        theta,
        AttentionSpec.allFull(integer(j, "num_hidden_layers", 32), theta),
        new ArrayList<>());
  }

  /**
   * transformers Olmo 3 ({@code configuration_olmo3.py}): OLMo-2's keys and blocks, plus {@code
   * layer_types}, {@code sliding_window}, an explicit {@code head_dim} and the rotary embedding per
   * layer kind ({@link Olmo3Rope}).
   */
  static OlmoConfig olmo3(CheckpointLayout layout, JsonObject j, String where) {
    int layers = integer(j, "num_hidden_layers", 32);
    List<AttentionKind> kinds = new ArrayList<>();
    if (present(j, "layer_types")) {
      for (JsonElement e : j.getAsJsonArray("layer_types")) {
        AttentionKind k = AttentionKind.of(e.getAsString());
        if (k == null) {
          throw unsupported(where, "layer type " + e + " (in layer_types)");
        }
        kinds.add(k);
      }
    } else {
      // Olmo3Config's default: every fourth layer full, the others sliding
      for (int i = 0; i < Math.max(0, Math.min(layers, OlmoConfig.MAX_LAYERS)); i++) {
        kinds.add((i + 1) % 4 != 0 ? AttentionKind.SLIDING : AttentionKind.FULL);
      }
    }
    List<String> warnings = new ArrayList<>();
    Olmo3Rope.Ropes ropes = Olmo3Rope.read(j, where, warnings);
    Integer headDim = optInt(j, "head_dim");
    require(headDim == null || headDim > 0, where + ": head_dim " + headDim + " must be positive");
    AttentionSpec spec =
        new AttentionSpec(
            headDim == null ? 0 : headDim,
            kinds,
            integer(j, "sliding_window", 4096),
            ropes.full(),
            ropes.sliding());
    return transformers(layout, j, where, true, ropes.full().theta(), spec, warnings);
  }

  private static OlmoConfig transformers(
      CheckpointLayout layout,
      JsonObject j,
      String where,
      boolean olmo2,
      double theta,
      AttentionSpec attention,
      List<String> warnings) {
    int hidden = integer(j, "hidden_size", 4096);
    int heads = integer(j, "num_attention_heads", 32);
    Integer kv = optInt(j, "num_key_value_heads");
    return new OlmoConfig(
        layout,
        hidden,
        integer(j, "num_hidden_layers", 32),
        heads,
        kv != null ? kv : heads,
        integer(j, "intermediate_size", 11008),
        null,
        integer(j, "vocab_size", 50304),
        integer(j, "max_position_embeddings", 2048),
        theta,
        attention,
        olmo2 ? null : optDouble(j, "clip_qkv"),
        olmo2 ? NormType.RMS_NORM : NormType.LAYER_NORM,
        // OlmoLayerNorm hard-codes eps 1e-5; Olmo2's RMSNorm takes rms_norm_eps (class default
        // 1e-5)
        olmo2 ? dbl(j, "rms_norm_eps", 1e-5) : 1e-5,
        olmo2,
        false,
        olmo2,
        olmo2,
        bool(j, "attention_bias", false),
        false,
        false,
        bool(j, "tie_word_embeddings", false),
        "tie_word_embeddings",
        present(j, "tie_word_embeddings"),
        integer(j, "eos_token_id", CheckpointLayout.NEOX_EOS),
        optInt(j, "bos_token_id"),
        warnings);
  }

  /**
   * transformers OLMoE ({@code configuration_olmoe.py}: OLMo-1's pre-norm blocks with RMSNorm and
   * QK-norm, optional {@code clip_qkv}) and FlexOlmo ({@code configuration_flex_olmo.py}: OLMo-2's
   * blocks), both with the OLMoE expert MLP. Defaults are the classes' own, which are the released
   * OLMoE-1B-7B and FlexOlmo-7x7B configs (OLMoE-1B-7B-0924's config.json has no {@code
   * rms_norm_eps}: 1e-5).
   *
   * @param olmo2 FlexOlmo: OLMo-2's blocks and defaults (dolma2 ids, rope_theta 5e5, eps 1e-6)
   */
  static OlmoConfig experts(CheckpointLayout layout, JsonObject j, String where, boolean olmo2) {
    if (present(j, "rope_scaling")) {
      throw unsupported(where, "rope_scaling " + j.get("rope_scaling"));
    }
    double theta = dbl(j, "rope_theta", olmo2 ? 500000.0 : 10000.0);
    if (present(j, "rope_parameters")) { // transformers 5's spelling of rope_theta / rope_scaling
      JsonObject rp = j.getAsJsonObject("rope_parameters");
      if (!str(rp, "rope_type", "default").equals("default")) {
        throw unsupported(where, "rope_parameters " + rp);
      }
      theta = dbl(rp, "rope_theta", theta);
    }
    String act = str(j, "hidden_act", "silu");
    if (!act.equals("silu")) {
      throw unsupported(where, "hidden_act " + act);
    }
    int hidden = integer(j, "hidden_size", olmo2 ? 4096 : 2048);
    int heads = integer(j, "num_attention_heads", olmo2 ? 32 : 16);
    Integer kv = optInt(j, "num_key_value_heads");
    Integer headDim = optInt(j, "head_dim");
    if (headDim != null && heads > 0 && headDim * heads != hidden) {
      throw unsupported(where, "head_dim " + headDim + " other than hidden_size / heads");
    }
    int layers = integer(j, "num_hidden_layers", olmo2 ? 32 : 16);
    return new OlmoConfig(
        layout,
        hidden,
        layers,
        heads,
        kv != null ? kv : heads,
        integer(j, "intermediate_size", olmo2 ? 11008 : 2048),
        new Experts(
            integer(j, "num_experts", olmo2 ? 7 : 64),
            integer(j, "num_experts_per_tok", olmo2 ? 5 : 8),
            bool(j, "norm_topk_prob", false)),
        integer(j, "vocab_size", olmo2 ? 100352 : 50304),
        integer(j, "max_position_embeddings", 4096),
        theta,
        AttentionSpec.allFull(layers, theta),
        olmo2 ? null : optDouble(j, "clip_qkv"),
        NormType.RMS_NORM,
        dbl(j, "rms_norm_eps", olmo2 ? 1e-6 : 1e-5),
        true,
        false,
        true,
        olmo2,
        bool(j, "attention_bias", false),
        false,
        false,
        bool(j, "tie_word_embeddings", false),
        "tie_word_embeddings",
        present(j, "tie_word_embeddings"),
        integer(j, "eos_token_id", olmo2 ? 100257 : CheckpointLayout.NEOX_EOS),
        optInt(j, "bos_token_id"),
        new ArrayList<>());
  }
}
