package io.olmoppl.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.olmoppl.checkpoint.AttentionKind;
import io.olmoppl.checkpoint.Checkpoint;
import io.olmoppl.checkpoint.OlmoConfig;
import io.olmoppl.checkpoint.Tying;
import io.olmoppl.checkpoint.WeightSource;
import io.olmoppl.runtime.NativeAllocator;
import io.olmoppl.runtime.TorchEngine;
import java.util.ArrayList;
import java.util.List;
import java.util.function.UnaryOperator;

/**
 * The OLMo forward pass on DJL's PyTorch engine, for OLMo-1 (both checkpoint layouts), OLMo-2 and
 * Olmo 3 (sliding-window and full attention layers, a rotary table per kind).
 *
 * <p>Mirrors allenai {@code olmo/model.py} ({@code OLMoSequentialBlock}) and transformers {@code
 * modeling_olmo.py} / {@code modeling_olmo2.py}. Dimension letters: B batch, T tokens, C hidden, H
 * heads, K kv heads, G = H/K query heads per kv head, D head dim, I gated MLP width, V logit width
 * (embedding rows), N scored positions.
 *
 * <p>A layer is built from a {@link Mixer} ({@link Attention}) and a {@link FeedForward} ({@link
 * Mlp}, or {@link MixtureOfExperts} for OLMoE and FlexOlmo); the sizes they and the {@link
 * LogitHead} bound their temporaries by are the {@link MemoryBudget}'s.
 *
 * <p>Memory: the weights live in one manager that is {@link NDManager#cap() capped} after loading.
 * Every op is called on an activation (DJL puts a result in its receiver's manager), projections go
 * through {@code Ops.linear(x, W)} and the embedding through {@code embedding(ids, W)}, so no
 * weight is ever a receiver and nothing attaches to the weights. The tied embedding/output matrix
 * is one tensor referenced by both roles.
 */
public final class OlmoModel implements AutoCloseable {
  private final OlmoConfig config;
  private final Precision precision;
  private final Device device;
  private final MemoryBudget budget;
  private final NDManager weightsManager;
  private final OlmoWeights weights;
  private final boolean tied;
  private final int mlpSliceWidth;
  private final Layer[] layers;
  private final Norm finalNorm;
  private final LogitHead head;

  /**
   * One block: a norm and a mixer, then a norm and a feed-forward part, each sublayer added to the
   * residual stream.
   */
  private record Layer(Norm attnNorm, Mixer attention, Norm ffNorm, FeedForward mlp) {}

  /**
   * Loads a model from a checkpoint (or a broadcast copy of it).
   *
   * @param ckpt the validated checkpoint (config and tying decision)
   * @param source where the tensor bytes come from (usually {@code ckpt} itself)
   * @param device the engine device
   * @param precision matmul precision
   */
  public static OlmoModel load(
      Checkpoint ckpt, WeightSource source, Device device, Precision precision) {
    return load(ckpt.config(), ckpt.tying(), source, device, precision);
  }

  /**
   * Loads a model from a manifest's config and tying decision (executors with broadcast weights).
   *
   * @param source the tensor bytes (files or broadcast blocks)
   */
  public static OlmoModel load(
      OlmoConfig config, Tying tying, WeightSource source, Device device, Precision precision) {
    return new OlmoModel(
        config,
        tying.tied(),
        tying.embeddingTensor(),
        tying.outputTensor(),
        source,
        device,
        precision);
  }

