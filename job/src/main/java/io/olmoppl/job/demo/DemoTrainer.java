package io.olmoppl.job.demo;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import ai.djl.nn.Activation;
import ai.djl.training.GradientCollector;
import ai.djl.training.optimizer.Adam;
import ai.djl.training.optimizer.Optimizer;
import ai.djl.training.tracker.Tracker;
import io.olmoppl.checkpoint.CheckpointLayout;
import io.olmoppl.checkpoint.CheckpointLayout.Block;
import io.olmoppl.checkpoint.CheckpointLayout.Stored;
import io.olmoppl.checkpoint.OlmoConfig;
import io.olmoppl.checkpoint.OlmoConfig.NormType;
import io.olmoppl.checkpoint.writer.CheckpointMaker;
import io.olmoppl.checkpoint.writer.CheckpointMaker.OutputCopy;
import io.olmoppl.checkpoint.writer.SafetensorsWriter.Tensor;
import io.olmoppl.model.Ops;
import io.olmoppl.model.Precision;
import io.olmoppl.runtime.TorchEngine;
import io.olmoppl.tokenizer.OlmoTokenizer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Consumer;

/**
 * Trains the demo's tiny OLMo: an hf_olmo checkpoint with a tied embedding (like OLMo-1B), the real
 * OLMo tokenizer, learned with DJL's training API ({@link GradientCollector}, {@link Adam}) on CPU
 * from English text.
 *
 * <p>The forward pass is composed of the scorer's own {@link Ops} in the hf_olmo order (pre-norm,
 * no affine norms, no biases, fused {@code att_proj} = [Q | K | V] and {@code ff_proj} = [up |
 * gate]), so the checkpoint means to the scorer what it meant in training. Only the token ids that
 * occur in the training text (the active vocabulary) are trained; every other embedding row is
 * stored as zeros, so its logit is exactly 0 for any input. The loss therefore takes the full-width
 * softmax exactly: logsumexp over the active logits plus one constant logit ln(#zero rows).
 *
 * <p>Seeded: weights are initialised and batches drawn from a seeded {@link SplittableRandom},
 * there is no dropout, and libtorch runs on {@link Spec#threads} intra-op threads. Short runs give
 * the same bytes in separate processes; long runs (the demo's 600 steps) have been seen to drift
 * apart between processes, for a reason not found yet.
 */
public final class DemoTrainer {
  /** Embedding rows of the OLMo-1 (NeoX) tokenizer's models. */
  static final int VOCAB_ROWS = 50304;

  /**
   * What is trained and how; with the corpus and tokenizer bytes it makes the cache key.
   *
   * @param hidden C
   * @param layers blocks
   * @param heads H (= kv heads)
   * @param intermediate I, the gated MLP width
   * @param seqLen T, tokens per training row; also the checkpoint's max positions
   * @param batch rows per step
   * @param steps optimiser steps
   * @param lr peak Adam learning rate (linear warm-up, then cosine to a tenth)
   * @param warmup warm-up steps
   * @param seed initialisation and batch sampling
   * @param threads libtorch intra-op threads while training
   * @param chapters leading chapters of the bundled training text to train on; 0 = all
   */
  record Spec(
      int hidden,
      int layers,
      int heads,
      int intermediate,
      int seqLen,
      int batch,
      int steps,
      float lr,
      int warmup,
      long seed,
      int threads,
      int chapters) {

    /** The demo's model: about 90 CPU-seconds of training (one libtorch thread). */
    static Spec demo() {
      return new Spec(64, 2, 4, 128, 64, 16, 600, 1e-2f, 30, 20261129L, 1, 0);
    }

    CheckpointMaker maker() {
      return CheckpointMaker.small(CheckpointLayout.HF_OLMO)
          .withDims(hidden, layers, heads, heads, intermediate, seqLen)
          .withTied(true, OutputCopy.NONE)
          .withVocabRows(VOCAB_ROWS)
          .withSeed(seed);
    }
  }

