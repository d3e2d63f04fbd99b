package io.olmoppl.model;

import io.olmoppl.checkpoint.OlmoConfig;

/**
 * Every size the forward pass bounds its activations by, and the chunk sizes derived from them, in
 * one place; one budget per model, for a CPU or a GPU.
 *
 * <p>CPU: glibc serves blocks of 32 MiB and more with a fresh {@code mmap} every time, which the
 * kernel must zero page by page; below that size freed blocks are reused (see {@link
 * io.olmoppl.runtime.NativeAllocator}). So a CPU pass is at most {@link #CPU_PASS_TOKENS} long and
 * each temporary stays near {@link #CPU_TEMP_BYTES}. GPU: the caching allocator makes size matter
 * only for peak memory, so the bounds are large, but bounded.
 *
 * @param gpu whether the model runs on a GPU
 */
public record MemoryBudget(boolean gpu) {
  /**
   * Input tokens per forward pass on CPU: the windows of a batch are packed into rows this long,
   * one row per pass, so that every activation stays small enough for the allocator to reuse. On a
   * GPU a batch runs whole.
   */
  public static final int CPU_PASS_TOKENS = 1024;

  /**
   * Target size of one temporary on CPU (attention scores of a query block, one MLP slice's
   * activations over a pass's rows).
   */
  public static final long CPU_TEMP_BYTES = 8L << 20;

  /**
   * Target size of one temporary on a GPU (a query block's attention scores, an MLP row chunk):
   * large, as the caching allocator makes size matter only for peak memory, but bounded, so that a
   * packed batch's attention masks and scores stay bounded per block too.
   */
  public static final long GPU_TEMP_BYTES = 1L << 30;

  /**
   * Bytes of fp32 logits one step of the log-softmax may hold on CPU: the output matrix is applied
   * in slices of this / (4 x {@link #CPU_PASS_TOKENS}) rows, so the full [N, V] logits are never
   * materialised. Small enough for a step's logits to stay in the caches while the max, the exps
   * and their sum reread them (with 24 MiB, a (1024, 6144) step, the tiny model's overhead workload
   * scored about 10% fewer tokens per second); large enough for the matmul to run at full rate.
   */
  public static final long CPU_LOGIT_CHUNK_BYTES = 6L << 20;

  /** The same on a GPU, where its caching allocator makes size matter only for peak memory. */
  public static final long GPU_LOGIT_CHUNK_BYTES = 1L << 30;

  /**
   * @return the target size of one temporary
   */
  public long tempBytes() {
    return gpu ? GPU_TEMP_BYTES : CPU_TEMP_BYTES;
  }

  /**
   * @return the bytes of fp32 logits one step of the log-softmax may hold
   */
  public long logitChunkBytes() {
    return gpu ? GPU_LOGIT_CHUNK_BYTES : CPU_LOGIT_CHUNK_BYTES;
  }

  /**
   * @param longest the longest window's input length
   * @return input tokens one packed row holds: the pass budget on CPU, the longest window on a GPU
   */
  public int rowCapacity(int longest) {
    return gpu ? longest : CPU_PASS_TOKENS;
  }

  /**
   * @return the width of the intermediate slices the MLP runs in: all of it on a GPU; on CPU as
   *     wide as one temporary over a full pass allows (at least 256)
   */
  public int mlpSliceWidth(int intermediate) {
    return (int)
        Math.min(
            intermediate,
            gpu ? intermediate : Math.max(256, CPU_TEMP_BYTES / (4L * CPU_PASS_TOKENS)));
  }

  /**
   * @return rows of a pass one MLP chunk runs at once, so that one slice's activations stay within
   *     a temporary
   */
  public long mlpRows(int sliceWidth) {
    return Math.max(1, tempBytes() / (4L * sliceWidth));
  }

  /**
   * @return rows of the output matrix per logit slice: as many as a full CPU pass's logits within
   *     the logit budget allow (at least 1024)
   */
  public long logitSliceRows(long vocab) {
    return Math.min(vocab, Math.max(1024, logitChunkBytes() / (4L * CPU_PASS_TOKENS)));
  }

  /**
   * @return scored rows one logit step runs at once, so that a slice's logits stay within the logit
   *     budget
   */
  public long logitRows(long sliceRows) {
    return Math.max(1, logitChunkBytes() / (4L * sliceRows));
  }

  /**
   * @return queries per attention block, so that a block's scores over {@code b} rows of {@code t}
   *     positions and {@code heads} heads stay within a temporary (at least 16)
   */
  public int queryBlock(int b, int heads, int t) {
    return (int) Math.max(16, tempBytes() / (4L * b * heads * t));
  }

  /**
   * An upper estimate of the activation bytes one CPU pass holds at its peak (the batch budget's
   * activations, for windows up to {@link #CPU_PASS_TOKENS}; weights not included), from the sizes
   * this class bounds: the residual stream plus the larger of one attention sublayer (norm output,
   * fused projections, rotated queries and keys, contiguous keys and values, per-block outputs and
   * their concatenation, the out projection, and a query block's scores and probabilities), the
   * logit stage (the scored rows and a chunk's logits and log-probabilities) and the MLP (its input
   * and output rows and one slice's activations; with experts also an expert's gathered input, its
   * output and the rows it adds to, and the router's probabilities).
   */
  public static long cpuActivationBytes(OlmoConfig c) {
    return new MemoryBudget(false).activationBytes(c, CPU_PASS_TOKENS);
  }

  /**
   * The same estimate for a GPU batch of {@code tokens} padded positions (a GPU runs a batch in one
   * pass).
   */
  public static long gpuActivationBytes(OlmoConfig c, int tokens) {
    return new MemoryBudget(true).activationBytes(c, tokens);
  }

  private long activationBytes(OlmoConfig c, int tokens) {
    long n = tokens * 4L; // fp32 bytes per feature over the pass's positions
    long width = c.hiddenSize();
    long fused = width + 2L * c.kvDim();
    // a temporary is bounded by the budget, or by its whole size when that is smaller
    long keys = Math.min(tokens, c.maxPositionEmbeddings()); // a row's keys at most
    long scores = Math.min(tempBytes(), n * c.numAttentionHeads() * keys);
    long attention = n * (width + fused + width + 2L * c.kvDim() + 2L * width + width) + 2 * scores;
    long logits = n * width + 2 * Math.min(logitChunkBytes(), n * c.vocabRows());
    long experts = c.experts() == null ? 0 : n * (3L * width + 3L * c.experts().count());
    long mlp = n * 2L * width + experts + 3 * Math.min(tempBytes(), n * c.intermediateSize());
    return n * width + Math.max(Math.max(attention, logits), mlp);
  }
}