  OlmoModel(
      OlmoConfig c,
      boolean tied,
      String embName,
      String outName,
      WeightSource src,
      Device device,
      Precision precision) {
    this.config = c;
    this.precision = precision;
    this.device = device;
    this.tied = tied;
    this.budget = new MemoryBudget(device.isGpu());
    if (!budget.gpu()) {
      NativeAllocator.tune();
    }
    this.weightsManager = TorchEngine.get().newBaseManager(device);
    weightsManager.setName("olmo-weights");
    try {
      weights = OlmoWeights.load(src, weightsManager, precision, c, tied, embName, outName);
      // views of the weights (MLP and output slices) are made before the manager is capped
      mlpSliceWidth = budget.mlpSliceWidth(c.intermediateSize());
      layers = new Layer[c.numHiddenLayers()];
      for (int i = 0; i < layers.length; i++) {
        layers[i] = layer(weights.layers()[i], c.attention().kind(i));
      }
      finalNorm = norm(weights.finalNormWeight(), weights.finalNormBias());
      long sliceRows = budget.logitSliceRows(weights.output().getShape().get(0));
      head =
          new LogitHead(
              weights.output(),
              weights.outputBias(),
              c.scaleLogits() ? 1.0 / Math.sqrt(c.hiddenSize()) : 1.0,
              precision,
              sliceRows,
              budget.logitRows(sliceRows));
      weightsManager.cap(); // any op that would attach a result to the weights now throws
      if (!budget.gpu()) {
        NativeAllocator.trim(); // loading's temporaries are freed
      }
    } catch (RuntimeException e) {
      weightsManager.close();
      throw e;
    }
  }

  /** The parts of one layer; where a layer kind (sliding-window attention, experts) is chosen. */
  private Layer layer(OlmoWeights.LayerWeights w, AttentionKind kind) {
    return new Layer(
        norm(w.attnNormW(), w.attnNormB()),
        new Attention(config, w, precision, kind),
        norm(w.ffNormW(), w.ffNormB()),
        config.experts() == null
            ? new Mlp(w, config.intermediateSize(), mlpSliceWidth, precision)
            : new MixtureOfExperts(config, w, mlpSliceWidth, precision));
  }

  private Norm norm(NDArray w, NDArray b) {
    return Norm.of(config, w, b, weights.ones(), weights.zeros());
  }

  /**
   * Scores windows in one batch: for each window, {@code log p(tokens[j+1] | tokens[0..j])} for
   * every scored position j, over the full logit width. The windows run in the forward passes of
   * {@link #passes}: several windows share a row end to end, each with its own positions and
   * attending only to itself (causal within its segment), so a window's scores do not depend on its
   * companions beyond floating-point summation order. Not thread-safe for concurrent calls on a GPU
   * model (the engine's one compute thread calls it).
   *
   * @param batchManager per-batch scope; every intermediate is attached to it and freed when it
   *     closes
   * @return per window (in the order given), its scored log-probs in order
   */
  public float[][] logProbs(NDManager batchManager, List<Window> windows) {
    return logProbs(batchManager, passes(windows), windows.size());
  }

  /**
   * {@link #logProbs(NDManager, List)} over passes already planned by {@link #passes}.
   *
   * @param windows how many windows the passes hold
   */
  public float[][] logProbs(NDManager batchManager, List<Pass> passes, int windows) {
    float[][] out = new float[windows][];
    for (Pass pass : passes) {
      try (NDManager mb = batchManager.newSubManager()) {
        float[][] part = forward(mb, pass);
        for (int i = 0; i < part.length; i++) {
          out[pass.index()[i]] = part[i];
        }
      }
    }
    if (!budget.gpu()) {
      // the batch's activations are freed: keep none of them resident. The next batch faults its
      // working set in once (trimming after every pass cost about 7 % on the bench's short mix)
      NativeAllocator.trim();
    }
    return out;
  }

  /**
   * @return the forward passes {@link #logProbs} runs for these windows (see {@link Passes#plan})
   */
  public List<Pass> passes(List<Window> windows) {
    return Passes.plan(windows, budget);
  }

