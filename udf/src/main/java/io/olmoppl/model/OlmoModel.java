package io.olmoppl.model;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import io.olmoppl.DjlSettings;
import io.olmoppl.checkpoint.Checkpoint;
import io.olmoppl.checkpoint.OlmoConfig;
import io.olmoppl.checkpoint.OlmoConfig.NormType;
import io.olmoppl.checkpoint.WeightSource;
import java.util.ArrayList;
import java.util.List;

/**
 * The OLMo forward pass on DJL's PyTorch engine, for OLMo-1 (both checkpoint layouts) and OLMo-2.
 *
 * <p>Mirrors allenai {@code olmo/model.py} ({@code OLMoSequentialBlock}) and transformers {@code modeling_olmo.py} /
 * {@code modeling_olmo2.py}. Dimension letters: B batch, T tokens, C hidden, H heads, K kv heads, G = H/K query heads
 * per kv head, D head dim, I gated MLP width, V logit width (embedding rows), N scored positions.
 *
 * <p>Memory: the weights live in one manager that is {@link NDManager#cap() capped} after loading. Every op is called
 * on an activation (DJL puts a result in its receiver's manager), projections go through {@code Ops.linear(x, W)} and the
 * embedding through {@code embedding(ids, W)}, so no weight is ever a receiver and nothing attaches to the weights.
 * The tied embedding/output matrix is one tensor referenced by both roles.
 */
public final class OlmoModel implements AutoCloseable {
  /** Bytes of fp32 logits one log-softmax chunk may hold: the full [N, V] logits are never materialised. */
  static final long LOGIT_CHUNK_BYTES = 64L << 20;

  private final OlmoConfig config;
  private final Precision precision;
  private final Device device;
  private final NDManager weights;
  private final NDArray embedding; // (V, C)
  private final NDArray output; // (V, C); the same object as embedding when tied
  private final NDArray outputBias; // (V) or null
  private final NDArray finalNormWeight; // (C) or null
  private final NDArray finalNormBias; // (C) or null
  private final Layer[] layers;
  private final boolean tied;
  private volatile java.util.concurrent.Semaphore batchPermits; // null: unbounded (CPU)

  /** One block's weights. Fused: qkv = [Q | K | V] rows, upGate = [up | gate] rows (hf_olmo's own layout). */
  record Layer(NDArray qkv, NDArray qkvBias, NDArray out, NDArray outBias, NDArray upGate, NDArray upGateBias,
      NDArray down, NDArray downBias, NDArray attnNormW, NDArray attnNormB, NDArray ffNormW, NDArray ffNormB,
      NDArray qNormW, NDArray kNormW) {}

  /** One forward row: input tokens plus the token after the last one, and the first position whose next token counts. */
  public record Window(long[] tokens, int firstScored) {
    public Window {
      if (tokens.length < 2 || firstScored < 0 || firstScored > tokens.length - 2) {
        throw new IllegalArgumentException("a window needs at least one scored target");
      }
    }

    /** @return input length (tokens fed to the model) */
    public int inputLength() {
      return tokens.length - 1;
    }

    /** @return number of scored targets */
    public int scored() {
      return tokens.length - 1 - firstScored;
    }
  }

  /**
   * Loads a model from a checkpoint (or a broadcast copy of it).
   *
   * @param ckpt the validated checkpoint (config and tying decision)
   * @param source where the tensor bytes come from (usually {@code ckpt} itself)
   * @param device the engine device
   * @param precision matmul precision
   */
  public static OlmoModel load(Checkpoint ckpt, WeightSource source, Device device, Precision precision) {
    return load(ckpt.config(), ckpt.tying(), source, device, precision);
  }

  /**
   * Loads a model from a manifest's config and tying decision (executors with broadcast weights).
   *
   * @param source the tensor bytes (files or broadcast blocks)
   */
  public static OlmoModel load(OlmoConfig config, io.olmoppl.checkpoint.Tying tying, WeightSource source,
      Device device, Precision precision) {
    return new OlmoModel(config, tying.tied(), tying.embeddingTensor(), tying.outputTensor(), source, device,
        precision);
  }

  OlmoModel(OlmoConfig c, boolean tied, String embName, String outName, WeightSource src, Device device,
      Precision precision) {
    this.config = c;
    this.precision = precision;
    this.device = device;
    this.tied = tied;
    this.weights = engine().newBaseManager(device);
    weights.setName("olmo-weights");
    try {
      WeightLoader.Loaded w = new WeightLoader(src, weights, precision).load(c, tied, embName, outName);
      embedding = w.embedding();
      output = w.output();
      outputBias = w.outputBias();
      layers = w.layers();
      finalNormWeight = w.finalNormWeight();
      finalNormBias = w.finalNormBias();
      weights.cap(); // any op that would attach a result to the weights now throws
    } catch (RuntimeException e) {
      weights.close();
      throw e;
    }
  }

