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
import java.util.Arrays;
import java.util.List;

/**
 * The OLMo forward pass on DJL's PyTorch engine, for OLMo-1 (both checkpoint layouts) and OLMo-2.
 *
 * <p>Mirrors allenai {@code olmo/model.py} ({@code OLMoSequentialBlock}) and transformers {@code
 * modeling_olmo.py} / {@code modeling_olmo2.py}. Dimension letters: B batch, T tokens, C hidden, H
 * heads, K kv heads, G = H/K query heads per kv head, D head dim, I gated MLP width, V logit width
 * (embedding rows), N scored positions.
 *
 * <p>Memory: the weights live in one manager that is {@link NDManager#cap() capped} after loading.
 * Every op is called on an activation (DJL puts a result in its receiver's manager), projections go
 * through {@code Ops.linear(x, W)} and the embedding through {@code embedding(ids, W)}, so no
 * weight is ever a receiver and nothing attaches to the weights. The tied embedding/output matrix
 * is one tensor referenced by both roles.
 */
public final class OlmoModel implements AutoCloseable {
  /**
   * Input tokens per forward pass on CPU: the windows of a batch are packed into rows this long,
   * one row per pass, so that every activation stays small enough for the allocator to reuse (see
   * {@link Ops}). On a GPU a batch runs whole.
   */
  static final int CPU_PASS_TOKENS = 1024;

  /**
   * Bytes of fp32 logits one step of the log-softmax may hold on CPU: the output matrix is applied
   * in slices of this / (4 x {@link #CPU_PASS_TOKENS}) rows, so the full [N, V] logits are never
   * materialised.
   */
  static final long CPU_LOGIT_CHUNK_BYTES = 24L << 20;

  /** The same on a GPU, where its caching allocator makes size matter only for peak memory. */
  static final long GPU_LOGIT_CHUNK_BYTES = 1L << 30;

  /**
   * Target size of one temporary on a GPU (a query block's attention scores, an MLP row chunk):
   * large, as the caching allocator makes size matter only for peak memory, but bounded, so that a
   * packed batch's attention masks and scores stay bounded per block too.
   */
  static final long GPU_TEMP_BYTES = 1L << 30;

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
  private final NDArray ones; // (C) gamma of a layer norm without affine weight
  private final NDArray zeros; // (C) beta of a layer norm without bias
  private final long tempBytes;
  private final long logitChunkBytes;
  private final int mlpSliceWidth;
  private final MlpSlice[][] mlp; // per layer, the MLP weights cut along the intermediate axis
  private final NDArray[] logitSlices; // views of the output matrix, a slice of its rows each
  private final NDArray[] logitBiasSlices; // the output bias likewise, or null

  /**
   * One block's weights. Fused: qkv = [Q | K | V] rows, upGate = [up | gate] rows (hf_olmo's own
   * layout).
   */
  record Layer(
      NDArray qkv,
      NDArray qkvBias,
      NDArray out,
      NDArray outBias,
      NDArray upGate,
      NDArray upGateBias,
      NDArray down,
      NDArray downBias,
      NDArray attnNormW,
      NDArray attnNormB,
      NDArray ffNormW,
      NDArray ffNormB,
      NDArray qNormW,
      NDArray kNormW) {}

  /**
   * Views of one slice of a layer's MLP along the intermediate axis: rows of up and of gate (with
   * their biases) and the matching columns of down.
   */
  private record MlpSlice(
      NDArray up, NDArray upBias, NDArray gate, NDArray gateBias, NDArray down) {}

  /**
   * One forward row: input tokens plus the token after the last one, and the first position whose
   * next token counts.
   */
  public record Window(long[] tokens, int firstScored) {
    public Window {
      if (tokens.length < 2 || firstScored < 0 || firstScored > tokens.length - 2) {
        throw new IllegalArgumentException("a window needs at least one scored target");
      }
    }

    /**
     * @return input length (tokens fed to the model)
     */
    public int inputLength() {
      return tokens.length - 1;
    }