  /**
   * What training did.
   *
   * @param seconds wall time of the optimisation
   * @param cpuSeconds CPU time the process spent meanwhile (the honest figure on a shared machine)
   * @param activeVocab distinct token ids of the training text (trained embedding rows)
   * @param trainTokens tokens of the training text
   * @param firstLoss mean NLL (nats per token) of the first step
   * @param lastLoss mean NLL of the last tenth of the steps
   * @param checkIds the first training rows (without their leading EOS), for {@link #checkNll}
   * @param checkNll per check row, its summed NLL under the trainer's own forward pass after
   *     training: the scorer must give the same numbers for the written checkpoint
   */
  record Result(
      double seconds,
      double cpuSeconds,
      int activeVocab,
      long trainTokens,
      double firstLoss,
      double lastLoss,
      List<long[]> checkIds,
      double[] checkNll) {}

  private final Spec spec;
  private final Consumer<String> log;

  DemoTrainer(Spec spec, Consumer<String> log) {
    this.spec = spec;
    this.log = log;
  }

  /**
   * Trains on {@code documents} and writes the checkpoint ({@code config.json}, {@code
   * model.safetensors}, {@code tokenizer.json}) into {@code out}.
   *
   * @param tokenizerJson the OLMo-1 tokenizer, copied into the checkpoint
   */
  Result train(List<String> documents, Path tokenizerJson, Path out) throws IOException {
    CheckpointMaker maker = spec.maker();
    OlmoConfig config = OlmoConfig.fromJson(maker.config(), "the demo model's config");
    if (config.normType() != NormType.LAYER_NORM
        || config.normAffine()
        || config.normBias()
        || config.normAfter()
        || config.qkNorm()
        || config.clipQkv() != null
        || config.attentionBias()
        || config.mlpBias()
        || config.scaleLogits()
        || !config.tied()) {
      throw new IllegalStateException(
          "the demo trainer implements OLMo-1B's block (pre-norm, weightless LayerNorm,"
              + " no biases, tied output); the checkpoint maker now writes "
              + config);
    }
    int eos = config.eosTokenId();
    long[] stream;
    int[] tokensPerDoc = new int[documents.size()];
    try (OlmoTokenizer tok = OlmoTokenizer.load(tokenizerJson)) {
      stream = tokenStream(tok, documents, eos, tokensPerDoc);
    }
    if (stream.length < spec.seqLen() + 2) {
      throw new IllegalArgumentException(
          "training text has "
              + stream.length
              + " tokens, fewer than one row of "
              + (spec.seqLen() + 1));
    }
    // active vocabulary: compact index of every token id that occurs
    int[] compact = new int[VOCAB_ROWS];
    Arrays.fill(compact, -1);
    int[] active = Arrays.stream(stream).mapToInt(Math::toIntExact).distinct().sorted().toArray();
    for (int i = 0; i < active.length; i++) {
      compact[active[i]] = i;
    }
    int[] ids = new int[stream.length];
    for (int i = 0; i < ids.length; i++) {
      ids[i] = compact[(int) stream[i]];
    }
    Engine engine = TorchEngine.get();
    int threadsBefore = ai.djl.pytorch.jni.JniUtils.getNumThreads();
    ai.djl.pytorch.jni.JniUtils.setNumThreads(spec.threads());
    long start = System.nanoTime();
    long cpuStart = processCpuNanos();
    double first = Double.NaN;
    double tail = 0;
    int tailSteps = Math.max(1, spec.steps() / 10);
    Map<String, float[]> trained;
    List<long[]> checkIds = new ArrayList<>();
    double[] checkNll;
    try (NDManager params = engine.newBaseManager()) {
      params.setName("demo-training");
      Weights w = new Weights(params, config, active.length, new SplittableRandom(spec.seed()));
      Optimizer adam =
          Adam.builder()
              .optLearningRateTracker(
                  Tracker.warmUp()
                      .setMainTracker(
                          Tracker.cosine()
                              .setBaseValue(spec.lr())
                              .optFinalValue(spec.lr() / 10)
                              .setMaxUpdates(Math.max(1, spec.steps() - spec.warmup()))
                              .build())
                      .optWarmUpSteps(spec.warmup())
                      .build())
              .build();
      float unseenLogit =
          (float) StrictMath.log(VOCAB_ROWS - active.length); // all zero rows together
      SplittableRandom sampler = new SplittableRandom(spec.seed() + 1);
      int t = spec.seqLen();
      int b = spec.batch();
      for (int step = 1; step <= spec.steps(); step++) {
        long[] x = new long[b * t];
        long[] y = new long[b * t];
        for (int r = 0; r < b; r++) {
          int s = sampler.nextInt(ids.length - t);
          for (int j = 0; j < t; j++) {
            x[r * t + j] = ids[s + j];
            y[r * t + j] = ids[s + j + 1];
          }
        }
        double loss;
        try (NDManager m = params.newSubManager();
            GradientCollector gc = engine.newGradientCollector()) {
          NDArray l =
              w.logProbs(
                      m,
                      m.create(x, new Shape(b, t)),
                      m.create(y, new Shape(b * t, 1)),
                      unseenLogit)
                  .mean()
                  .neg();
          gc.backward(l);
          loss = l.getFloat();
        }
        if (!Double.isFinite(loss)) {
          throw new IllegalStateException(
              "demo training diverged at step " + step + " (loss " + loss + ")");
        }
        w.update(adam);
        if (step == 1) {
          first = loss;
        }
        if (step > spec.steps() - tailSteps) {
          tail += loss / tailSteps;
        }
        if (step % 50 == 0 || step == spec.steps()) {
          log.accept(
              String.format(
                  java.util.Locale.ROOT,
                  "step %d/%d, loss %.2f nats/token, %.0f s (%.0f s CPU)",
                  step,
                  spec.steps(),
                  loss,
                  (System.nanoTime() - start) / 1e9,
                  (processCpuNanos() - cpuStart) / 1e9));
        }
      }
      trained = w.values();
      // rows that start at the first documents' EOS, scored once more by the trained weights
      int rows = 0;
      for (int s = 0; rows < Math.min(4, documents.size()) && s + t + 1 <= stream.length; rows++) {
        s += tokensPerDoc[rows] + 1;
      }
      long[] x = new long[rows * t];
      long[] y = new long[rows * t];
      for (int r = 0, s = 0; r < rows; r++) {
        long[] row = Arrays.copyOfRange(stream, s, s + t + 1);
        checkIds.add(Arrays.copyOfRange(row, 1, row.length));
        for (int j = 0; j < t; j++) {
          x[r * t + j] = compact[(int) row[j]];
          y[r * t + j] = compact[(int) row[j + 1]];
        }
        s += tokensPerDoc[r] + 1;
      }
      try (NDManager m = params.newSubManager()) {
        float[] lp =
            w.logProbs(
                    m,
                    m.create(x, new Shape(rows, t)),
                    m.create(y, new Shape(rows * t, 1)),
                    unseenLogit)
                .reshape(rows, t)
                .sum(new int[] {1})
                .toFloatArray();
        checkNll = new double[rows];
        for (int r = 0; r < rows; r++) {
          checkNll[r] = -lp[r];
        }
      }
    } finally {
      ai.djl.pytorch.jni.JniUtils.setNumThreads(threadsBefore);
    }
    double seconds = (System.nanoTime() - start) / 1e9;
    double cpuSeconds = (processCpuNanos() - cpuStart) / 1e9;
    write(maker, trained, active, tokenizerJson, out);
    return new Result(
        seconds, cpuSeconds, active.length, stream.length, first, tail, checkIds, checkNll);
  }