  public OlmoConfig config() {
    return config;
  }

  public Precision precision() {
    return precision;
  }

  public Device device() {
    return device;
  }

  /** @return whether the output projection is the embedding tensor itself */
  public boolean tied() {
    return tied;
  }

  /** @return the one tensor used as input embedding (and, when tied, as output projection) */
  public NDArray embedding() {
    return embedding;
  }

  /** @return the tensor used as output projection; {@code == embedding()} when tied */
  public NDArray output() {
    return output;
  }

  /** @return the capped manager that owns every weight */
  public NDManager weightsManager() {
    return weights;
  }

  /**
   * Scores windows in one padded batch: for each window, {@code log p(tokens[j+1] | tokens[0..j])} for every scored
   * position j, over the full logit width. Rows are right-padded; with a causal mask padding never reaches a real
   * position, so a window's scores do not depend on its batch companions.
   *
   * @param batchManager per-batch scope; every intermediate is attached to it and freed when it closes
   * @return per window, its scored log-probs in order
   */
  public float[][] logProbs(NDManager batchManager, List<Window> windows) {
    java.util.concurrent.Semaphore permits = batchPermits;
    if (permits == null) {
      return logProbsUnbounded(batchManager, windows);
    }
    permits.acquireUninterruptibly();
    try {
      return logProbsUnbounded(batchManager, windows);
    } finally {
      permits.release();
    }
  }

  /**
   * Bounds how many batches run at once on this model (tasks sharing one GPU share its model and its memory).
   *
   * @param n concurrent batches, at least 1
   */
  public void limitConcurrentBatches(int n) {
    batchPermits = new java.util.concurrent.Semaphore(Math.max(1, n), true);
  }

  private float[][] logProbsUnbounded(NDManager batchManager, List<Window> windows) {
    int b = windows.size();
    int t = windows.stream().mapToInt(Window::inputLength).max().orElse(0);
    long[] ids = new long[b * t];
    int n = windows.stream().mapToInt(Window::scored).sum();
    long[] rows = new long[n];
    long[] targets = new long[n];
    int k = 0;
    for (int i = 0; i < b; i++) {
      Window w = windows.get(i);
      System.arraycopy(w.tokens(), 0, ids, i * t, w.inputLength());
      for (int j = w.firstScored(); j < w.inputLength(); j++) {
        rows[k] = (long) i * t + j;
        targets[k++] = w.tokens()[j + 1];
      }
    }
    NDManager m = batchManager;
    NDArray idArr = m.create(ids, new Shape(b, t)); // (B, T)
    NDArray x = hidden(m, idArr, b, t); // (B, T, C) after the final norm
    NDArray flat = x.reshape(b * (long) t, config.hiddenSize()); // (B*T, C)
    NDArray rowIdx = m.create(rows);
    NDArray picked = rowIdx.getNDArrayInternal().embedding(rowIdx, flat, SparseFormat.DENSE).head(); // (N, C)
    float[] lp = new float[n];
    long chunk = Math.max(1, LOGIT_CHUNK_BYTES / (4L * config.vocabRows()));
    for (int s = 0; s < n; s += chunk) {
      int e = (int) Math.min(n, s + chunk);
      try (NDManager cm = m.newSubManager()) {
        NDArray xs = picked.get(s + ":" + e); // (n, C)
        cm.tempAttachAll(xs);
        NDArray logits = Ops.linear(xs, output, outputBias, precision); // (n, V) fp32
        if (config.scaleLogits()) {
          logits = logits.mul(1.0 / Math.sqrt(config.hiddenSize()));
        }
        NDArray tgt = cm.create(java.util.Arrays.copyOfRange(targets, s, e)).reshape(e - s, 1);
        // log p = logits[target] - logsumexp(logits), in float32 over all V rows (padding rows included)
        float[] part = logits.logSoftmax(-1).gather(tgt, -1).toFloatArray();
        System.arraycopy(part, 0, lp, s, e - s);
      }
    }
    float[][] out = new float[b][];
    k = 0;
    for (int i = 0; i < b; i++) {
      out[i] = java.util.Arrays.copyOfRange(lp, k, k + windows.get(i).scored());
      k += out[i].length;
    }
    return out;
  }

