package io.olmoppl.job.demo;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import ai.djl.training.optimizer.Adam;
import ai.djl.training.optimizer.Optimizer;
import ai.djl.training.tracker.Tracker;
import io.olmoppl.checkpoint.CheckpointLayout;
import io.olmoppl.checkpoint.OlmoConfig;
import io.olmoppl.checkpoint.OlmoConfig.NormType;
import io.olmoppl.checkpoint.writer.CheckpointMaker;
import io.olmoppl.checkpoint.writer.CheckpointMaker.OutputCopy;
import io.olmoppl.checkpoint.writer.SafetensorsWriter.Tensor;
import io.olmoppl.model.Ops;
import io.olmoppl.runtime.TorchEngine;
import io.olmoppl.tokenizer.OlmoTokenizer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
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
      DemoWeights w =
          new DemoWeights(params, config, active.length, new SplittableRandom(spec.seed()));
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
}