  private static long processCpuNanos() {
    return ((com.sun.management.OperatingSystemMXBean)
            java.lang.management.ManagementFactory.getOperatingSystemMXBean())
        .getProcessCpuTime();
  }

  /** Each document as [EOS] + its tokens, concatenated: the scorer's default prefix is EOS. */
  private static long[] tokenStream(
      OlmoTokenizer tok, List<String> documents, int eos, int[] lengths) {
    List<long[]> parts = new ArrayList<>();
    int n = 0;
    for (String d : documents) {
      long[] t = tok.encode(d);
      lengths[parts.size()] = t.length;
      parts.add(t);
      n += t.length + 1;
    }
    long[] s = new long[n];
    int k = 0;
    for (long[] p : parts) {
      s[k++] = eos;
      System.arraycopy(p, 0, s, k, p.length);
      k += p.length;
    }
    return s;
  }

  /**
   * Fills the maker's tensors (names and shapes of the layout) with the trained values and writes
   * the checkpoint.
   */
  private static void write(
      CheckpointMaker maker,
      Map<String, float[]> trained,
      int[] active,
      Path tokenizerJson,
      Path out)
      throws IOException {
    List<Tensor> tensors = new ArrayList<>();
    String emb = CheckpointLayout.HF_OLMO.embedding();
    for (Tensor layoutTensor : maker.tensors()) {
      float[] v = trained.get(layoutTensor.name());
      if (v == null) {
        throw new IllegalStateException("the trainer has no tensor " + layoutTensor.name());
      }
      if (layoutTensor.name().equals(emb)) {
        int c = (int) layoutTensor.shape()[1];
        float[] full = new float[layoutTensor.values().length]; // rows of unseen ids stay zero
        for (int i = 0; i < active.length; i++) {
          System.arraycopy(v, i * c, full, active[i] * c, c);
        }
        v = full;
      }
      if (v.length != layoutTensor.values().length) {
        throw new IllegalStateException(
            layoutTensor.name()
                + ": trained "
                + v.length
                + " values, layout expects "
                + layoutTensor.values().length);
      }
      tensors.add(new Tensor(layoutTensor.name(), layoutTensor.dtype(), layoutTensor.shape(), v));
    }
    if (tensors.size() != trained.size()) {
      throw new IllegalStateException(
          "trained " + trained.keySet() + " but the layout has " + tensors.size() + " tensors");
    }
    maker.write(out, tokenizerJson, tensors);
  }