  /** Embedding, blocks and final norm. @return (B, T, C) float32 */
  NDArray hidden(NDManager m, NDArray ids, int b, int t) {
    OlmoConfig c = config;
    int h = c.numAttentionHeads();
    int kvh = c.numKeyValueHeads();
    int d = c.headDim();
    long cdim = c.hiddenSize();
    NDArray x = ids.getNDArrayInternal().embedding(ids, embedding, SparseFormat.DENSE).head(); // (B, T, C)
    if (x.getDataType() != DataType.FLOAT32) {
      x = x.toType(DataType.FLOAT32, false);
    }
    NDArray[] rope = Ops.ropeTables(m, t, d, c.ropeTheta()); // (T, D) each
    NDArray mask = Ops.causalMask(m, t); // (T, T)
    for (Layer l : layers) {
      NDArray hIn = c.normAfter() ? x : norm(x, l.attnNormW(), l.attnNormB());
      NDArray qkv = Ops.linear(hIn, l.qkv(), l.qkvBias(), precision); // (B, T, C + 2*K*D)
      if (c.clipQkv() != null) {
        qkv = qkv.clip(-c.clipQkv(), c.clipQkv());
      }
      NDList parts = qkv.split(new long[] {cdim, cdim + c.kvDim()}, 2);
      NDArray q = parts.get(0); // (B, T, C)
      NDArray k = parts.get(1); // (B, T, K*D)
      NDArray v = parts.get(2);
      if (c.qkNorm()) {
        // OLMo-2 QK-norm: RMSNorm over the full projected width, before the head split
        q = rmsNorm(q, l.qNormW());
        k = rmsNorm(k, l.kNormW());
      }
      q = Ops.rope(q.reshape(b, t, h, d).transpose(0, 2, 1, 3), rope[0], rope[1]); // (B, H, T, D)
      k = Ops.rope(k.reshape(b, t, kvh, d).transpose(0, 2, 1, 3), rope[0], rope[1]); // (B, K, T, D)
      v = v.reshape(b, t, kvh, d).transpose(0, 2, 1, 3); // (B, K, T, D)
      NDArray att = Ops.attention(q, k, v, mask, precision); // (B, H, T, D)
      att = att.transpose(0, 2, 1, 3).reshape(b, t, cdim); // (B, T, C)
      NDArray a = Ops.linear(att, l.out(), l.outBias(), precision);
      if (c.normAfter()) {
        a = norm(a, l.attnNormW(), l.attnNormB());
      }
      x = x.add(a);
      NDArray fIn = c.normAfter() ? x : norm(x, l.ffNormW(), l.ffNormB());
      NDArray u = Ops.linear(fIn, l.upGate(), l.upGateBias(), precision); // (B, T, 2I): [up | gate]
      NDList ug = u.split(2, 2);
      NDArray act = Ops.swiglu(ug.get(0), ug.get(1)); // silu(gate) * up
      NDArray f = Ops.linear(act, l.down(), l.downBias(), precision); // (B, T, C)
      if (c.normAfter()) {
        f = norm(f, l.ffNormW(), l.ffNormB());
      }
      x = x.add(f);
    }
    return norm(x, finalNormWeight, finalNormBias);
  }

  /** The layout's norm, in float32. */
  private NDArray norm(NDArray x, NDArray w, NDArray b) {
    NDArray y = config.normType() == NormType.RMS_NORM ? Ops.rmsNorm(x, config.normEps())
        : Ops.layerNorm(x, config.normEps());
    if (w != null) {
      y = y.mul(w);
    }
    return b == null ? y : y.add(b);
  }

  private NDArray rmsNorm(NDArray x, NDArray w) {
    return Ops.rmsNorm(x, config.normEps()).mul(w);
  }

  /** Builds a device-local per-batch manager for {@link #logProbs}. */
  public NDManager newBatchManager() {
    NDManager m = engine().newBaseManager(device);
    m.setName("olmo-batch");
    return m;
  }

  /** @return the PyTorch engine (the tokenizers jar registers a second engine, which must never be picked) */
  public static Engine engine() {
    DjlSettings.configure();
    return Engine.getEngine("PyTorch");
  }

  @Override
  public void close() {
    weights.close();
  }

  /**
   * @return the distinct embedding-side matrices the model holds, for tests: the embedding, plus the output matrix when
   *     untied (one array when tied: both roles are the same tensor)
   */
  public List<NDArray> distinctWeights() {
    List<NDArray> all = new ArrayList<>();
    all.add(embedding);
    if (!tied) {
      all.add(output);
    }
    return all;
  }
}
