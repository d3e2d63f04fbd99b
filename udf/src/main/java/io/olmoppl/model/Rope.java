package io.olmoppl.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import io.olmoppl.checkpoint.RopeParameters;

/**
 * Rotary position embedding, NeoX ("rotate half") pairing over the full head dim, as OLMo and
 * transformers' Llama family: {@code inv_freq[j] = theta^(-2j/D)}, {@code out[j] = x[j] cos -
 * x[j+D/2] sin}, {@code out[j+D/2] = x[j+D/2] cos + x[j] sin}. Tables are computed in double and
 * rounded once to float32.
 *
 * <p>YaRN (Olmo 3's full-attention layers; transformers {@code _compute_yarn_parameters}, OLMo-core
 * {@code YaRNRoPEScalingConfig}): with {@code ext[j] = theta^(-2j/D)}, {@code d(r) = D ln(L0 / (2
 * pi r)) / (2 ln theta)}, {@code low = max(floor(d(beta_fast)), 0)}, {@code high =
 * min(ceil(d(beta_slow)), D - 1)} (+0.001 when equal), {@code ramp[j] = clamp((j - low) / (high -
 * low), 0, 1)}: {@code inv[j] = ext[j] / factor * ramp[j] + ext[j] (1 - ramp[j])}, and cos and sin
 * both multiplied by the attention factor. This class is the one place these are computed.
 */
public final class Rope {
  private Rope() {}

  /**
   * @return the inverse frequencies inv[j], j = 0..D/2-1, of {@code p} for head dim {@code d}
   */
  public static double[] inverseFrequencies(RopeParameters p, int d) {
    double[] inv = new double[d / 2];
    double[] ramp = p.type() == RopeParameters.Type.YARN ? yarnRamp(p, d) : null;
    for (int j = 0; j < d / 2; j++) {
      double ext = Math.pow(p.theta(), -2.0 * j / d);
      inv[j] = ramp == null ? ext : ext / p.factor() * ramp[j] + ext * (1 - ramp[j]);
    }
    return inv;
  }

  /**
   * @return YaRN's {low, high}: the frequency pairs below low keep their frequency, those from high
   *     on are divided by the factor
   */
  public static double[] yarnLowHigh(RopeParameters p, int d) {
    double low = correctionDim(p.betaFast(), d, p.theta(), p.originalMaxPositions());
    double high = correctionDim(p.betaSlow(), d, p.theta(), p.originalMaxPositions());
    if (p.truncate()) {
      low = Math.floor(low);
      high = Math.ceil(high);
    }
    return new double[] {Math.max(low, 0), Math.min(high, d - 1)};
  }

  /**
   * @return YaRN's ramp over the D/2 frequency pairs: 0 keeps a pair's frequency, 1 divides it by
   *     the factor
   */
  public static double[] yarnRamp(RopeParameters p, int d) {
    double[] lh = yarnLowHigh(p, d);
    double low = lh[0];
    double high = lh[1] == low ? lh[1] + 0.001 : lh[1];
    double[] ramp = new double[d / 2];
    for (int j = 0; j < ramp.length; j++) {
      ramp[j] = Math.min(1, Math.max(0, (j - low) / (high - low)));
    }
    return ramp;
  }

  /** The dimension whose wavelength fits {@code rotations} turns into L0 positions. */
  private static double correctionDim(double rotations, int d, double theta, int l0) {
    return d * Math.log(l0 / (rotations * 2 * Math.PI)) / (2 * Math.log(theta));
  }

  /**
   * @return {cos, sin} tables (T, D) as rows of position p: m cos(p inv[j mod D/2]), m sin(..), m
   *     the attention factor
   */
  static double[][] row(int p, double[] inv, double magnitude) {
    int d = inv.length * 2;
    double[] c = new double[d];
    double[] s = new double[d];
    for (int j = 0; j < d / 2; j++) {
      double angle = p * inv[j];
      c[j] = c[j + d / 2] = magnitude * Math.cos(angle);
      s[j] = s[j + d / 2] = magnitude * Math.sin(angle);
    }
    return new double[][] {c, s};
  }

  /**
   * @return {cos, sin} of position p, each concat(freqs, freqs) over D
   */
  static double[][] row(int p, int d, double theta) {
    double[] c = new double[d];
    double[] s = new double[d];
    for (int j = 0; j < d / 2; j++) {
      double angle = p * Math.pow(theta, -2.0 * j / d);
      c[j] = c[j + d / 2] = Math.cos(angle);
      s[j] = s[j + d / 2] = Math.sin(angle);
    }
    return new double[][] {c, s};
  }

  /**
   * x cos + rotate_half(x) sin with rotate_half(x) = [-x2, x1], computed as x cos + [x2, x1] *
   * [-sin, sin]: two new arrays per call.
   *
   * @param x (..., T, D)
   * @param cos (T, D)
   * @param signedSin (T, D), first half negated
   * @return x rotated, same shape
   */
  static NDArray apply(NDArray x, NDArray cos, NDArray signedSin) {
    int last = x.getShape().dimension() - 1;
    NDList halves = x.split(2, last); // positive axis: split(-1) throws in DJL
    NDArray swapped = NDArrays.concat(new NDList(halves.get(1), halves.get(0)), last);
    return x.mul(cos).addi(swapped.muli(signedSin));
  }
}
