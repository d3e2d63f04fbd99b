package io.olmoppl.model;

import java.util.Locale;

/**
 * Compute precision of the matrix products. Norms, softmax, log-softmax and the residual stream
 * stay float32.
 */
public enum Precision {
  FP32,
  /**
   * fp16 matrix products, for GPUs; on CPU libtorch's fp16 matmul is about 200x slower than fp32.
   */
  FP16;

  public static Precision parse(String s) {
    try {
      return valueOf(s.trim().toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("precision must be fp32 or fp16, not '" + s + "'");
    }
  }

  public String id() {
    return name().toLowerCase(Locale.ROOT);
  }
}