  /**
   * The trainable tensors under their checkpoint names (the embedding holds active rows only), and
   * the forward.
   */
  private static final class Weights {
    private final OlmoConfig config;
    private final Map<String, NDArray> byName = new LinkedHashMap<>();
    private final NDArray embedding; // (A, C), A = active vocabulary
    private final NDArray[][]
        blocks; // per block: att_proj (3C, C), attn_out (C, C), ff_proj (2I, C), ff_out (C, I)

    Weights(NDManager m, OlmoConfig config, int activeRows, SplittableRandom rnd) {
      this.config = config;
      int c = config.hiddenSize();
      int i = config.intermediateSize();
      int layers = config.numHiddenLayers();
      double outStd =
          0.02 / StrictMath.sqrt(2.0 * layers); // GPT-2 style scaling of the residual projections
      embedding = param(m, CheckpointLayout.HF_OLMO.embedding(), rnd, 0.02, activeRows, c);
      blocks = new NDArray[layers][];
      for (int l = 0; l < layers; l++) {
        // the layout's names; hf_olmo stores each of these weights as one tensor
        Block names = CheckpointLayout.HF_OLMO.block(config, l);
        blocks[l] =
            new NDArray[] {
              param(m, only(names.qkv()), rnd, 0.02, 3 * c, c),
              param(m, only(names.out()), rnd, outStd, c, c),
              param(m, only(names.upGate()), rnd, 0.02, 2 * i, c),
              param(m, only(names.down()), rnd, outStd, c, i)
            };
      }
    }

    private static String only(List<Stored> weight) {
      if (weight.size() != 1) {
        throw new IllegalStateException("hf_olmo stores " + weight + " as more than one tensor");
      }
      return weight.get(0).name();
    }

    private NDArray param(
        NDManager m, String name, SplittableRandom rnd, double std, int rows, int cols) {
      float[] v = new float[rows * cols];
      for (int k = 0; k < v.length; k++) {
        // Box-Muller (SplittableRandom has no nextGaussian on Java 17), in StrictMath: Math may
        // round differently
        // once the JIT compiles this loop, and when that happens depends on the machine's load
        v[k] =
            (float)
                (std
                    * StrictMath.sqrt(-2 * StrictMath.log(1.0 - rnd.nextDouble()))
                    * StrictMath.cos(2 * Math.PI * rnd.nextDouble()));
      }
      // an engine-owned copy: create() may wrap the Java buffer, whose address (and alignment,
      // which picks the
      // BLAS kernel and so the rounding) differs from run to run
      NDArray view = m.create(v, new Shape(rows, cols));
      NDArray a = view.duplicate();
      view.close();
      a.setRequiresGradient(true);
      byName.put(name, a);
      return a;
    }

