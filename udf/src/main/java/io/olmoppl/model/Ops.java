package io.olmoppl.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;

/**
 * The forward pass's building blocks, each with the activation as receiver (DJL attaches a result to its receiver's
 * manager, so a weight must never be the receiver). Norms, softmax and log-softmax run in float32.
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
    return bias == null ? y : y.add(bias);
  }

  /** torch.matmul, in fp16 for fp16 mode; result float32. */
  public static NDArray matMul(NDArray a, NDArray b, Precision p) {
    if (p == Precision.FP16) {
      return a.toType(DataType.FLOAT16, false).matMul(b.toType(DataType.FLOAT16, false))
          .toType(DataType.FLOAT32, false);
    }
    return a.matMul(b);
  }

  /** F.layer_norm over the last axis without affine: (x - mean) / sqrt(biased var + eps). */
  public static NDArray layerNorm(NDArray x, double eps) {
    NDArray xc = x.sub(x.mean(new int[] {-1}, true));
    return xc.mul(xc.square().mean(new int[] {-1}, true).add(eps).pow(-0.5));
  }

  /** RMSNorm over the last axis without weight: x / sqrt(mean(x^2) + eps). */
  public static NDArray rmsNorm(NDArray x, double eps) {
    return x.mul(x.square().mean(new int[] {-1}, true).add(eps).pow(-0.5));
  }

  /** SwiGLU: silu(gate) * up, silu(z) = z * sigmoid(z). */
  public static NDArray swiglu(NDArray up, NDArray gate) {
    return gate.mul(Activation.sigmoid(gate)).mul(up);
  }

  /**
   * Causal scaled dot-product attention with grouped kv heads: query head j uses kv head j / (H/K).
   *
   * @param q (B, H, T, D)
   * @param k (B, K, T, D)
   * @param v (B, K, T, D)
   * @param mask (T, T) additive causal bias
   * @return (B, H, T, D)
   */
  public static NDArray attention(NDArray q, NDArray k, NDArray v, NDArray mask, Precision p) {
    Shape s = q.getShape();
    long b = s.get(0);
    long h = s.get(1);
    long t = s.get(2);
    long d = s.get(3);
    long kvh = k.getShape().get(1);
    NDArray qg = q.reshape(b, kvh, h / kvh, t, d); // (B, K, G, T, D)
    NDArray kg = k.reshape(b, kvh, 1, t, d).transpose(0, 1, 2, 4, 3); // (B, K, 1, D, T)
    NDArray scores = matMul(qg, kg, p).mul(1.0 / Math.sqrt(d)).add(mask); // (B, K, G, T, T) float32
    NDArray probs = scores.softmax(-1);
    return matMul(probs, v.reshape(b, kvh, 1, t, d), p).reshape(b, h, t, d); // (B, H, T, D)
  }

  /** Additive causal bias: 0 where key j <= query i, a large negative number elsewhere. @return (T, T) */
  public static NDArray causalMask(NDManager m, int t) {
    float[] mask = new float[t * t];
    for (int i = 0; i < t; i++) {
      for (int j = i + 1; j < t; j++) {
        mask[i * t + j] = -1e30f;
      }
    }
    return m.create(mask, new Shape(t, t));
  }

  /** Rotary embedding (see {@link Rope}). x (B, heads, T, D), cos and sin (T, D). */
  public static NDArray rope(NDArray x, NDArray cos, NDArray sin) {
    return Rope.apply(x, cos, sin);
  }

  /** @return {cos, sin} as (T, D) float32 arrays for positions 0..T-1 */
  public static NDArray[] ropeTables(NDManager m, int t, int d, double theta) {
    float[] cos = new float[t * d];
    float[] sin = new float[t * d];
    for (int pos = 0; pos < t; pos++) {
      double[][] r = Rope.row(pos, d, theta);
      for (int j = 0; j < d; j++) {
        cos[pos * d + j] = (float) r[0][j];
        sin[pos * d + j] = (float) r[1][j];
      }
    }
    return new NDArray[] {m.create(cos, new Shape(t, d)), m.create(sin, new Shape(t, d))};
  }
}