    /**
     * @return number of scored targets
     */
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
      OlmoConfig config,
      io.olmoppl.checkpoint.Tying tying,
      WeightSource source,
      Device device,
      Precision precision) {
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
    boolean gpu = device.isGpu();
    this.tempBytes = gpu ? GPU_TEMP_BYTES : Ops.TEMP_BYTES;
    this.logitChunkBytes = gpu ? GPU_LOGIT_CHUNK_BYTES : CPU_LOGIT_CHUNK_BYTES;
    if (!gpu) {
      NativeAllocator.tune();
    }
    this.weights = engine().newBaseManager(device);
    weights.setName("olmo-weights");
    try {
      WeightLoader.Loaded w =
          new WeightLoader(src, weights, precision).load(c, tied, embName, outName);
      embedding = w.embedding();
      output = w.output();
      outputBias = w.outputBias();
      layers = w.layers();
      finalNormWeight = w.finalNormWeight();
      finalNormBias = w.finalNormBias();
      mlpSliceWidth =
          (int)
              Math.min(
                  c.intermediateSize(),
                  gpu
                      ? c.intermediateSize()
                      : Math.max(256, Ops.TEMP_BYTES / (4L * CPU_PASS_TOKENS)));
      mlp = new MlpSlice[layers.length][];
      for (int i = 0; i < layers.length; i++) {
        mlp[i] = mlpSlices(layers[i], c.intermediateSize(), mlpSliceWidth);
      }
      long vocab = output.getShape().get(0);
      long sliceRows = Math.min(vocab, Math.max(1024, logitChunkBytes / (4L * CPU_PASS_TOKENS)));
      int slices = (int) ((vocab + sliceRows - 1) / sliceRows);
      logitSlices = new NDArray[slices];
      logitBiasSlices = outputBias == null ? null : new NDArray[slices];
      for (int j = 0; j < slices; j++) {
        String range = j * sliceRows + ":" + Math.min(vocab, (j + 1) * sliceRows);
        logitSlices[j] = output.get(range);
        if (outputBias != null) {
          logitBiasSlices[j] = outputBias.get(range);
        }
      }
      boolean layerNorm = c.normType() != NormType.RMS_NORM;
      ones = layerNorm ? weights.ones(new Shape(c.hiddenSize())) : null;
      zeros = layerNorm ? weights.zeros(new Shape(c.hiddenSize())) : null;
      weights.cap(); // any op that would attach a result to the weights now throws
      if (!gpu) {
        NativeAllocator.trim(); // loading's temporaries are freed
      }
    } catch (RuntimeException e) {
      weights.close();
      throw e;
    }
  }

  /** Views made before the weights are capped; they share the weights' storage. */
  private static MlpSlice[] mlpSlices(Layer l, int intermediate, int width) {
    int count = (intermediate + width - 1) / width;
    MlpSlice[] out = new MlpSlice[count];
    for (int j = 0; j < count; j++) {
      int a = j * width;
      int e = Math.min(intermediate, a + width);
      NDArray b = l.upGateBias();
      out[j] =
          new MlpSlice(
              l.upGate().get(a + ":" + e),
              b == null ? null : b.get(a + ":" + e),
              l.upGate().get((intermediate + a) + ":" + (intermediate + e)),
              b == null ? null : b.get((intermediate + a) + ":" + (intermediate + e)),
              l.down().get(":, " + a + ":" + e));
    }
    return out;
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
    return logitSlices[0].getShape().get(0);
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
    return embedding;
  }

  /**
   * @return the tensor used as output projection; {@code == embedding()} when tied
   */
  public NDArray output() {
    return output;
  }

  /**
   * @return the capped manager that owns every weight
   */
  public NDManager weightsManager() {
    return weights;
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
    if (!device.isGpu()) {
      // the batch's activations are freed: keep none of them resident. The next batch faults its
      // working set in once (trimming after every pass cost about 7 % on the bench's short mix)
      NativeAllocator.trim();
    }
    return out;
  }