    /**
     * Log-probability of every target over the full logit width.
     *
     * @param x (B, T) compact input ids
     * @param y (B*T, 1) compact targets
     * @param unseenLogit ln(number of zero embedding rows): their summed share of the partition
     *     function
     * @return (B*T, 1) log p(y | x)
     */
    NDArray logProbs(NDManager m, NDArray x, NDArray y, float unseenLogit) {
      long b = x.getShape().get(0);
      int t = (int) x.getShape().get(1);
      int c = config.hiddenSize();
      int h = config.numAttentionHeads();
      int d = config.headDim();
      double eps = config.normEps();
      NDArray[] rope = Ops.ropeTables(m, t, d, config.ropeTheta()); // (T, D): cos, signed sin
      NDArray ones = m.ones(new Shape(c)); // the weightless LayerNorm's scale and shift
      NDArray zeros = m.zeros(new Shape(c));
      NDArray hs =
          x.getNDArrayInternal().embedding(x, embedding, SparseFormat.DENSE).head(); // (B, T, C)
      Ops.CausalBlocks causal =
          Ops.causalBlocks(m, new int[(int) b][(int) t], (int) t); // one segment per row
      for (NDArray[] blk : blocks) {
        NDArray qkv =
            Ops.linear(
                Ops.layerNorm(hs, ones, zeros, eps), blk[0], null, Precision.FP32); // (B, T, 3C)
        NDList parts = qkv.split(new long[] {c, 2L * c}, 2);
        NDArray q =
            Ops.rope(parts.get(0).reshape(b, t, h, d).transpose(0, 2, 1, 3), rope[0], rope[1]);
        NDArray k =
            Ops.rope(parts.get(1).reshape(b, t, h, d).transpose(0, 2, 1, 3), rope[0], rope[1]);
        NDArray v = parts.get(2).reshape(b, t, h, d).transpose(0, 2, 1, 3); // (B, H, T, D)
        NDArray att =
            Ops.attention(q, k, v, Precision.FP32, causal)
                .reshape(b, t, c); // (B, T, H, D) -> (B, T, C)
        hs = hs.add(Ops.linear(att, blk[1], null, Precision.FP32));
        NDList ug =
            Ops.linear(Ops.layerNorm(hs, ones, zeros, eps), blk[2], null, Precision.FP32)
                .split(2, 2);
        NDArray up = ug.get(0);
        NDArray gate = ug.get(1);
        // silu(gate) * up as Ops.swiglu, but out of place: autograd needs the sigmoid that swiglu
        // overwrites
        hs =
            hs.add(
                Ops.linear(
                    gate.mul(Activation.sigmoid(gate)).mul(up), blk[3], null, Precision.FP32));
      }
      NDArray flat = Ops.layerNorm(hs, ones, zeros, eps).reshape(b * t, c); // (N, C)
      NDArray logits = Ops.linear(flat, embedding, null, Precision.FP32); // (N, A), tied output
      NDArray all =
          NDArrays.concat(
              new NDList(logits, m.full(new Shape(b * t, 1), unseenLogit)), 1); // (N, A+1)
      return all.logSoftmax(-1).gather(y, -1);
    }

    /** One Adam step on every tensor, then clears the gradients (libtorch accumulates them). */
    void update(Optimizer adam) {
      for (Map.Entry<String, NDArray> e : byName.entrySet()) {
        try (NDArray g = e.getValue().getGradient()) {
          adam.update(e.getKey(), e.getValue(), g);
          g.subi(g);
        }
      }
    }

    Map<String, float[]> values() {
      Map<String, float[]> v = new LinkedHashMap<>();
      byName.forEach((k, a) -> v.put(k, a.toFloatArray()));
      return v;
    }
  }
}
