package io.olmoppl.checkpoint;

import static io.olmoppl.checkpoint.OlmoConfig.bool;
import static io.olmoppl.checkpoint.OlmoConfig.dbl;
import static io.olmoppl.checkpoint.OlmoConfig.integer;
import static io.olmoppl.checkpoint.OlmoConfig.optDouble;
import static io.olmoppl.checkpoint.OlmoConfig.optInt;
import static io.olmoppl.checkpoint.OlmoConfig.present;
import static io.olmoppl.checkpoint.OlmoConfig.require;
import static io.olmoppl.checkpoint.OlmoConfig.str;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import io.olmoppl.checkpoint.OlmoConfig.NormType;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The checkpoint layouts olmo-ppl reads, and everything that differs between them: how a layout is
 * recognised from {@code config.json}, its config keys and their defaults, its tensor names and
 * shapes for a config, how a block's weights are assembled from them (fused QKV, {@code [up |
 * gate]}), which output bias exists, and the config a random checkpoint of the layout is written
 * with. No other main class spells a layout's key names (tests spell them on purpose, as
 * independent references).
 *
 * <ul>
 *   <li>{@code hf_olmo}: allenai's {@code hf_olmo} export of OLMo-1 ({@code OLMoForCausalLM},
 *       allenai/OLMo {@code olmo/config.py} and {@code olmo/model.py}): fused {@code att_proj} and
 *       {@code ff_proj}.
 *   <li>{@code olmo}: transformers' OLMo ({@code modeling_olmo.py}): separate q/k/v and gate/up,
 *       weightless LayerNorm.
 *   <li>{@code olmo2}: transformers' OLMo-2 ({@code modeling_olmo2.py}): RMSNorm after the
 *       attention and the MLP, and QK-norm over the full projected width.
 * </ul>
 *
 * <p>Adding a layout is one constant here and nothing elsewhere, as long as its blocks are
 * computations the model already has (norms before or after, QK-norm, clip, biases): the checkpoint
 * validation, the model's loader and the random-checkpoint writer all read the layout. OLMo-3
 * (transformers' {@code modeling_olmo3.py}), for example, keeps OLMo-2's keys and tensor names and
 * adds sliding-window attention layers; until the model computes those, its whole diff would be
 *
 * <pre>{@code
 * OLMO3("olmo3", "Olmo3ForCausalLM", true) {
 *   boolean recognises(JsonObject j) { return modelType(j).equals("olmo3"); }
 *
 *   OlmoConfig parse(JsonObject j, String where) {
 *     if (present(j, "sliding_window")) {
 *       throw unsupported(where, "sliding-window attention layers");
 *     }
 *     return super.parse(j, where); // OLMo-2's keys and defaults
 *   }
 * },
 * }</pre>
 */
public enum CheckpointLayout {
  /**
   * allenai hf_olmo: keys {@code d_model}, {@code n_layers}, {@code n_heads}; tensors {@code
   * model.transformer.*}.
   */
  HF_OLMO("hf_olmo", "OLMoForCausalLM", false) {
    @Override
    boolean recognises(JsonObject j) {
      // hf_olmo files have said model_type "olmo" too: the keys decide, and they are checked first
      return j.has("d_model") && j.has("n_layers") && j.has("n_heads");
    }

    @Override
    OlmoConfig parse(JsonObject j, String where) {
      // Defaults are OLMo's ModelConfig (olmo/config.py), which hf_olmo's OLMoConfig starts from.
      int dModel = integer(j, "d_model", 768);
      int nHeads = integer(j, "n_heads", 12);
      int nLayers = integer(j, "n_layers", 12);
      Integer nKv = optInt(j, "n_kv_heads");
      Boolean mqa =
          present(j, "multi_query_attention")
              ? j.get("multi_query_attention").getAsBoolean()
              : null;
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
          this,
          dModel,
          nLayers,
          nHeads,
          kv,
          fused / 2,
          rows,
          integer(j, "max_sequence_length", 1024),
          dbl(j, "rope_theta", 10000.0),
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

    @Override
    public String embedding() {
      return "model.transformer.wte.weight";
    }

    @Override
    public String output() {
      return "model.transformer.ff_out.weight";
    }

    @Override
    public Stored outputBias(OlmoConfig c) {
      // hf_olmo's untied ff_out is a Linear with bias=include_bias
      return c.mlpBias() ? new Stored("model.transformer.ff_out.bias", c.vocabRows()) : null;
    }

    @Override
    public Block block(OlmoConfig c, int i) {
      String p = "model.transformer.blocks." + i + ".";
      long h = c.hiddenSize();
      long qkv = h + 2L * c.kvDim();
      long inter = c.intermediateSize();
      boolean b = c.attentionBias();
      return new Block(
          one(p + "att_proj.weight", qkv, h),
          b ? one(p + "att_proj.bias", qkv) : none(),
          one(p + "attn_out.weight", h, h),
          b ? one(p + "attn_out.bias", h) : none(),
          one(p + "ff_proj.weight", 2 * inter, h),
          b ? one(p + "ff_proj.bias", 2 * inter) : none(),
          one(p + "ff_out.weight", h, inter),
          b ? one(p + "ff_out.bias", h) : none(),
          c.normAffine() ? one(p + "attn_norm.weight", h) : none(),
          c.normBias() ? one(p + "attn_norm.bias", h) : none(),
          c.normAffine() ? one(p + "ff_norm.weight", h) : none(),
          c.normBias() ? one(p + "ff_norm.bias", h) : none(),
          none(),
          none());
    }

    @Override
    public Stored finalNormWeight(OlmoConfig c) {
      return c.normAffine() ? new Stored("model.transformer.ln_f.weight", c.hiddenSize()) : null;
    }

    @Override
    public Stored finalNormBias(OlmoConfig c) {
      return c.normBias() ? new Stored("model.transformer.ln_f.bias", c.hiddenSize()) : null;
    }

    @Override
    public JsonObject configJson(Dims d, boolean tied, DType dtype) {
      JsonObject c = new JsonObject();
      c.add("architectures", array(architecture));
      c.addProperty("model_type", "hf_olmo");
      c.addProperty("d_model", d.hidden());
      c.addProperty("n_heads", d.heads());
      c.addProperty("n_kv_heads", d.kvHeads());
      c.addProperty("n_layers", d.layers());
      c.addProperty("mlp_hidden_size", 2 * d.intermediate());
      c.addProperty("vocab_size", NEOX_VOCAB_SIZE);
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
      c.addProperty("eos_token_id", NEOX_EOS);
      c.addProperty("pad_token_id", 1);
      c.addProperty("torch_dtype", dtype.torchName());
      return c;
    }
  },

  /**
   * transformers OLMo: {@code model_type} {@code olmo} with {@code hidden_size}; tensors {@code
   * model.layers.*}.
   */
  OLMO("olmo", "OlmoForCausalLM", false) {
    @Override
    boolean recognises(JsonObject j) {
      return modelType(j).equals("olmo") && j.has("hidden_size");
    }
  },

  /** transformers OLMo-2: {@code model_type} {@code olmo2} (pre-release name {@code olmo_1124}). */
  OLMO2("olmo2", "Olmo2ForCausalLM", true) {
    @Override
    boolean recognises(JsonObject j) {
      return modelType(j).equals("olmo2") || modelType(j).equals("olmo_1124");
    }
  };

  /**
   * Rows of OLMo-1's tokenizer (allenai's GPT-NeoX-derived {@code gpt-neox-olmo-dolma-v1_5}): its
   * configs say {@code vocab_size} 50280 and pad the embedding to {@code embedding_size} 50304.
   */
  static final int NEOX_VOCAB_SIZE = 50280;

  /** {@code <|endoftext|>} in OLMo-1's tokenizer, which terminated the training documents. */
  static final int NEOX_EOS = 50279;

  private final String id;
  final String architecture; // not private: the constants' bodies read it
  private final boolean olmo2Blocks;

  /**
   * @param id the layout's name
   * @param architecture the {@code architectures} entry of its config.json
   * @param olmo2Blocks for the transformers layouts: OLMo-2's blocks (RMSNorm after the sub-layers,
   *     QK-norm)
   */
  CheckpointLayout(String id, String architecture, boolean olmo2Blocks) {
    this.id = id;
    this.architecture = architecture;
    this.olmo2Blocks = olmo2Blocks;
  }

  /**
   * @return the layout's name as users write it ({@code hf_olmo}, {@code olmo}, {@code olmo2})
   */
  public String id() {
    return id;
  }

  /** A stored tensor and the shape the config implies for it. */
  public record Stored(String name, long... shape) {
    @Override
    public String toString() {
      return name + " " + Arrays.toString(shape);
    }
  }

  /**
   * One block's weights as stored tensors. A list holds the tensors concatenated by rows into one
   * weight (empty: the weight is absent): {@code qkv} is {@code [Q | K | V]} rows, {@code upGate}
   * is {@code [up | gate]} rows (hf_olmo stores them fused; the transformers layouts store the
   * parts). The attention and MLP norms come before their sub-layer, or after it when the config
   * says {@code normAfter} (OLMo-2).
   */
  public record Block(
      List<Stored> qkv,
      List<Stored> qkvBias,
      List<Stored> out,
      List<Stored> outBias,
      List<Stored> upGate,
      List<Stored> upGateBias,
      List<Stored> down,
      List<Stored> downBias,
      List<Stored> attnNormWeight,
      List<Stored> attnNormBias,
      List<Stored> ffNormWeight,
      List<Stored> ffNormBias,
      List<Stored> qNormWeight,
      List<Stored> kNormWeight) {

    /**
     * @return every stored tensor of the block, in the order above
     */
    public List<Stored> all() {
      List<Stored> all = new ArrayList<>();
      for (List<Stored> w :
          List.of(
              qkv,
              qkvBias,
              out,
              outBias,
              upGate,
              upGateBias,
              down,
              downBias,
              attnNormWeight,
              attnNormBias,
              ffNormWeight,
              ffNormBias,
              qNormWeight,
              kNormWeight)) {
        all.addAll(w);
      }
      return all;
    }
  }

  /** Dimensions of a random checkpoint: C, blocks, H, K, I, embedding rows, context length. */
  public record Dims(
      int hidden,
      int layers,
      int heads,
      int kvHeads,
      int intermediate,
      int vocabRows,
      int maxPositions) {}

  /**
   * Recognises the layout from the config's keys (not from {@code model_type} alone).
   *
   * @throws CheckpointException when no layout claims the config
   */
  public static CheckpointLayout of(JsonObject json, String where) {
    for (CheckpointLayout l : values()) {
      if (l.recognises(json)) {
        return l;
      }
    }
    throw new CheckpointException(
        where
            + ": cannot tell the checkpoint layout (model_type \""
            + str(json, "model_type", "")
            + "\"). olmo-ppl reads allenai hf_olmo configs (keys d_model, n_layers,"
            + " n_heads), transformers OLMo (model_type \"olmo\" with hidden_size) and OLMo-2 (model_type \"olmo2\")."
            + " Use the Hugging Face checkpoint directory of an OLMo model.");
  }

  abstract boolean recognises(JsonObject json);

  /** Reads the layout's own keys, with the layout's own defaults, into the normalised config. */
  OlmoConfig parse(JsonObject j, String where) {
    // transformers OLMo and OLMo-2 (configuration_olmo.py, configuration_olmo2.py)
    if (present(j, "rope_scaling")) {
      throw unsupported(where, "rope_scaling " + j.get("rope_scaling"));
    }
    int hidden = integer(j, "hidden_size", 4096);
    int heads = integer(j, "num_attention_heads", 32);
    Integer kv = optInt(j, "num_key_value_heads");
    boolean olmo2 = olmo2Blocks;
    return new OlmoConfig(
        this,
        hidden,
        integer(j, "num_hidden_layers", 32),
        heads,
        kv != null ? kv : heads,
        integer(j, "intermediate_size", 11008),
        integer(j, "vocab_size", 50304),
        integer(j, "max_position_embeddings", 2048),
        dbl(j, "rope_theta", 10000.0),
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
        integer(j, "eos_token_id", NEOX_EOS),
        optInt(j, "bos_token_id"),
        new ArrayList<>());
  }

  /**
   * @return the input embedding's name, (V, C)
   */
  public String embedding() {
    return "model.embed_tokens.weight";
  }

  /**
   * @return the name of the output matrix (V, C) when stored: untied, or a copy next to a tied
   *     embedding
   */
  public String output() {
    return "lm_head.weight";
  }

  /**
   * @return the bias of an untied output projection, or null when the layout has none for this
   *     config
   */
  public Stored outputBias(OlmoConfig c) {
    return null;
  }

  /**
   * @param tied whether the output projection is the embedding tensor itself
   * @return the output bias the model loads: none when tied (hf_olmo's tied logits are {@code
   *     F.linear(x, wte)}, without bias), else {@link #outputBias}
   */
  public final Stored loadedOutputBias(OlmoConfig c, boolean tied) {
    return tied ? null : outputBias(c);
  }

  /**
   * @return block {@code i}'s weights for config {@code c}
   */
  public Block block(OlmoConfig c, int i) {
    String p = "model.layers." + i + ".";
    String a = p + "self_attn.";
    long h = c.hiddenSize();
    long kvd = c.kvDim();
    long inter = c.intermediateSize();
    boolean b = c.attentionBias();
    return new Block(
        List.of(
            new Stored(a + "q_proj.weight", h, h),
            new Stored(a + "k_proj.weight", kvd, h),
            new Stored(a + "v_proj.weight", kvd, h)),
        b
            ? List.of(
                new Stored(a + "q_proj.bias", h),
                new Stored(a + "k_proj.bias", kvd),
                new Stored(a + "v_proj.bias", kvd))
            : none(),
        one(a + "o_proj.weight", h, h),
        b ? one(a + "o_proj.bias", h) : none(),
        List.of(
            new Stored(p + "mlp.up_proj.weight", inter, h),
            new Stored(p + "mlp.gate_proj.weight", inter, h)),
        none(),
        one(p + "mlp.down_proj.weight", h, inter),
        none(),
        // OLMo-2 norms come after the sub-layers; OLMo-1's LayerNorm has no weights
        c.normAffine() ? one(p + "post_attention_layernorm.weight", h) : none(),
        none(),
        c.normAffine() ? one(p + "post_feedforward_layernorm.weight", h) : none(),
        none(),
        c.qkNorm() ? one(a + "q_norm.weight", h) : none(),
        c.qkNorm() ? one(a + "k_norm.weight", kvd) : none());
  }

  /**
   * @return the final norm's weight, or null when it has none
   */
  public Stored finalNormWeight(OlmoConfig c) {
    return c.normAffine() ? new Stored("model.norm.weight", c.hiddenSize()) : null;
  }

  /**
   * @return the final norm's bias, or null when it has none
   */
  public Stored finalNormBias(OlmoConfig c) {
    return null;
  }

  /**
   * Every tensor the config requires except the output matrix and its bias (whether those are
   * needed depends on tying), in a fixed order: embedding, blocks, final norm.
   */
  public Map<String, long[]> tensors(OlmoConfig c) {
    Map<String, long[]> m = new LinkedHashMap<>();
    m.put(embedding(), new long[] {c.vocabRows(), c.hiddenSize()});
    for (int i = 0; i < c.numHiddenLayers(); i++) {
      block(c, i).all().forEach(s -> m.put(s.name(), s.shape()));
    }
    for (Stored s : Arrays.asList(finalNormWeight(c), finalNormBias(c))) {
      if (s != null) {
        m.put(s.name(), s.shape());
      }
    }
    return m;
  }

  /**
   * @return whether a stored tensor that no config uses may be present and ignored (rotary caches)
   */
  public boolean ignorable(String name) {
    return name.endsWith("rotary_emb.inv_freq");
  }

  /**
   * The config.json of a random checkpoint in this layout: the given dimensions, no biases, OLMo's
   * released choices for the rest (rotary positions, SwiGLU, the layout's norm and eos).
   */
  public JsonObject configJson(Dims d, boolean tied, DType dtype) {
    boolean olmo2 = olmo2Blocks;
    JsonObject c = new JsonObject();
    c.add("architectures", array(architecture));
    c.addProperty("model_type", id);
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
    c.addProperty("eos_token_id", olmo2 ? 100257 : NEOX_EOS);
    c.addProperty("pad_token_id", olmo2 ? 100277 : 1);
    c.add("bos_token_id", null);
    c.addProperty("torch_dtype", dtype.torchName());
    return c;
  }

  /**
   * @return the layout named {@code id} (as {@link #id()}), or null
   */
  public static CheckpointLayout byId(String id) {
    for (CheckpointLayout l : values()) {
      if (l.id.equals(id.toLowerCase(Locale.ROOT))) {
        return l;
      }
    }
    return null;
  }

  private static String modelType(JsonObject j) {
    return str(j, "model_type", "").toLowerCase(Locale.ROOT);
  }

  private static List<Stored> one(String name, long... shape) {
    return List.of(new Stored(name, shape));
  }

  private static List<Stored> none() {
    return List.of();
  }

  private static JsonArray array(String s) {
    JsonArray a = new JsonArray();
    a.add(s);
    return a;
  }

  static CheckpointException unsupported(String where, String what) {
    return new CheckpointException(
        where
            + ": "
            + what
            + " is not supported by olmo-ppl, which implements the"
            + " released OLMo-1 and OLMo-2 architectures (rotary positions, SwiGLU, sequential blocks). Use a checkpoint"
            + " with the released architecture.");
  }
}