  /**
   * One forward pass: {@code rows} of windows laid end to end, each row right-padded to {@code
   * length}.
   *
   * @param windows the pass's windows, row by row
   * @param index for each of {@code windows}, its position in the list given to {@link #passes}
   * @param rowStarts where each row begins in {@code windows} (and {@code windows.size()} last)
   */
  public record Pass(List<Window> windows, int[] index, int[] rowStarts, int length) {
    /**
     * @return rows x length
     */
    public long paddedPositions() {
      return (long) (rowStarts.length - 1) * length;
    }

    /**
     * @return input positions without padding
     */
    public long positions() {
      return windows.stream().mapToLong(Window::inputLength).sum();
    }

    int rows() {
      return rowStarts.length - 1;
    }
  }

  /**
   * @return the forward passes {@link #logProbs} runs: windows packed into rows first-fit by
   *     decreasing length. On CPU a row holds up to {@link #CPU_PASS_TOKENS} input tokens and is a
   *     pass of its own (a longer window is a row alone), so every activation stays small enough
   *     for the allocator to reuse (see {@link Ops}); on a GPU rows are as long as the longest
   *     window and one pass holds them all.
   */
  public List<Pass> passes(List<Window> windows) {
    if (windows.isEmpty()) {
      return List.of();
    }
    int longest = windows.stream().mapToInt(Window::inputLength).max().orElse(1);
    int capacity = device.isGpu() ? longest : CPU_PASS_TOKENS;
    Integer[] order = new Integer[windows.size()];
    for (int i = 0; i < order.length; i++) {
      order[i] = i;
    }
    Arrays.sort(order, (x, y) -> windows.get(y).inputLength() - windows.get(x).inputLength());
    List<List<Integer>> rows = new ArrayList<>();
    List<Integer> free = new ArrayList<>();
    for (int i : order) {
      int len = windows.get(i).inputLength();
      int r = 0;
      while (r < rows.size() && free.get(r) < len) {
        r++;
      }
      if (r == rows.size()) {
        rows.add(new ArrayList<>());
        free.add(Math.max(capacity, len));
      }
      rows.get(r).add(i);
      free.set(r, free.get(r) - len);
    }
    List<Pass> out = new ArrayList<>();
    if (device.isGpu()) {
      out.add(pass(windows, rows));
    } else {
      for (List<Integer> row : rows) {
        out.add(pass(windows, List.of(row)));
      }
    }
    return out;
  }

  private static Pass pass(List<Window> windows, List<List<Integer>> rows) {
    List<Window> ws = new ArrayList<>();
    int[] index = new int[rows.stream().mapToInt(List::size).sum()];
    int[] starts = new int[rows.size() + 1];
    int length = 0;
    for (int r = 0; r < rows.size(); r++) {
      starts[r] = ws.size();
      int len = 0;
      for (int i : rows.get(r)) {
        index[ws.size()] = i;
        ws.add(windows.get(i));
        len += windows.get(i).inputLength();
      }
      length = Math.max(length, len);
    }
    starts[rows.size()] = ws.size();
    return new Pass(ws, index, starts, length);
  }

