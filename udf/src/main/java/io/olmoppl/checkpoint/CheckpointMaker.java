package io.olmoppl.checkpoint;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonObject;
import io.olmoppl.checkpoint.OlmoConfig.Layout;
import io.olmoppl.checkpoint.SafetensorsWriter.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Writes a random-initialised OLMo checkpoint in a real Hugging Face layout (config.json, model.safetensors,
 * tokenizer.json): for the demo, and for tests that need checkpoints the reference cases do not cover.
 *
 * @param layout hf_olmo, olmo or olmo2
 * @param hidden C
 * @param layers number of blocks
 * @param heads H
 * @param kvHeads K (hf_olmo writes it as n_kv_heads)
 * @param intermediate I, the gated MLP width
 * @param vocabRows embedding rows
 * @param maxPositions context length
 * @param tied whether the config ties the output matrix to the embedding
 * @param dtype stored dtype
 * @param seed random seed
 * @param outputCopy for tied models: also store the output matrix under its own name: NONE, IDENTICAL or DIFFERENT
 */
public record CheckpointMaker(Layout layout, int hidden, int layers, int heads, int kvHeads, int intermediate,
    int vocabRows, int maxPositions, boolean tied, DType dtype, long seed, OutputCopy outputCopy) {

  /** What a tied checkpoint stores under the output matrix's own name. */
  public enum OutputCopy {
    NONE,
    IDENTICAL,
    DIFFERENT
  }

  /** Small defaults: 2 blocks, hidden 32, 4 heads, the NeoX vocabulary width. */
  public static CheckpointMaker small(Layout layout) {
    return new CheckpointMaker(layout, 32, 2, 4, 4, 64, layout == Layout.OLMO2 ? 100352 : 50304, 256,
        layout == Layout.HF_OLMO, DType.F32, 1234, OutputCopy.NONE);
  }

  public CheckpointMaker withTied(boolean t, OutputCopy copy) {
    return new CheckpointMaker(layout, hidden, layers, heads, kvHeads, intermediate, vocabRows, maxPositions, t,
        dtype, seed, copy);
  }

  public CheckpointMaker withDims(int hidden, int layers, int heads, int kvHeads, int intermediate, int maxPositions) {
    return new CheckpointMaker(layout, hidden, layers, heads, kvHeads, intermediate, vocabRows, maxPositions, tied,
        dtype, seed, outputCopy);
  }

  public CheckpointMaker withDtype(DType d) {
    return new CheckpointMaker(layout, hidden, layers, heads, kvHeads, intermediate, vocabRows, maxPositions, tied,
        d, seed, outputCopy);
  }

  public CheckpointMaker withVocabRows(int rows) {
    return new CheckpointMaker(layout, hidden, layers, heads, kvHeads, intermediate, rows, maxPositions, tied,
        dtype, seed, outputCopy);
  }

  public CheckpointMaker withSeed(long s) {
    return new CheckpointMaker(layout, hidden, layers, heads, kvHeads, intermediate, vocabRows, maxPositions, tied,
        dtype, s, outputCopy);
  }

  /** Writes the checkpoint into {@code out} (created if absent), copying {@code tokenizerJson} next to it. */
  public void write(Path out, Path tokenizerJson) throws IOException {
    Files.createDirectories(out);
    Files.copy(tokenizerJson, out.resolve("tokenizer.json"), StandardCopyOption.REPLACE_EXISTING);
    Files.writeString(out.resolve("config.json"), new GsonBuilder().setPrettyPrinting().serializeNulls().create()
        .toJson(config()) + "\n");
    SafetensorsWriter.write(out.resolve("model.safetensors"), tensors());
  }

  /** @return the tensors in the layout's names */
  public List<Tensor> tensors() {
    SplittableRandom rnd = new SplittableRandom(seed);
    List<Tensor> t = new ArrayList<>();
    int kvd = kvHeads * (hidden / heads);
    String emb = Checkpoint.embeddingName(layout);
    Tensor embedding = normal(rnd, emb, 1.0, vocabRows, hidden);
    t.add(embedding);
    for (int i = 0; i < layers; i++) {
      if (layout == Layout.HF_OLMO) {
        String p = "model.transformer.blocks." + i + ".";
        t.add(normal(rnd, p + "att_proj.weight", 0.3, hidden + 2 * kvd, hidden));
        t.add(normal(rnd, p + "attn_out.weight", 0.3, hidden, hidden));
        t.add(normal(rnd, p + "ff_proj.weight", 0.3, 2 * intermediate, hidden));
        t.add(normal(rnd, p + "ff_out.weight", 0.3, hidden, intermediate));
      } else {
        String p = "model.layers." + i + ".";
        t.add(normal(rnd, p + "self_attn.q_proj.weight", 0.3, hidden, hidden));
        t.add(normal(rnd, p + "self_attn.k_proj.weight", 0.3, kvd, hidden));
        t.add(normal(rnd, p + "self_attn.v_proj.weight", 0.3, kvd, hidden));
        t.add(normal(rnd, p + "self_attn.o_proj.weight", 0.3, hidden, hidden));
        t.add(normal(rnd, p + "mlp.gate_proj.weight", 0.3, intermediate, hidden));
        t.add(normal(rnd, p + "mlp.up_proj.weight", 0.3, intermediate, hidden));
        t.add(normal(rnd, p + "mlp.down_proj.weight", 0.3, hidden, intermediate));
        if (layout == Layout.OLMO2) {
          t.add(around1(rnd, p + "self_attn.q_norm.weight", hidden));
          t.add(around1(rnd, p + "self_attn.k_norm.weight", kvd));
          t.add(around1(rnd, p + "post_attention_layernorm.weight", hidden));
          t.add(around1(rnd, p + "post_feedforward_layernorm.weight", hidden));
        }
      }
    }
    if (layout == Layout.OLMO2) {
      t.add(around1(rnd, "model.norm.weight", hidden));
    }
    String out = Checkpoint.outputName(layout);
    if (!tied) {
      t.add(normal(rnd, out, 1.0, vocabRows, hidden));
    } else if (outputCopy == OutputCopy.IDENTICAL) {
      t.add(new Tensor(out, dtype, embedding.shape(), embedding.values().clone()));
    } else if (outputCopy == OutputCopy.DIFFERENT) {
      float[] v = embedding.values().clone();
      v[v.length / 2] += 0.5f;
      t.add(new Tensor(out, dtype, embedding.shape(), v));
    }
    return t;
  }

  /** @return config.json in the layout's own keys */
  public JsonObject config() {
    JsonObject c = new JsonObject();
    if (layout == Layout.HF_OLMO) {
      c.add("architectures", arr("OLMoForCausalLM"));
      c.addProperty("model_type", "hf_olmo");
      c.addProperty("d_model", hidden);
      c.addProperty("n_heads", heads);
      c.addProperty("n_kv_heads", kvHeads);
      c.addProperty("n_layers", layers);
      c.addProperty("mlp_hidden_size", 2 * intermediate);
      c.addProperty("vocab_size", 50280);
      c.addProperty("embedding_size", vocabRows);
      c.addProperty("max_sequence_length", maxPositions);
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
      c.addProperty("eos_token_id", 50279);
      c.addProperty("pad_token_id", 1);
    } else {
      boolean olmo2 = layout == Layout.OLMO2;
      c.add("architectures", arr(olmo2 ? "Olmo2ForCausalLM" : "OlmoForCausalLM"));
      c.addProperty("model_type", olmo2 ? "olmo2" : "olmo");
      c.addProperty("hidden_size", hidden);
      c.addProperty("intermediate_size", intermediate);
      c.addProperty("num_attention_heads", heads);
      c.addProperty("num_hidden_layers", layers);
      c.addProperty("num_key_value_heads", kvHeads);
      c.addProperty("vocab_size", vocabRows);
      c.addProperty("max_position_embeddings", maxPositions);
      c.addProperty("rope_theta", olmo2 ? 500000.0 : 10000.0);
      c.add("rope_scaling", null);
      c.addProperty("attention_bias", false);
      if (olmo2) {
        c.addProperty("rms_norm_eps", 1e-6);
      } else {
        c.add("clip_qkv", null);
      }
      c.addProperty("tie_word_embeddings", tied);
      c.addProperty("eos_token_id", olmo2 ? 100257 : 50279);
      c.addProperty("pad_token_id", olmo2 ? 100277 : 1);
      c.add("bos_token_id", null);
    }
    c.addProperty("torch_dtype", switch (dtype) {
      case F32 -> "float32";
      case F16 -> "float16";
      case BF16 -> "bfloat16";
    });
    return c;
  }

  private static com.google.gson.JsonArray arr(String s) {
    com.google.gson.JsonArray a = new com.google.gson.JsonArray();
    a.add(s);
    return a;
  }

  private Tensor normal(SplittableRandom rnd, String name, double gain, int rows, int cols) {
    float[] v = new float[rows * cols];
    double std = gain / Math.sqrt(cols);
    for (int i = 0; i < v.length; i++) {
      v[i] = (float) (gaussian(rnd) * std);
    }
    return new Tensor(name, dtype, new long[] {rows, cols}, v);
  }

  private Tensor around1(SplittableRandom rnd, String name, int n) {
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = (float) (1.0 + 0.1 * gaussian(rnd));
    }
    return new Tensor(name, dtype, new long[] {n}, v);
  }

  private static double gaussian(SplittableRandom rnd) {
    // Box-Muller: SplittableRandom has no nextGaussian on Java 17
    double u = 1.0 - rnd.nextDouble();
    double w = rnd.nextDouble();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * w);
  }
}
