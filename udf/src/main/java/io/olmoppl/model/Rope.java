package io.olmoppl.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;

/**
 * Rotary position embedding, NeoX ("rotate half") pairing over the full head dim, as OLMo and
 * transformers' Llama family: {@code inv_freq[j] = theta^(-2j/D)}, {@code out[j] = x[j] cos -
 * x[j+D/2] sin}, {@code out[j+D/2] = x[j+D/2] cos + x[j] sin}. Tables are computed in double and
 * rounded once to float32.
 */
final class Rope {
  private Rope() {}

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