  /**
   * One pass: embedding, blocks, final norm at the scored rows, log-softmax in row chunks.
   *
   * @return per window of the pass, in the pass's order, its scored log-probs
   */
  private float[][] forward(NDManager m, Pass pass) {
    List<Window> windows = pass.windows();
    int b = pass.rows();
    int t = pass.length();
    long[] ids = new long[b * t];
    long[] positions = new long[b * t];
    int[][] segmentStart = new int[b][t];
    int n = windows.stream().mapToInt(Window::scored).sum();
    long[] rows = new long[n];
    long[] targets = new long[n];
    int k = 0;
    for (int r = 0; r < b; r++) {
      int offset = 0;
      for (int wi = pass.rowStarts()[r]; wi < pass.rowStarts()[r + 1]; wi++) {
        Window w = windows.get(wi);
        System.arraycopy(w.tokens(), 0, ids, r * t + offset, w.inputLength());
        for (int j = 0; j < w.inputLength(); j++) {
          positions[r * t + offset + j] = j;
          segmentStart[r][offset + j] = offset;
        }
        for (int j = w.firstScored(); j < w.inputLength(); j++) {
          rows[k] = (long) r * t + offset + j;
          targets[k++] = w.tokens()[j + 1];
        }
        offset += w.inputLength();
      }
      for (int j = offset; j < t; j++) {
        segmentStart[r][j] = j; // padding: a segment of its own, never seen by a real position
      }
    }
    NDArray idArr = m.create(ids, new Shape(b, t)); // (B, T)
    NDArray posArr = m.create(positions, new Shape(b, t)); // (B, T)
    int longest = windows.stream().mapToInt(Window::inputLength).max().orElse(1);
    NDArray x =
        blocks(m, idArr, posArr, longest, segmentStart, b, t); // (B, T, C) before the final norm
    NDArray flat = x.reshape(b * (long) t, config.hiddenSize()); // (B*T, C)
    NDArray rowIdx = m.create(rows);
    NDArray picked =
        rowIdx.getNDArrayInternal().embedding(rowIdx, flat, SparseFormat.DENSE).head(); // (N, C)
    picked =
        norm(picked, finalNormWeight, finalNormBias); // per position: only the scored rows need it
    float[] lp = logProbsAt(m, picked, targets);
    float[][] out = new float[windows.size()][];
    k = 0;
    for (int i = 0; i < out.length; i++) {
      out[i] = Arrays.copyOfRange(lp, k, k + windows.get(i).scored());
      k += out[i].length;
    }
    return out;
  }

  /**
   * log p(target) for each row of {@code x}: the target's logit minus the log-sum-exp over all V
   * logits, both from the same float32 logits, the sum over vocabulary slices taken in double (so
   * log p never exceeds 0). The output matrix is applied one slice of its rows at a time ({@link
   * #logitSlices}) to all rows at once (in row chunks only where a slice's logits would exceed the
   * logit budget), so the matmul reads and packs each slice once per pass, and the full (N, V)
   * logits never exist.
   *
   * @param x (N, C) after the final norm
   */
  private float[] logProbsAt(NDManager m, NDArray x, long[] targets) {
    int n = targets.length;
    long rows = Math.max(1, logitChunkBytes / (4L * logitSliceRows()));
    float[] lp = new float[n];
    for (int r0 = 0; r0 < n; r0 += rows) {
      int r1 = (int) Math.min(n, r0 + rows);
      try (NDManager cm = m.newSubManager()) {
        NDArray xs = x.get(r0 + ":" + r1); // (n, C)
        cm.tempAttachAll(xs);
        float[] targetLogit = new float[r1 - r0];
        double[] maxes = new double[r1 - r0];
        double[][] lse = new double[logitSlices.length][];
        for (int j = 0; j < logitSlices.length; j++) {
          try (NDManager sm = cm.newSubManager()) {
            sm.tempAttachAll(xs);
            NDArray logits =
                Ops.linear(
                    xs,
                    logitSlices[j],
                    outputBias == null ? null : logitBiasSlices[j],
                    precision); // (n, slice) fp32
            if (config.scaleLogits()) {
              logits = logits.muli(1.0 / Math.sqrt(config.hiddenSize()));
            }
            // the logit of each target inside this slice, from these very logits
            long v0 = j * logitSliceRows();
            long width = logits.getShape().get(1);
            long[] at = new long[r1 - r0];
            for (int i = 0; i < at.length; i++) {
              at[i] = Math.min(width - 1, Math.max(0, targets[r0 + i] - v0));
            }
            float[] picked = logits.gather(sm.create(at).reshape(at.length, 1), -1).toFloatArray();
            for (int i = 0; i < at.length; i++) {
              if (targets[r0 + i] >= v0 && targets[r0 + i] < v0 + width) {
                targetLogit[i] = picked[i];
              }
            }
            // log-sum-exp of the slice: its max minus the max of its log-softmax (= -log sum exp(
            // logits - max), exact at the arg max)
            float[] max = logits.max(new int[] {-1}).toFloatArray();
            float[] lsMax = logits.logSoftmax(-1).max(new int[] {-1}).toFloatArray();
            lse[j] = new double[r1 - r0];
            for (int i = 0; i < lse[j].length; i++) {
              lse[j][i] = (double) max[i] - lsMax[i];
              maxes[i] = j == 0 ? lse[j][i] : Math.max(maxes[i], lse[j][i]);
            }
          }
        }
        for (int i = 0; i < r1 - r0; i++) {
          double sum = 0;
          for (double[] l : lse) {
            sum += Math.exp(l[i] - maxes[i]);
          }
          lp[r0 + i] = (float) (targetLogit[i] - (maxes[i] + Math.log(sum)));
        }
      }
    }
    return lp;
  }

