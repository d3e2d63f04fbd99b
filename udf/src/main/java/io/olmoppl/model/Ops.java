package io.olmoppl.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import ai.djl.nn.Activation;
import io.olmoppl.checkpoint.RopeParameters;
import java.util.function.UnaryOperator;

/**
 * The forward pass's building blocks, each with the activation as receiver (DJL attaches a result
 * to its receiver's manager, so a weight must never be the receiver). Norms, softmax and
 * log-softmax run in float32.
 *
 * <p>Allocation discipline (CPU speed): every large output is written once and then updated in
 * place where the math allows ({@code muli}, {@code addi}), and callers keep each temporary below
 * the {@link MemoryBudget}'s.
 */
public final class Ops {
  private Ops() {}

  /** y = x W^T (+ b) as torch {@code F.linear}; fp16 inputs in fp16 mode; result float32. */
  public static NDArray linear(NDArray x, NDArray w, NDArray bias, Precision p) {
    NDArray in = p == Precision.FP16 ? x.toType(DataType.FLOAT16, false) : x;
    NDArray y = in.getNDArrayInternal().linear(in, w, null).head();
    if (y.getDataType() != DataType.FLOAT32) {
      y = y.toType(DataType.FLOAT32, false);
    }
    return bias == null ? y : y.addi(bias);
  }

  /** torch.matmul, in fp16 for fp16 mode; result float32. */
  public static NDArray matMul(NDArray a, NDArray b, Precision p) {
    if (p == Precision.FP16) {
      return a.toType(DataType.FLOAT16, false)
          .matMul(b.toType(DataType.FLOAT16, false))
          .toType(DataType.FLOAT32, false);
    }
    return a.matMul(b);
  }

  /**
   * F.layer_norm over the last axis (torch's fused kernel): (x - mean) / sqrt(biased var + eps) *
   * gamma + beta.
   *
   * @param gamma (C) scale, ones for a norm without affine parameters
   * @param beta (C) shift, zeros for a norm without bias
   */
  public static NDArray layerNorm(NDArray x, NDArray gamma, NDArray beta, double eps) {
    Shape s = x.getShape();
    return x.getNDArrayInternal()
        .layerNorm(x, new Shape(s.get(s.dimension() - 1)), gamma, beta, (float) eps)
        .head();
  }

  /** RMSNorm over the last axis without weight: x / sqrt(mean(x^2) + eps). */
  public static NDArray rmsNorm(NDArray x, double eps) {
    return x.mul(x.square().mean(new int[] {-1}, true).addi(eps).powi(-0.5));
  }

  /** SwiGLU: silu(gate) * up, silu(z) = z * sigmoid(z); one new array. */
  public static NDArray swiglu(NDArray up, NDArray gate) {
    return Activation.sigmoid(gate).muli(gate).muli(up);
  }

  /**
   * The query blocks of causal attention over rows that may hold several segments (windows laid end
   * to end, each attending only to itself), optionally within a sliding window of W keys (query i
   * sees keys j with i - W < j <= i): block [i0, i1) attends to keys [ks, i1) only, ks the later of
   * the start of the segment of its first query and i0 - W + 1, so the keys out of reach are never
   * computed (a sliding layer's cost grows as T W, not T^2). Built once per forward pass and shared
   * by every layer of its kind.
   */
  public static final class CausalBlocks {
    private final int[] start;
    private final int[] keyStart;
    private final int[] end;
    private final NDArray[] bias; // (B, 1, 1, tq, i1 - ks), or null where a shared mask suffices
    private final boolean[] band; // the block's keys are the full window before each query
    private final NDArray tri; // (qb, qb): the diagonal part's mask of a plain causal block
    private final NDArray bandMask; // (qb, W - 1 + qb) or null: a full-window block's mask

    private CausalBlocks(
        int[] start,
        int[] keyStart,
        int[] end,
        NDArray[] bias,
        boolean[] band,
        NDArray tri,
        NDArray bandMask) {
      this.start = start;
      this.keyStart = keyStart;
      this.end = end;
      this.bias = bias;
      this.band = band;
      this.tri = tri;
      this.bandMask = bandMask;
    }

    /**
     * @return the query-key pairs the blocks compute (for tests of the cost)
     */
    public long computedPairs() {
      long n = 0;
      for (int i = 0; i < start.length; i++) {
        n += (long) (end[i] - start[i]) * (end[i] - keyStart[i]);
      }
      return n;
    }
  }

  /**
   * @param segmentStart per row and position, where that position's segment begins (nondecreasing
   *     along a row; a padding position is a segment of its own)
   * @param queryBlock queries per block (at least 1)
   */
  public static CausalBlocks causalBlocks(NDManager m, int[][] segmentStart, int queryBlock) {
    return causalBlocks(m, segmentStart, queryBlock, Integer.MAX_VALUE);
  }

