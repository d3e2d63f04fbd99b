package io.olmoppl.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.olmoppl.runtime.TorchEngine;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@link LogitHead} against a plain-Java double reference: logits = x W^T (+ b), times the scale,
 * then log p(target) = logit(target) - log sum_V exp(logit), per row. Small random shapes, cut into
 * output slices and row steps of every kind (one slice, several, a narrower last one; one step,
 * several, a shorter last one).
 */
class LogitHeadTest {
  private static final double TOL = 1e-5;

  /**
   * @return (N) log p(target) for rows x (N, C) under W (V, C), bias (V) or null, in double
   */
  static double[] reference(
      float[] x, float[] w, float[] bias, double scale, long[] targets, int c) {
    int n = targets.length;
    int v = w.length / c;
    double[] lp = new double[n];
    for (int i = 0; i < n; i++) {
      double[] logits = new double[v];
      double max = Double.NEGATIVE_INFINITY;
      for (int j = 0; j < v; j++) {
        double s = 0;
        for (int k = 0; k < c; k++) {
          s += (double) x[i * c + k] * w[j * c + k];
        }
        logits[j] = (s + (bias == null ? 0 : bias[j])) * scale;
        max = Math.max(max, logits[j]);
      }
      double sum = 0;
      for (double l : logits) {
        sum += Math.exp(l - max);
      }
      lp[i] = logits[(int) targets[i]] - (max + Math.log(sum));
    }
    return lp;
  }

  private static float[] random(SplittableRandom r, int size, double spread) {
    float[] a = new float[size];
    for (int i = 0; i < size; i++) {
      a[i] = (float) ((r.nextDouble() * 2 - 1) * spread);
    }
    return a;
  }

  @ParameterizedTest(name = "V={0} C={1} N={2} sliceRows={3} rowsPerStep={4} bias={5} scale={6}")
  @CsvSource({
    "37, 8, 5, 37, 5, false, 1.0", // one slice, one step
    "37, 8, 5, 10, 2, false, 1.0", // four slices (the last 7 rows), three steps (the last 1 row)
    "64, 16, 9, 16, 4, true, 1.0", // slices of equal width, with an output bias
    "50, 12, 7, 13, 3, true, 0.2886751345948129", // OLMo's 1/sqrt(C) logit scale
    "5, 4, 11, 2, 1, false, 1.0", // more rows than vocabulary, a row per step
  })
  void matchesDoubleReferencePerRow(
      int vocab,
      int width,
      int n,
      long sliceRows,
      long rowsPerStep,
      boolean withBias,
      double scale) {
    SplittableRandom r = new SplittableRandom(vocab * 31L + width * 7L + n);
    float[] w = random(r, vocab * width, 1.0);
    float[] bias = withBias ? random(r, vocab, 2.0) : null;
    float[] x = random(r, n * width, 3.0);
    long[] targets = new long[n];
    for (int i = 0; i < n; i++) {
      targets[i] = i == 0 ? vocab - 1 : i == 1 ? 0 : r.nextInt(vocab); // both ends of V
    }
    double[] want = reference(x, w, bias, scale, targets, width);
    try (NDManager weights = TorchEngine.get().newBaseManager();
        NDManager m = TorchEngine.get().newBaseManager()) {
      NDArray wArr = weights.create(w, new Shape(vocab, width));
      NDArray bArr = bias == null ? null : weights.create(bias);
      LogitHead head = new LogitHead(wArr, bArr, scale, Precision.FP32, sliceRows, rowsPerStep);
      weights.cap(); // as in the model: nothing may attach to the weights
      assertEquals(sliceRows, head.sliceRows());
      float[] got = head.logProbs(m, m.create(x, new Shape(n, width)), targets);
      assertEquals(n, got.length);
      for (int i = 0; i < n; i++) {
        assertEquals(want[i], got[i], TOL, "row " + i + " target " + targets[i]);
        assertTrue(got[i] <= 0, "log p <= 0");
      }
    }
  }

  /**
   * Slices as wide as the model's on CPU (1536, the last one 1464), logits spread over more than 87
   * (so that some exps would be subnormal and are held at {@link LogitHead#MIN_EXPONENT}) and far
   * below 0 (so that a log-sum-exp without its shift would underflow). Float32 logits near 150
   * carry about 1e-5 of rounding each, hence the wider tolerance.
   */
  @ParameterizedTest(name = "offset={0}")
  @CsvSource({"0", "-150"})
  void wideSlicesWideSpreadsAndLargeOffsets(double offset) {
    int vocab = 3000;
    int width = 4;
    int n = 6;
    SplittableRandom r = new SplittableRandom(vocab + (long) offset);
    float[] w = random(r, vocab * width, 1.0);
    float[] bias = random(r, vocab, 1.0);
    for (int j = 0; j < vocab; j++) {
      bias[j] += (float) offset;
    }
    float[] x = random(r, n * width, 40.0);
    long[] targets = new long[n];
    for (int i = 0; i < n; i++) {
      targets[i] = i == 0 ? vocab - 1 : r.nextInt(vocab);
    }
    double[] want = reference(x, w, bias, 1.0, targets, width);
    try (NDManager weights = TorchEngine.get().newBaseManager();
        NDManager m = TorchEngine.get().newBaseManager()) {
      LogitHead head =
          new LogitHead(
              weights.create(w, new Shape(vocab, width)),
              weights.create(bias),
              1.0,
              Precision.FP32,
              1536,
              4);
      float[] got = head.logProbs(m, m.create(x, new Shape(n, width)), targets);
      double spread = 0; // the widest row's largest logit minus its smallest
      for (int i = 0; i < n; i++) {
        assertEquals(want[i], got[i], 1e-4, "row " + i + " target " + targets[i]);
        double lo = Double.POSITIVE_INFINITY;
        double hi = Double.NEGATIVE_INFINITY;
        for (int j = 0; j < vocab; j++) {
          double logit = bias[j];
          for (int k = 0; k < width; k++) {
            logit += (double) x[i * width + k] * w[j * width + k];
          }
          lo = Math.min(lo, logit);
          hi = Math.max(hi, logit);
        }
        spread = Math.max(spread, hi - lo);
      }
      assertTrue(spread > 87, "some exps must be subnormal, widest spread " + spread);
    }
  }

  @ParameterizedTest(name = "sliceRows={0}")
  @CsvSource({"23", "6", "1"})
  void probabilitiesOfEveryTargetSumToOne(long sliceRows) {
    int vocab = 23;
    int width = 6;
    SplittableRandom r = new SplittableRandom(sliceRows);
    float[] w = random(r, vocab * width, 1.0);
    float[] row = random(r, width, 4.0);
    float[] x = new float[vocab * width]; // the same row once per target
    long[] targets = new long[vocab];
    for (int j = 0; j < vocab; j++) {
      System.arraycopy(row, 0, x, j * width, width);
      targets[j] = j;
    }
    try (NDManager weights = TorchEngine.get().newBaseManager();
        NDManager m = TorchEngine.get().newBaseManager()) {
      LogitHead head =
          new LogitHead(
              weights.create(w, new Shape(vocab, width)), null, 1.0, Precision.FP32, sliceRows, 4);
      float[] lp = head.logProbs(m, m.create(x, new Shape(vocab, width)), targets);
      double total = 0;
      for (float p : lp) {
        total += Math.exp(p);
      }
      assertEquals(1.0, total, 1e-5);
    }
  }
}