  /**
   * Embedding, then the blocks (each in its own scope, the residual stream updated in
   * place). @return (B, T, C)
   */
  NDArray blocks(
      NDManager m,
      NDArray ids,
      NDArray positions,
      int longest,
      int[][] segmentStart,
      int b,
      int t) {
    OlmoConfig c = config;
    int d = c.headDim();
    NDArray x =
        ids.getNDArrayInternal().embedding(ids, embedding, SparseFormat.DENSE).head(); // (B, T, C)
    if (x.getDataType() != DataType.FLOAT32) {
      x = x.toType(DataType.FLOAT32, false);
    }
    NDArray[] rope = Ops.ropeTables(m, longest, d, c.ropeTheta()); // (L, D), L the longest window
    // each position's row of the tables, broadcast over the heads of (B, T, heads, D)
    NDArray cos = gatherRows(positions, rope[0]).reshape(b, t, 1, d);
    NDArray sin = gatherRows(positions, rope[1]).reshape(b, t, 1, d);
    int queryBlock = (int) Math.max(16, tempBytes / (4L * b * c.numAttentionHeads() * t));
    Ops.CausalBlocks mask = Ops.causalBlocks(m, segmentStart, queryBlock);
    for (int li = 0; li < layers.length; li++) {
      Layer l = layers[li];
      try (NDManager lm = m.newSubManager()) {
        NDArray xl =
            x.reshape(x.getShape()); // a view of x, scoped to this layer: x is updated through it
        lm.tempAttachAll(xl);
        attentionBlock(xl, l, b, t, cos, sin, mask);
        feedForward(xl.reshape(b * (long) t, c.hiddenSize()), l, mlp[li]);
      }
    }
    return x;
  }

  /**
   * x += attention(x) (pre-norm), or x += norm(attention(x)) (OLMo-2's post-sublayer norm), in
   * place.
   */
  private void attentionBlock(
      NDArray x, Layer l, int b, int t, NDArray cos, NDArray sin, Ops.CausalBlocks mask) {
    OlmoConfig c = config;
    int h = c.numAttentionHeads();
    int kvh = c.numKeyValueHeads();
    int d = c.headDim();
    long cdim = c.hiddenSize();
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
    q = Ops.rope(q.reshape(b, t, h, d), cos, sin).transpose(0, 2, 1, 3); // (B, H, T, D)
    // keys and values made contiguous as (B, K, T, D): reshaping through (B*K, T, D) copies once
    k =
        Ops.rope(k.reshape(b, t, kvh, d), cos, sin)
            .transpose(0, 2, 1, 3)
            .reshape(b * (long) kvh, t, d)
            .reshape(b, kvh, t, d);
    v =
        v.reshape(b, t, kvh, d)
            .transpose(0, 2, 1, 3)
            .reshape(b * (long) kvh, t, d)
            .reshape(b, kvh, t, d);
    NDArray att = Ops.attention(q, k, v, precision, mask).reshape(b, t, cdim); // (B, T, C)
    NDArray a = Ops.linear(att, l.out(), l.outBias(), precision);
    if (c.normAfter()) {
      a = norm(a, l.attnNormW(), l.attnNormB());
    }
    x.addi(a);
  }

