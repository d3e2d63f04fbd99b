package io.olmoppl.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;

/**
 * The forward pass's building blocks, each with the activation as receiver (DJL attaches a result
 * to its receiver's manager, so a weight must never be the receiver). Norms, softmax and
 * log-softmax run in float32.
 *
 * <p>Allocation discipline (CPU speed): every large output is written once and then updated in
 * place where the math allows ({@code muli}, {@code addi}), and callers keep each temporary below
 * {@link #TEMP_BYTES}. glibc serves blocks of 32 MiB and more with a fresh {@code mmap} every time,
 * which the kernel must zero page by page; below that size freed blocks are reused (see {@link
 * NativeAllocator}).
 */
public final class Ops {
  /**
   * Target size of one temporary (attention scores of a query block, an MLP row chunk, a logit
   * chunk).
   */
  public static final long TEMP_BYTES = 8L << 20;

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
   * Causal scaled dot-product attention with grouped kv heads (query head j uses kv head j /
   * (H/K)), computed by query blocks: a block of queries [i0, i1) attends to keys [0, i1) only, so
   * the scores of one block stay small and the keys after the block are never computed. Only the
   * diagonal part of a block needs the causal mask.
   *
   * @param q (B, H, T, D)
   * @param k (B, K, T, D)
   * @param v (B, K, T, D)
   * @param queryBlock queries per block (at least 1)
   * @return (B, T, H, D)
   */
  public static NDArray attention(NDArray q, NDArray k, NDArray v, Precision p, int queryBlock) {
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
    int qb = Math.max(1, Math.min(queryBlock, t));
    NDArray tri = causalMask(m, qb); // (qb, qb), the diagonal block's mask
    NDList blocks = new NDList();
    for (int i0 = 0; i0 < t; i0 += qb) {
      int i1 = Math.min(t, i0 + qb);
      int tq = i1 - i0;
      // each block in its own scope: its scores and probabilities are freed before the next block
      try (NDManager bm = m.newSubManager()) {
        NDArray qs = qg.get(":, :, :, " + i0 + ":" + i1 + ", :");
        NDArray ks = kt.get(":, :, :, 0:" + i1); // views of the keys and values up to the block end
        NDArray vs = v.get(":, :, 0:" + i1 + ", :");
        new NDList(qs, ks, vs).attach(bm); // views: closing them frees handles, not the data
        qs = qs.reshape(b, kvh, g * tq, d); // (B, K, G*tq, D)
        NDArray scores = matMul(qs, ks, p).muli(scale); // (B, K, G*tq, i1)
        NDArray diag =
            scores.reshape(b, kvh, g, tq, i1).get(":, :, :, :, " + i0 + ":" + i1); // a view
        diag.addi(tq == qb ? tri : tri.get("0:" + tq + ", 0:" + tq));
        NDArray probs = scores.softmax(-1);
        NDArray out = matMul(probs, vs, p); // (B, K, G*tq, D)
        NDArray block = out.reshape(b, h, tq, d).transpose(0, 2, 1, 3); // (B, tq, H, D)
        block.attach(m);
        blocks.add(block);
      }
    }
    return blocks.size() == 1 ? blocks.head() : NDArrays.concat(blocks, 1);
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
    float[] cos = new float[t * d];
    float[] sin = new float[t * d];
    for (int pos = 0; pos < t; pos++) {
      double[][] r = Rope.row(pos, d, theta);
      for (int j = 0; j < d; j++) {
        cos[pos * d + j] = (float) r[0][j];
        sin[pos * d + j] = (float) (j < d / 2 ? -r[1][j] : r[1][j]);
      }
    }
    return new NDArray[] {m.create(cos, new Shape(t, d)), m.create(sin, new Shape(t, d))};
  }
}
