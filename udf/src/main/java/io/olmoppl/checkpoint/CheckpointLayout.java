package io.olmoppl.checkpoint;

import static io.olmoppl.checkpoint.BlockTensors.none;
import static io.olmoppl.checkpoint.BlockTensors.one;
import static io.olmoppl.checkpoint.OlmoConfig.str;

import com.google.gson.JsonObject;
import io.olmoppl.checkpoint.BlockTensors.Block;
import io.olmoppl.checkpoint.BlockTensors.Expert;
import io.olmoppl.checkpoint.BlockTensors.Stored;
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
 * gate]}), which output bias exists. Reading the keys, with the layout's defaults, is {@link
 * LayoutConfigReader}'s; writing the config of a random checkpoint is {@link
 * io.olmoppl.checkpoint.writer.LayoutConfigWriter}'s. No other main class spells a layout's key or
 * tensor names (tests spell them on purpose, as independent references).
 *
 * <ul>
 *   <li>{@code hf_olmo}: allenai's {@code hf_olmo} export of OLMo-1 ({@code OLMoForCausalLM},
 *       allenai/OLMo {@code olmo/config.py} and {@code olmo/model.py}): fused {@code att_proj} and
 *       {@code ff_proj}.
 *   <li>{@code olmo}: transformers' OLMo ({@code modeling_olmo.py}): separate q/k/v and gate/up,
 *       weightless LayerNorm.
 *   <li>{@code olmo2}: transformers' OLMo-2 ({@code modeling_olmo2.py}): RMSNorm after the
 *       attention and the MLP, and QK-norm over the full projected width.
 *   <li>{@code olmoe}, {@code flex_olmo}: transformers' OLMoE and FlexOlmo, whose MLP is a mixture
 *       of experts ({@link Experts}): a router and one gated MLP per expert, stored one tensor
 *       each.
 * </ul>
 *
 * <ul>
 *   <li>{@code olmo3}: transformers' Olmo 3 ({@code modeling_olmo3.py}): OLMo-2's blocks and tensor
 *       names; layers of two attention kinds ({@code layer_types}: sliding-window or full) with a
 *       rotary embedding per kind (YaRN on the full layers).
 * </ul>
 *
 * <p>Adding a layout is one constant here and a case in the writer's switch (the compiler asks for
 * it), as long as its blocks are computations the model already has (norms before or after,
 * QK-norm, clip, biases, the attention kinds): the checkpoint validation, the model's loader and
 * the random-checkpoint writer all read the layout.
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
      return LayoutConfigReader.hfOlmo(this, j, where);
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
          none(),
          none(),
          List.of());
    }

    @Override
    public Stored finalNormWeight(OlmoConfig c) {
      return c.normAffine() ? new Stored("model.transformer.ln_f.weight", c.hiddenSize()) : null;
    }

    @Override
    public Stored finalNormBias(OlmoConfig c) {
      return c.normBias() ? new Stored("model.transformer.ln_f.bias", c.hiddenSize()) : null;
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
  },

  /**
   * transformers Olmo 3: {@code model_type} {@code olmo3}; OLMo-2's tensors, sliding-window and
   * full attention layers.
   */
  OLMO3("olmo3", "Olmo3ForCausalLM", true) {
    @Override
    boolean recognises(JsonObject j) {
      return modelType(j).equals("olmo3");
    }

    @Override
    OlmoConfig parse(JsonObject j, String where) {
      return LayoutConfigReader.olmo3(this, j, where);
    }
  },

  /**
   * transformers OLMoE ({@code modeling_olmoe.py}): pre-norm RMSNorm blocks ({@code
   * input_layernorm}, {@code post_attention_layernorm} before the MLP), QK-norm, an expert MLP.
   */
  OLMOE("olmoe", "OlmoeForCausalLM", false) {
    @Override
    boolean recognises(JsonObject j) {
      return modelType(j).equals("olmoe");
    }

    @Override
    OlmoConfig parse(JsonObject j, String where) {
      return LayoutConfigReader.experts(this, j, where, false);
    }
  },

  /** transformers FlexOlmo ({@code modeling_flex_olmo.py}): OLMo-2's blocks, OLMoE's experts. */
  FLEX_OLMO("flex_olmo", "FlexOlmoForCausalLM", true) {
    @Override
    boolean recognises(JsonObject j) {
      return modelType(j).equals("flex_olmo");
    }

    @Override
    OlmoConfig parse(JsonObject j, String where) {
      return LayoutConfigReader.experts(this, j, where, true);
    }
  };

  /**
   * Model types of the OLMo family that olmo-ppl recognises and refuses, with what they need that
   * the model does not compute.
   */
  static final Map<String, String> REFUSED =
      Map.of(
          "olmo_hybrid",
          "OLMo-Hybrid (model_type \"olmo_hybrid\"): 3 of every 4 layers are Gated DeltaNet"
              + " linear-recurrence layers, which olmo-ppl does not compute");

  /**
   * Rows of OLMo-1's tokenizer (allenai's GPT-NeoX-derived {@code gpt-neox-olmo-dolma-v1_5}): its
   * configs say {@code vocab_size} 50280 and pad the embedding to {@code embedding_size} 50304.
   */
  public static final int NEOX_VOCAB_SIZE = 50280;

  /** {@code <|endoftext|>} in OLMo-1's tokenizer, which terminated the training documents. */
  public static final int NEOX_EOS = 50279;

  private final String id;
  private final String architecture;
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

  /**
   * @return the {@code architectures} entry of the layout's config.json (transformers' class name)
   */
  public String architecture() {
    return architecture;
  }

  /**
   * Recognises the layout from the config's keys (not from {@code model_type} alone).
   *
   * @throws CheckpointException when no layout claims the config
   */
  public static CheckpointLayout of(JsonObject json, String where) {
    String refused = REFUSED.get(modelType(json));
    if (refused != null) {
      throw CheckpointErrors.refusedModel(where, refused);
    }
    for (CheckpointLayout l : values()) {
      if (l.recognises(json)) {
        return l;
      }
    }
    throw CheckpointErrors.unknownLayout(where, str(json, "model_type", ""));
  }

  abstract boolean recognises(JsonObject json);

  /** Reads the layout's own keys, with the layout's own defaults, into the normalised config. */
  OlmoConfig parse(JsonObject j, String where) {
    return LayoutConfigReader.transformers(this, j, where, olmo2Blocks);
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
    long qd = c.qDim(); // = h unless the config gives head_dim
    long kvd = c.kvDim();
    long inter = c.intermediateSize();
    boolean b = c.attentionBias();
    boolean moe = c.experts() != null;
    boolean after = c.normAfter();
    return new Block(
        List.of(
            new Stored(a + "q_proj.weight", qd, h),
            new Stored(a + "k_proj.weight", kvd, h),
            new Stored(a + "v_proj.weight", kvd, h)),
        b
            ? List.of(
                new Stored(a + "q_proj.bias", qd),
                new Stored(a + "k_proj.bias", kvd),
                new Stored(a + "v_proj.bias", kvd))
            : none(),
        one(a + "o_proj.weight", h, qd),
        b ? one(a + "o_proj.bias", h) : none(),
        moe ? none() : mlp(p + "mlp.", inter, h),
        none(),
        moe ? none() : one(p + "mlp.down_proj.weight", h, inter),
        none(),
        // OLMo-2 norms come after the sub-layers; OLMo-1's LayerNorm has no weights; OLMoE's
        // RMSNorms come before them, named as Llama's
        c.normAffine()
            ? one(p + (after ? "post_attention" : "input") + "_layernorm.weight", h)
            : none(),
        none(),
        c.normAffine()
            ? one(p + (after ? "post_feedforward" : "post_attention") + "_layernorm.weight", h)
            : none(),
        none(),
        c.qkNorm() ? one(a + "q_norm.weight", qd) : none(),
        c.qkNorm() ? one(a + "k_norm.weight", kvd) : none(),
        moe ? one(p + "mlp.gate.weight", c.experts().count(), h) : none(),
        moe ? experts(p + "mlp.experts.", c.experts().count(), inter, h) : List.of());
  }

  /** A gated MLP's {@code [up | gate]} rows. */
  private static List<Stored> mlp(String p, long inter, long h) {
    return List.of(
        new Stored(p + "up_proj.weight", inter, h), new Stored(p + "gate_proj.weight", inter, h));
  }

  /** The experts of a transformers MoE block, one gated MLP each, stored one tensor each. */
  private static List<Expert> experts(String p, int count, long inter, long h) {
    List<Expert> all = new ArrayList<>();
    for (int e = 0; e < count; e++) {
      all.add(new Expert(mlp(p + e + ".", inter, h), one(p + e + ".down_proj.weight", h, inter)));
    }
    return all;
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
}