  /**
   * x += mlp(x), in place; x is (B*T, C). The MLP runs over all rows at once (in row chunks only
   * when one slice's activations would exceed the temporary budget), one slice of the intermediate
   * axis at a time: each weight slice is then read and packed by the matmul once per pass, not once
   * per row chunk, and down's partial products are summed over the slices.
   */
  private void feedForward(NDArray x, Layer l, MlpSlice[] slices) {
    OlmoConfig c = config;
    long n = x.getShape().get(0);
    long rows = Math.max(1, tempBytes / (4L * mlpSliceWidth));
    for (long r0 = 0; r0 < n; r0 += rows) {
      try (NDManager cm = x.getManager().newSubManager()) {
        NDArray xs = x.get(r0 + ":" + Math.min(n, r0 + rows)); // a view: the update lands in x
        cm.tempAttachAll(xs);
        NDArray fIn = c.normAfter() ? xs : norm(xs, l.ffNormW(), l.ffNormB());
        NDArray f = null; // (rows, C)
        for (MlpSlice sl : slices) {
          try (NDManager sm = cm.newSubManager()) { // this slice's activations are freed with it
            sm.tempAttachAll(fIn);
            NDArray u = Ops.linear(fIn, sl.up(), sl.upBias(), precision); // (rows, slice)
            NDArray g = Ops.linear(fIn, sl.gate(), sl.gateBias(), precision);
            NDArray part = Ops.linear(Ops.swiglu(u, g), sl.down(), null, precision);
            if (f == null) {
              f = part;
              f.attach(cm);
            } else {
              f.addi(part);
            }
          }
        }
        if (l.downBias() != null) {
          f.addi(l.downBias());
        }
        if (c.normAfter()) {
          f = norm(f, l.ffNormW(), l.ffNormB());
        }
        xs.addi(f);
      }
    }
  }

  /**
   * @return table[idx] row by row: (..., D) for idx (...)
   */
  private static NDArray gatherRows(NDArray idx, NDArray table) {
    return idx.getNDArrayInternal().embedding(idx, table, SparseFormat.DENSE).head();
  }

  /** The layout's norm, in float32; torch's fused layer norm for OLMo-1. */
  private NDArray norm(NDArray x, NDArray w, NDArray b) {
    if (config.normType() == NormType.RMS_NORM) {
      NDArray y = Ops.rmsNorm(x, config.normEps());
      return w == null ? y : y.muli(w);
    }
    return Ops.layerNorm(x, w == null ? ones : w, b == null ? zeros : b, config.normEps());
  }

  private NDArray rmsNorm(NDArray x, NDArray w) {
    return Ops.rmsNorm(x, config.normEps()).muli(w);
  }

  /**
   * An upper estimate of the activation bytes one CPU pass holds at its peak (the batch budget's
   * activations, for windows up to {@link #CPU_PASS_TOKENS}; weights not included), from the sizes
   * this class and {@link Ops} bound: the residual stream plus the larger of one attention sublayer
   * (norm output, fused projections, rotated queries and keys, contiguous keys and values,
   * per-block outputs and their concatenation, the out projection, and a query block's scores and
   * probabilities) and the logit stage (the scored rows and a chunk's logits and
   * log-probabilities). The MLP's row chunks are smaller than either.
   */
  public long cpuActivationBytes() {
    OlmoConfig c = config;
    long n = CPU_PASS_TOKENS * 4L; // fp32 bytes per feature over the pass's positions
    long width = c.hiddenSize();
    long fused = width + 2L * c.kvDim();
    long attention =
        n * (width + fused + width + 2L * c.kvDim() + 2L * width + width) + 2 * Ops.TEMP_BYTES;
    long logits = n * width + 2 * CPU_LOGIT_CHUNK_BYTES;
    return n * width + Math.max(attention, logits);
  }

  /** Builds a device-local per-batch manager for {@link #logProbs}. */
  public NDManager newBatchManager() {
    NDManager m = engine().newBaseManager(device);
    m.setName("olmo-batch");
    return m;
  }

  /**
   * @return the PyTorch engine (the tokenizers jar registers a second engine, which must never be
   *     picked)
   */
  public static Engine engine() {
    DjlSettings.configure();
    return Engine.getEngine("PyTorch");
  }

  @Override
  public void close() {
    weights.close();
  }

  /**
   * @return the distinct embedding-side matrices the model holds, for tests: the embedding, plus
   *     the output matrix when untied (one array when tied: both roles are the same tensor)
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
