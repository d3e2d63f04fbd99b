package io.olmoppl.checkpoint.writer;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonObject;
import io.olmoppl.checkpoint.CheckpointLayout;
import io.olmoppl.checkpoint.DType;
import io.olmoppl.checkpoint.Experts;
import io.olmoppl.checkpoint.OlmoConfig;
import io.olmoppl.checkpoint.writer.LayoutConfigWriter.Dims;
import io.olmoppl.checkpoint.writer.SafetensorsWriter.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Consumer;

/**
 * Writes a random-initialised OLMo checkpoint in a real Hugging Face layout (config.json,
 * model.safetensors, tokenizer.json): for tests that need checkpoints the reference cases do not
 * cover, and for the developer commands {@code make-checkpoint}, {@code demo} and {@code bench}.
 * The tensor names and shapes are the {@link CheckpointLayout}'s and the config is {@link
 * LayoutConfigWriter}'s; this class only draws the values. The spark-submit jar leaves this package
 * out (executors never write checkpoints); the {@code ./olmo-ppl} launcher has it.
 *
 * @param layout hf_olmo, olmo, olmo2 or olmo3
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
 * @param outputCopy for tied models: also store the output matrix under its own name: NONE,
 *     IDENTICAL or DIFFERENT
 * @param experts the experts of an olmoe or flex_olmo checkpoint; null for the dense layouts
 */