  /**
   * @param window W, the keys a query sees at most (itself included); Integer.MAX_VALUE for full
   *     causal attention
   */
  public static CausalBlocks causalBlocks(
      NDManager m, int[][] segmentStart, int queryBlock, int window) {
    int b = segmentStart.length;
    int t = segmentStart[0].length;
    int qb = Math.max(1, Math.min(queryBlock, t));
    int n = (t + qb - 1) / qb;
    int[] start = new int[n];
    int[] keyStart = new int[n];
    int[] end = new int[n];
    NDArray[] bias = new NDArray[n];
    boolean[] band = new boolean[n];
    boolean anyBand = false;
    for (int blk = 0; blk < n; blk++) {
      int i0 = blk * qb;
      int i1 = Math.min(t, i0 + qb);
      int k0 = i0;
      boolean plain = true; // every query of the block in one segment, begun at k0 in every row
      for (int[] row : segmentStart) {
        k0 = Math.min(k0, row[i0]);
      }
      for (int[] row : segmentStart) {
        plain &= row[i0] == k0 && row[i1 - 1] == k0;
      }
      long reachStart = (long) i0 - window + 1; // the first key the block's first query sees
      int ks = (int) Math.max(k0, reachStart);
      start[blk] = i0;
      keyStart[blk] = ks;
      end[blk] = i1;
      // plain causal: no query of the block reaches past ks - 1 anyway
      boolean causalOnly = (long) i1 - 1 - window < ks;
      if (plain && !causalOnly && ks == reachStart) {
        band[blk] = true;
        anyBand = true;
      } else if (!plain || !causalOnly) {
        int tq = i1 - i0;
        int keys = i1 - ks;
        float[] mask = new float[Math.multiplyExact(b, Math.multiplyExact(tq, keys))];
        for (int r = 0; r < b; r++) {
          for (int i = i0; i < i1; i++) {
            int base = (r * tq + i - i0) * keys;
            for (int j = ks; j < i1; j++) {
              if (j < segmentStart[r][i] || j > i || j <= (long) i - window) {
                mask[base + j - ks] = -1e30f;
              }
            }
          }
        }
        bias[blk] = m.create(mask, new Shape(b, 1, 1, tq, keys));
      }
    }
    return new CausalBlocks(
        start,
        keyStart,
        end,
        bias,
        band,
        causalMask(m, qb),
        anyBand ? bandMask(m, qb, window) : null);
  }

  /**
   * Additive bias of a block of {@code qb} queries over the full window before each: query a sees
   * keys a .. a + W - 1 of the block's W - 1 + qb keys. @return (qb, W - 1 + qb)
   */
  private static NDArray bandMask(NDManager m, int qb, int window) {
    int keys = Math.addExact(window - 1, qb);
    float[] mask = new float[Math.multiplyExact(qb, keys)];
    for (int a = 0; a < qb; a++) {
      for (int kk = 0; kk < keys; kk++) {
        if (kk < a || kk > a + window - 1) {
          mask[a * keys + kk] = -1e30f;
        }
      }
    }
    return m.create(mask, new Shape(qb, keys));
  }

