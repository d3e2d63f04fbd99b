package io.olmoppl.model;

import ai.djl.ndarray.NDArray;
import io.olmoppl.checkpoint.OlmoConfig;
import io.olmoppl.checkpoint.OlmoConfig.NormType;

/**
 * One norm of a layer, over the last axis, in float32: torch's fused layer norm for OLMo-1 (its
 * parameter-free norms with a unit scale and zero shift), RMSNorm for OLMo-2 and its QK-norm.
 */
final class Norm {
  private final boolean rms;
  private final NDArray weight; // (C) scale; for a layer norm never null
  private final NDArray bias; // (C) shift of a layer norm, else null
  private final double eps;

  private Norm(boolean rms, NDArray weight, NDArray bias, double eps) {
    this.rms = rms;
    this.weight = weight;
    this.bias = bias;
    this.eps = eps;
  }

  /**
   * The layout's norm.
   *
   * @param w (C) weight or null
   * @param b (C) bias or null
   * @param ones (C) the scale of a layer norm without weight (null for RMSNorm layouts)
   * @param zeros (C) the shift of a layer norm without bias (likewise)
   */
  static Norm of(OlmoConfig c, NDArray w, NDArray b, NDArray ones, NDArray zeros) {
    if (c.normType() == NormType.RMS_NORM) {
      return new Norm(true, w, null, c.normEps());
    }
    return new Norm(false, w == null ? ones : w, b == null ? zeros : b, c.normEps());
  }

  /** RMSNorm with a weight, whatever the layout's norm (OLMo-2's QK-norm). */
  static Norm rms(NDArray w, double eps) {
    return new Norm(true, w, null, eps);
  }

  /**
   * @return the normed x, a new array in x's manager
   */
  NDArray apply(NDArray x) {
    if (rms) {
      NDArray y = Ops.rmsNorm(x, eps);
      return weight == null ? y : y.muli(weight);
    }
    return Ops.layerNorm(x, weight, bias, eps);
  }
}