public record CheckpointMaker(
    CheckpointLayout layout,
    int hidden,
    int layers,
    int heads,
    int kvHeads,
    int intermediate,
    int vocabRows,
    int maxPositions,
    boolean tied,
    DType dtype,
    long seed,
    OutputCopy outputCopy,
    Experts experts) {

  /** What a tied checkpoint stores under the output matrix's own name. */
  public enum OutputCopy {
    NONE,
    IDENTICAL,
    DIFFERENT
  }

  /**
   * Embedding rows of OLMo-1 checkpoints (allenai/OLMo-1B-hf, OLMo-7B: embedding_size 50304): the
   * NeoX-derived tokenizer's 50280 ids padded to a multiple of 128.
   */
  public static final int NEOX_ROWS = 50304;

  /**
   * Embedding rows of OLMo-2 checkpoints (allenai/OLMo-2-1124-7B: vocab_size 100352): dolma2's ids
   * padded.
   */
  public static final int DOLMA2_ROWS = 100352;

  /**
   * Standard deviation of a projection is {@code PROJECTION_GAIN / sqrt(fan_in)}: small enough that
   * a few random blocks keep the residual stream near unit scale, so log-probs stay spread out
   * instead of saturating.
   */
  static final double PROJECTION_GAIN = 0.3;

  /**
   * Seed of {@link #small}: any fixed value, so that a test writes the same checkpoint on every
   * run.
   */
  static final long DEFAULT_SEED = 1234;

  /**
   * Small defaults: 2 blocks, hidden 32, 4 heads, the layout's tokenizer width, the layout's
   * default tying.
   */
  public static CheckpointMaker small(CheckpointLayout layout) {
    return new CheckpointMaker(
        layout,
        32,
        2,
        4,
        4,
        64,
        layout == CheckpointLayout.OLMO2
                || layout == CheckpointLayout.OLMO3
                || layout == CheckpointLayout.FLEX_OLMO
            ? DOLMA2_ROWS
            : NEOX_ROWS,
        256,
        layout == CheckpointLayout.HF_OLMO,
        DType.F32,
        DEFAULT_SEED,
        OutputCopy.NONE,
        layout == CheckpointLayout.OLMOE || layout == CheckpointLayout.FLEX_OLMO
            ? new Experts(4, 2, false)
            : null);
  }

  public CheckpointMaker withTied(boolean t, OutputCopy copy) {
    return with(
        c -> {
          c.tied = t;
          c.outputCopy = copy;
        });
  }

  public CheckpointMaker withDims(
      int hidden, int layers, int heads, int kvHeads, int intermediate, int maxPositions) {
    return with(
        c -> {
          c.hidden = hidden;
          c.layers = layers;
          c.heads = heads;
          c.kvHeads = kvHeads;
          c.intermediate = intermediate;
          c.maxPositions = maxPositions;
        });
  }

  public CheckpointMaker withDtype(DType d) {
    return with(c -> c.dtype = d);
  }

  public CheckpointMaker withVocabRows(int rows) {
    return with(c -> c.vocabRows = rows);
  }

  public CheckpointMaker withSeed(long s) {
    return with(c -> c.seed = s);
  }

  /**
   * @param e the experts of an olmoe or flex_olmo checkpoint
   */
  public CheckpointMaker withExperts(Experts e) {
    return with(c -> c.experts = e);
  }

  /**
   * @return a copy of this maker with what {@code change} sets changed
   */
  private CheckpointMaker with(Consumer<Copy> change) {
    Copy c = new Copy(this);
    change.accept(c);
    return c.make();
  }

  /** The one place the withers copy a maker: every component, some of them then changed. */
  private static final class Copy {
    final CheckpointLayout layout;
    int hidden;
    int layers;
    int heads;
    int kvHeads;
    int intermediate;
    int vocabRows;
    int maxPositions;
    boolean tied;
    DType dtype;
    long seed;
    OutputCopy outputCopy;
    Experts experts;

    Copy(CheckpointMaker m) {
      layout = m.layout;
      hidden = m.hidden;
      layers = m.layers;
      heads = m.heads;
      kvHeads = m.kvHeads;
      intermediate = m.intermediate;
      vocabRows = m.vocabRows;
      maxPositions = m.maxPositions;
      tied = m.tied;
      dtype = m.dtype;
      seed = m.seed;
      outputCopy = m.outputCopy;
      experts = m.experts;
    }

    CheckpointMaker make() {
      return new CheckpointMaker(
          layout,
          hidden,
          layers,
          heads,
          kvHeads,
          intermediate,
          vocabRows,
          maxPositions,
          tied,
          dtype,
          seed,
          outputCopy,
          experts);
    }
  }

  /**
   * Writes the checkpoint into {@code out} (created if absent), copying {@code tokenizerJson} next
   * to it.
   */
  public void write(Path out, Path tokenizerJson) throws IOException {
    write(out, tokenizerJson, tensors());
  }

  /**
   * Writes the checkpoint into {@code out} with other values in the layout's tensors (a trained
   * model's, say): {@link #config()}, {@code tensors} and a copy of {@code tokenizerJson}.
   *
   * @param tensors {@link #tensors()}'s names and shapes, in any values
   */
  public void write(Path out, Path tokenizerJson, List<Tensor> tensors) throws IOException {
    Files.createDirectories(out);
    Files.copy(tokenizerJson, out.resolve("tokenizer.json"), StandardCopyOption.REPLACE_EXISTING);
    Files.writeString(
        out.resolve("config.json"),
        new GsonBuilder().setPrettyPrinting().serializeNulls().create().toJson(config()) + "\n");
    SafetensorsWriter.write(out.resolve("model.safetensors"), tensors);
  }

  /**
   * @return config.json in the layout's own keys
   */
  public JsonObject config() {
    JsonObject j =
        LayoutConfigWriter.configJson(
            layout,
            new Dims(
                hidden, layers, heads, kvHeads, intermediate, vocabRows, maxPositions, experts),
            tied,
            dtype);
    // a checkpoint with fewer embedding rows than the tokenizer's EOS id: its EOS is its last row
    // (a valid config)
    for (String k : new String[] {"eos_token_id", "bos_token_id"}) {
      if (j.has(k) && !j.get(k).isJsonNull() && j.get(k).getAsLong() >= vocabRows) {
        j.addProperty(k, vocabRows - 1);
      }
    }
    return j;
  }

  /**
   * @return the tensors the layout requires for {@link #config()}, in the layout's order:
   *     projections and the embedding random normal, norm weights around 1, then the output matrix
   *     as {@link #outputCopy} says
   */
  public List<Tensor> tensors() {
    OlmoConfig c = OlmoConfig.fromJson(config(), layout.id() + " config");
    SplittableRandom rnd = new SplittableRandom(seed);
    List<Tensor> t = new ArrayList<>();
    String emb = layout.embedding();
    Tensor embedding = null;
    for (Map.Entry<String, long[]> e : layout.tensors(c).entrySet()) {
      long[] shape = e.getValue();
      Tensor x =
          shape.length == 1
              ? around1(rnd, e.getKey(), (int) shape[0])
              : normal(
                  rnd,
                  e.getKey(),
                  e.getKey().equals(emb) ? 1.0 : PROJECTION_GAIN,
                  (int) shape[0],
                  (int) shape[1]);
      if (e.getKey().equals(emb)) {
        embedding = x;
      }
      t.add(x);
    }
    String out = layout.output();
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