  /**
   * Causal scaled dot-product attention with grouped kv heads (query head j uses kv head j /
   * (H/K)), computed by the query blocks of {@code blocks}: the scores of one block stay small and
   * are freed before the next. Where a block is plain causal only its diagonal part is masked.
   *
   * @param q (B, H, T, D)
   * @param k (B, K, T, D)
   * @param v (B, K, T, D)
   * @return (B, T, H, D)
   */
  public static NDArray attention(
      NDArray q, NDArray k, NDArray v, Precision p, CausalBlocks blocks) {
    Shape s = q.getShape();
    long b = s.get(0);
    long h = s.get(1);
    int t = (int) s.get(2);
    long d = s.get(3);
    long kvh = k.getShape().get(1);
    long g = h / kvh;
    NDManager m = q.getManager();
    NDArray qg = q.reshape(b, kvh, g, t, d); // (B, K, G, T, D)
    NDArray kt = k.transpose(0, 1, 3, 2); // (B, K, D, T)
    double scale = 1.0 / Math.sqrt(d);
    NDList out = new NDList();
    for (int blk = 0; blk < blocks.start.length; blk++) {
      int i0 = blocks.start[blk];
      int i1 = blocks.end[blk];
      int k0 = blocks.keyStart[blk];
      int tq = i1 - i0;
      int keys = i1 - k0;
      // each block in its own scope: its scores and probabilities are freed before the next block
      try (NDManager bm = m.newSubManager()) {
        NDArray qs = qg.get(":, :, :, " + i0 + ":" + i1 + ", :");
        NDArray ks = kt.get(":, :, :, " + k0 + ":" + i1); // views of the keys and values in reach
        NDArray vs = v.get(":, :, " + k0 + ":" + i1 + ", :");
        new NDList(qs, ks, vs).attach(bm); // views: closing them frees handles, not the data
        qs = qs.reshape(b, kvh, g * tq, d); // (B, K, G*tq, D)
        NDArray scores = matMul(qs, ks, p).muli(scale); // (B, K, G*tq, keys)
        NDArray grid = scores.reshape(b, kvh, g, tq, keys); // a view
        if (blocks.bias[blk] != null) {
          grid.addi(blocks.bias[blk]);
        } else if (blocks.band[blk]) {
          NDArray bm2 = blocks.bandMask;
          grid.addi(tq == bm2.getShape().get(0) ? bm2 : bm2.get("0:" + tq + ", 0:" + keys));
        } else {
          NDArray tri = blocks.tri;
          grid.get(":, :, :, :, " + (i0 - k0) + ":" + keys)
              .addi(tq == tri.getShape().get(0) ? tri : tri.get("0:" + tq + ", 0:" + tq));
        }
        NDArray probs = scores.softmax(-1);
        NDArray o = matMul(probs, vs, p); // (B, K, G*tq, D)
        NDArray block = o.reshape(b, h, tq, d).transpose(0, 2, 1, 3); // (B, tq, H, D)
        block.attach(m);
        out.add(block);
      }
    }
    return out.size() == 1 ? out.head() : NDArrays.concat(out, 1);
  }

  /**
   * Additive causal bias: 0 where key j <= query i, a large negative number elsewhere. @return (T,
   * T)
   */
  public static NDArray causalMask(NDManager m, int t) {
    float[] mask = new float[Math.multiplyExact(t, t)];
    for (int i = 0; i < t; i++) {
      for (int j = i + 1; j < t; j++) {
        mask[i * t + j] = -1e30f;
      }
    }
    return m.create(mask, new Shape(t, t));
  }

  /**
   * Rotary embedding (see {@link Rope}) over the last axis, positions on the axis before it.
   *
   * @param x (..., T, D)
   * @param cos (T, D) cosines, broadcast over the leading axes
   * @param signedSin (T, D) sines with the first half negated (rotate_half folded into the sign)
   */
  public static NDArray rope(NDArray x, NDArray cos, NDArray signedSin) {
    return Rope.apply(x, cos, signedSin);
  }

  /**
   * @return {cos, signed sin} as (T, D) float32 arrays for positions 0..T-1 (see {@link #rope})
   */
  public static NDArray[] ropeTables(NDManager m, int t, int d, double theta) {
    return ropeTables(m, t, d, RopeParameters.plain(theta));
  }

  /**
   * @return {cos, signed sin} as (T, D) float32 arrays of rotary embedding {@code p} (plain or
   *     YaRN, see {@link Rope}) for positions 0..T-1, both multiplied by its attention factor
   */
  public static NDArray[] ropeTables(NDManager m, int t, int d, RopeParameters p) {
    double[] inv = Rope.inverseFrequencies(p, d);
    float[] cos = new float[Math.multiplyExact(t, d)];
    float[] sin = new float[cos.length];
    for (int pos = 0; pos < t; pos++) {
      double[][] r = Rope.row(pos, inv, p.attentionFactor());
      for (int j = 0; j < d; j++) {
        cos[pos * d + j] = (float) r[0][j];
        sin[pos * d + j] = (float) (j < d / 2 ? -r[1][j] : r[1][j]);
      }
    }
    return new NDArray[] {m.create(cos, new Shape(t, d)), m.create(sin, new Shape(t, d))};
  }

  /**
   * @return table[idx] row by row: (..., D) for idx (...)
   */
  public static NDArray gatherRows(NDArray idx, NDArray table) {
    return idx.getNDArrayInternal().embedding(idx, table, SparseFormat.DENSE).head();
  }

  /**
   * x += f(x), in place, over chunks of {@code rows} rows of x (2-D), each chunk in its own scope:
   * its activations are freed before the next. Only for a position-wise f, whose value at a row
   * does not depend on the other rows.
   *
   * @param x (N, C)
   */
  public static void addByRows(NDArray x, long rows, UnaryOperator<NDArray> f) {
    long n = x.getShape().get(0);
    for (long r0 = 0; r0 < n; r0 += rows) {
      try (NDManager cm = x.getManager().newSubManager()) {
        NDArray xs = x.get(r0 + ":" + Math.min(n, r0 + rows)); // a view: the update lands in x
        cm.tempAttachAll(xs);
        xs.addi(f.apply(xs));
      }
    }
  }
}