  /**
   * One pass, top to bottom: embedding, the layers, the final norm at the scored positions, the
   * log-probabilities of their targets.
   *
   * @return per window of the pass, in the pass's order, its scored log-probs
   */
  private float[][] forward(NDManager m, Pass pass) {
    Pass.Inputs in = pass.inputs();
    int b = pass.rows();
    int t = pass.length();
    // Token embedding: (B, T, C), float32 whatever the matmul precision
    NDArray ids = m.create(in.ids(), new Shape(b, t)); // (B, T)
    NDArray x = Ops.gatherRows(ids, weights.embedding()); // (B, T, C)
    if (x.getDataType() != DataType.FLOAT32) {
      x = x.toType(DataType.FLOAT32, false);
    }
    // Rotary tables and causal masks, shared by every layer
    Mixer.Context ctx = Mixer.Context.of(m, in, b, t, config, budget);
    long mlpRows = budget.mlpRows(mlpSliceWidth);
    NDArray scoredIds = m.create(in.scoredRows()); // (N) flat (B*T) index of each scored position
    // (N, C) the residual stream at the scored positions, set in the last layer
    NDArray scored = null;
    for (int l = 0; l < layers.length; l++) {
      Layer layer = layers[l];
      try (NDManager lm = m.newSubManager()) { // the layer's activations are freed with it
        NDArray h = x.reshape(x.getShape()); // x as this layer sees it: a view, updated in place
        lm.tempAttachAll(h);
        // Self attention: h = h + attention(norm(h)); OLMo-2: h = h + norm(attention(h))
        h.addi(sublayer(layer.attnNorm(), xs -> layer.attention().forward(xs, ctx), h));
        // Feed-forward, position by position: h = h + mlp(norm(h)); OLMo-2: h + norm(mlp(h)).
        // Nothing after the last layer mixes positions, so its feed-forward runs only at the
        // scored positions (half a window's rows at stride W/2; padding never)
        NDArray rows = h.reshape(b * (long) t, config.hiddenSize()); // (B*T, C)
        if (l == layers.length - 1) {
          scored = Ops.gatherRows(scoredIds, rows); // (N, C), in m: it outlives the layer
          rows = scored;
        }
        Ops.addByRows(rows, mlpRows, r -> sublayer(layer.ffNorm(), layer.mlp()::forward, r));
      }
    }
    // Final norm, only at the scored positions (a norm is per position)
    scored = finalNorm.apply(scored); // (N, C)
    // log p(target) = logit(target) - logsumexp(logits), never the full (N, V) logits
    return pass.perWindow(head.logProbs(m, scored, in.targets()));
  }

  /**
   * A sublayer's output before the residual add: f(norm(x)) for pre-norm OLMo-1, norm(f(x)) for
   * OLMo-2's norm after the sublayer.
   */
  private NDArray sublayer(Norm norm, UnaryOperator<NDArray> f, NDArray x) {
    return config.normAfter() ? norm.apply(f.apply(x)) : f.apply(norm.apply(x));
  }

  public OlmoConfig config() {
    return config;
  }

  /**
   * @return the width of the intermediate slices the MLP runs in
   */
  public int mlpSliceWidth() {
    return mlpSliceWidth;
  }

  /**
   * @return the rows of the output matrix per slice the log-softmax applies at a time
   */
  public long logitSliceRows() {
    return head.sliceRows();
  }

  public Precision precision() {
    return precision;
  }

  public Device device() {
    return device;
  }

  /**
   * @return whether the output projection is the embedding tensor itself
   */
  public boolean tied() {
    return tied;
  }

  /**
   * @return the one tensor used as input embedding (and, when tied, as output projection)
   */
  public NDArray embedding() {
    return weights.embedding();
  }

  /**
   * @return the tensor used as output projection; {@code == embedding()} when tied
   */
  public NDArray output() {
    return weights.output();
  }

  /**
   * @return the capped manager that owns every weight
   */
  public NDManager weightsManager() {
    return weightsManager;
  }

  /**
   * @return an upper estimate of the activation bytes one CPU pass holds at its peak (see {@link
   *     MemoryBudget#cpuActivationBytes})
   */
  public long cpuActivationBytes() {
    return MemoryBudget.cpuActivationBytes(config);
  }

  /** Builds a device-local per-batch manager for {@link #logProbs}. */
  public NDManager newBatchManager() {
    NDManager m = TorchEngine.get().newBaseManager(device);
    m.setName("olmo-batch");
    return m;
  }

  @Override
  public void close() {
    weightsManager.close();
  }

  /**
   * @return the distinct embedding-side matrices the model holds, for tests: the embedding, plus
   *     the output matrix when untied (one array when tied: both roles are the same tensor)
   */
  public List<NDArray> distinctWeights() {
    List<NDArray> all = new ArrayList<>();
    all.add(weights.embedding());
    if (!tied) {
      all.add(weights.output());
    }
    return all;
  }
}
