package io.olmoppl.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.olmoppl.runtime.DjlSettings;
import io.olmoppl.runtime.TorchEngine;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Op-level control tests: a naive {@code double} implementation of every forward-pass building
 * block, kept here, checked against the NDArray version in {@link Ops} on seeded random inputs
 * (Jlama's "control ops" pattern). Reference semantics: allenai/OLMo {@code olmo/model.py} and
 * transformers {@code modeling_olmo.py} (weightless LayerNorm, RMSNorm, NeoX "rotate half" RoPE,
 * SwiGLU {@code silu(gate) * up}, GQA attention with fp32 softmax).
 */
class OpsReferenceTest {
  private static final double TOL = 1e-5;

  @BeforeAll
  static void configure() {
    DjlSettings.configure();
  }

  // ---------------------------------------------------------------------------------------------------------------
  // double references

  /**
   * F.layer_norm without affine over rows of width {@code w}: (x - mean) / sqrt(biased var + eps).
   */
  static double[] refLayerNorm(float[] x, int w, double eps) {
    double[] y = new double[x.length];
    for (int r = 0; r < x.length / w; r++) {
      double mean = 0;
      for (int i = 0; i < w; i++) {
        mean += x[r * w + i];
      }
      mean /= w;
      double var = 0;
      for (int i = 0; i < w; i++) {
        double d = x[r * w + i] - mean;
        var += d * d;
      }
      var /= w; // biased, as torch
      double inv = 1.0 / Math.sqrt(var + eps);
      for (int i = 0; i < w; i++) {
        y[r * w + i] = (x[r * w + i] - mean) * inv;
      }
    }
    return y;
  }

  /** LlamaRMSNorm: weight * x / sqrt(mean(x^2) + eps), rows of width w. */
  static double[] refRmsNorm(float[] x, float[] weight, int w, double eps) {
    double[] y = new double[x.length];
    for (int r = 0; r < x.length / w; r++) {
      double ms = 0;
      for (int i = 0; i < w; i++) {
        ms += (double) x[r * w + i] * x[r * w + i];
      }
      ms /= w;
      double inv = 1.0 / Math.sqrt(ms + eps);
      for (int i = 0; i < w; i++) {
        y[r * w + i] = weight[i] * (x[r * w + i] * inv);
      }
    }
    return y;
  }

  /**
   * NeoX rotate-half RoPE on x (B, heads, T, D), positions 0..T-1: out[j] = x[j] cos - x[j+D/2]
   * sin, out[j+D/2] = x[j+D/2] cos + x[j] sin, angle = p * theta^(-2j/D).
   */
  static double[] refRope(float[] x, int bh, int t, int d, double theta) {
    double[] y = new double[x.length];
    int half = d / 2;
    for (int g = 0; g < bh; g++) {
      for (int p = 0; p < t; p++) {
        int base = (g * t + p) * d;
        for (int j = 0; j < half; j++) {
          double angle = p * Math.pow(theta, -2.0 * j / d);
          double c = Math.cos(angle);
          double s = Math.sin(angle);
          double a = x[base + j];
          double b = x[base + j + half];
          y[base + j] = a * c - b * s;
          y[base + j + half] = b * c + a * s;
        }
      }
    }
    return y;
  }

  static double silu(double z) {
    return z / (1 + Math.exp(-z));
  }

  /**
   * Causal attention with grouped kv heads. q (B, H, T, D), k and v (B, K, T, D); query head j
   * reads kv head j / (H/K).
   *
   * @return (B, H, T, D)
   */
  static double[] refAttention(
      float[] q, float[] k, float[] v, int b, int h, int kv, int t, int d) {
    double[] out = new double[b * h * t * d];
    int group = h / kv;
    double scale = 1.0 / Math.sqrt(d);
    for (int bi = 0; bi < b; bi++) {
      for (int hi = 0; hi < h; hi++) {
        int ki = hi / group;
        for (int i = 0; i < t; i++) {
          double[] scores = new double[i + 1];
          double max = Double.NEGATIVE_INFINITY;
          for (int j = 0; j <= i; j++) { // key j visible to query i iff j <= i
            double s = 0;
            for (int x = 0; x < d; x++) {
              s +=
                  (double) q[((bi * h + hi) * t + i) * d + x] * k[((bi * kv + ki) * t + j) * d + x];
            }
            scores[j] = s * scale;
            max = Math.max(max, scores[j]);
          }
          double z = 0;
          for (int j = 0; j <= i; j++) {
            scores[j] = Math.exp(scores[j] - max);
            z += scores[j];
          }
          for (int j = 0; j <= i; j++) {
            double p = scores[j] / z;
            for (int x = 0; x < d; x++) {
              out[((bi * h + hi) * t + i) * d + x] += p * v[((bi * kv + ki) * t + j) * d + x];
            }
          }
        }
      }
    }
    return out;
  }

  /** log-softmax over rows of width w, via a max-shifted log-sum-exp in double. */
  static double[] refLogSoftmax(float[] x, int w) {
    double[] y = new double[x.length];
    for (int r = 0; r < x.length / w; r++) {
      double max = Double.NEGATIVE_INFINITY;
      for (int i = 0; i < w; i++) {
        max = Math.max(max, x[r * w + i]);
      }
      double z = 0;
      for (int i = 0; i < w; i++) {
        z += Math.exp(x[r * w + i] - max);
      }
      double lse = max + Math.log(z);
      for (int i = 0; i < w; i++) {
        y[r * w + i] = x[r * w + i] - lse;
      }
    }
    return y;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // helpers

  static float[] gaussian(Random rnd, int n, double mean, double std) {
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = (float) (mean + std * rnd.nextGaussian());
    }
    return v;
  }

  /**
   * Asserts |got - want| <= tol * max(1, |want|) everywhere; returns the worst scaled difference.
   */
  static double assertClose(double[] want, float[] got, double tol, String what) {
    assertEquals(want.length, got.length, what + ": length");
    double worst = 0;
    for (int i = 0; i < want.length; i++) {
      double d = Math.abs(want[i] - got[i]) / Math.max(1.0, Math.abs(want[i]));
      worst = Math.max(worst, d);
      assertTrue(d <= tol, what + ": element " + i + " got " + got[i] + ", reference " + want[i]);
    }
    return worst;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // tests

  @Test
  void layerNormMatchesReference() {
    Random rnd = new Random(11);
    int rows = 6;
    int w = 64;
    float[] x = gaussian(rnd, rows * w, 3.0, 2.0); // non-zero mean: the centring matters
    // one nearly constant row: the variance is tiny and eps 1e-5 dominates it
    for (int i = 0; i < w; i++) {
      x[i] = (float) (0.5 + 1e-3 * rnd.nextGaussian());
    }
    try (NDManager m = TorchEngine.get().newBaseManager()) {
      NDArray y =
          Ops.layerNorm(
              m.create(x, new Shape(2, 3, w)), m.ones(new Shape(w)), m.zeros(new Shape(w)), 1e-5);
      assertEquals(new Shape(2, 3, w), y.getShape());
      assertClose(refLayerNorm(x, w, 1e-5), y.toFloatArray(), TOL, "layerNorm");
      // eps is really used: with eps 1e-5 the near-constant row is visibly shrunk compared to eps
      // 1e-12
      double[] tiny = refLayerNorm(x, w, 1e-12);
      double[] withEps = refLayerNorm(x, w, 1e-5);
      assertTrue(Math.abs(tiny[0] - withEps[0]) > 1e-3, "test input must make eps matter");
    }
  }

  @Test
  void rmsNormWithWeightMatchesReference() {
    Random rnd = new Random(12);
    int rows = 5;
    int w = 48;
    float[] x = gaussian(rnd, rows * w, 0.7, 1.5);
    for (int i = 0; i < w; i++) {
      x[i] = (float) (1e-3 * rnd.nextGaussian()); // mean(x^2) ~ 1e-6: eps 1e-6 changes the result
    }
    float[] weight = gaussian(rnd, w, 1.0, 0.2);
    try (NDManager m = TorchEngine.get().newBaseManager()) {
      NDArray wt = m.create(weight);
      NDArray y = Ops.rmsNorm(m.create(x, new Shape(rows, w)), 1e-6).mul(wt);
      assertEquals(new Shape(rows, w), y.getShape());
      assertClose(refRmsNorm(x, weight, w, 1e-6), y.toFloatArray(), TOL, "rmsNorm");
      double[] other = refRmsNorm(x, weight, w, 1e-5);
      double[] ref = refRmsNorm(x, weight, w, 1e-6);
      assertTrue(
          Math.abs(other[0] - ref[0]) > 1e-3 * Math.abs(ref[0]), "test input must make eps matter");
    }
  }

  @ParameterizedTest
  @ValueSource(doubles = {10000.0, 500000.0})
  void ropeTablesMatchReference(double theta) {
    int t = 50;
    int d = 8;
    try (NDManager m = TorchEngine.get().newBaseManager()) {
      NDArray[] cs = Ops.ropeTables(m, t, d, theta);
      assertEquals(new Shape(t, d), cs[0].getShape());
      assertEquals(new Shape(t, d), cs[1].getShape());
      float[] cos = cs[0].toFloatArray();
      float[] sin = cs[1].toFloatArray();
      for (int p = 0; p < t; p++) {
        for (int j = 0; j < d; j++) {
          double angle = p * Math.pow(theta, -2.0 * (j % (d / 2)) / d); // concat(freqs, freqs)
          assertEquals(Math.cos(angle), cos[p * d + j], 1e-6, "cos p=" + p + " j=" + j);
          // rotate_half folded into the sign: the first half of the sine table is negated
          double sign = j < d / 2 ? -1 : 1;
          assertEquals(
              sign * Math.sin(angle), sin[p * d + j], 1e-6, "signed sin p=" + p + " j=" + j);
        }
      }
    }
  }

  @ParameterizedTest
  @ValueSource(doubles = {10000.0, 500000.0})
  void ropeMatchesNeoxReference(double theta) {
    Random rnd = new Random(13 + (long) theta);
    int b = 2;
    int heads = 3;
    int t = 40;
    int d = 8;
    float[] x = gaussian(rnd, b * heads * t * d, 0.0, 1.0);
    try (NDManager m = TorchEngine.get().newBaseManager()) {
      NDArray[] cs = Ops.ropeTables(m, t, d, theta);
      NDArray y = Ops.rope(m.create(x, new Shape(b, heads, t, d)), cs[0], cs[1]);
      assertEquals(new Shape(b, heads, t, d), y.getShape());
      float[] got = y.toFloatArray();
      assertClose(refRope(x, b * heads, t, d, theta), got, TOL, "rope theta=" + theta);
      // position 0 is the identity
      for (int j = 0; j < d; j++) {
        assertEquals(x[j], got[j], 1e-7, "rope at position 0 must not rotate");
      }
    }
  }

  @Test
  void ropeIsRelative() {
    // <rope(q, p1), rope(k, p2)> depends only on p1 - p2: the property attention relies on
    Random rnd = new Random(14);
    int t = 32;
    int d = 8;
    float[] q = gaussian(rnd, d, 0, 1);
    float[] k = gaussian(rnd, d, 0, 1);
    float[] qs = new float[t * d];
    float[] ks = new float[t * d];
    for (int p = 0; p < t; p++) {
      System.arraycopy(q, 0, qs, p * d, d);
      System.arraycopy(k, 0, ks, p * d, d);
    }
    try (NDManager m = TorchEngine.get().newBaseManager()) {
      NDArray[] cs = Ops.ropeTables(m, t, d, 10000.0);
      float[] rq = Ops.rope(m.create(qs, new Shape(1, 1, t, d)), cs[0], cs[1]).toFloatArray();
      float[] rk = Ops.rope(m.create(ks, new Shape(1, 1, t, d)), cs[0], cs[1]).toFloatArray();
      int delta = 5;
      double first = dot(rq, 7 * d, rk, (7 - delta) * d, d);
      for (int p = delta; p < t; p++) {
        assertEquals(
            first,
            dot(rq, p * d, rk, (p - delta) * d, d),
            1e-4,
            "relative position " + delta + " at " + p);
      }
    }
  }

  private static double dot(float[] a, int ao, float[] b, int bo, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) {
      s += (double) a[ao + i] * b[bo + i];
    }
    return s;
  }

  @Test
  void swigluIsSiluOfGateTimesUp() {
    Random rnd = new Random(15);
    int rows = 4;
    int w = 24;
    float[] up = gaussian(rnd, rows * w, 0.0, 2.0);
    float[] gate = gaussian(rnd, rows * w, 0.0, 4.0); // covers the saturated ends of the sigmoid
    gate[0] = -30f;
    gate[1] = 30f;
    double[] ref = new double[rows * w];
    for (int i = 0; i < ref.length; i++) {
      ref[i] = silu(gate[i]) * up[i];
    }
    try (NDManager m = TorchEngine.get().newBaseManager()) {
      NDArray y = Ops.swiglu(m.create(up, new Shape(rows, w)), m.create(gate, new Shape(rows, w)));
      assertEquals(new Shape(rows, w), y.getShape());
      assertClose(ref, y.toFloatArray(), TOL, "swiglu(up, gate)");
    }
  }

  @Test
  void linearMatchesReference() {
    Random rnd = new Random(16);
    int b = 2;
    int t = 3;
    int in = 16;
    int out = 10;
    float[] x = gaussian(rnd, b * t * in, 0, 1);
    float[] w = gaussian(rnd, out * in, 0, 0.5);
    float[] bias = gaussian(rnd, out, 0, 1);
    double[] ref = new double[b * t * out];
    for (int r = 0; r < b * t; r++) {
      for (int o = 0; o < out; o++) {
        double s = bias[o];
        for (int i = 0; i < in; i++) {
          s += (double) x[r * in + i] * w[o * in + i]; // x W^T: W is [out, in]
        }
        ref[r * out + o] = s;
      }
    }
    try (NDManager m = TorchEngine.get().newBaseManager()) {
      NDArray y =
          Ops.linear(
              m.create(x, new Shape(b, t, in)),
              m.create(w, new Shape(out, in)),
              m.create(bias),
              Precision.FP32);
      assertEquals(new Shape(b, t, out), y.getShape());
      assertClose(ref, y.toFloatArray(), TOL, "linear");
    }
  }

  @Test
  void causalMaskIsAdditiveLowerTriangle() {
    int t = 6;
    try (NDManager m = TorchEngine.get().newBaseManager()) {
      NDArray mask = Ops.causalMask(m, t);
      assertEquals(new Shape(t, t), mask.getShape());
      float[] v = mask.toFloatArray();
      for (int i = 0; i < t; i++) {
        for (int j = 0; j < t; j++) {
          if (j <= i) {
            assertEquals(0f, v[i * t + j], "visible key " + j + " for query " + i);
          } else {
            assertTrue(
                v[i * t + j] <= -1e9f, "future key " + j + " for query " + i + " must be masked");
          }
        }
      }
    }
  }

  @Test
  void groupedQueryAttentionMatchesReference() {
    Random rnd = new Random(17);
    int b = 2;
    int h = 4;
    int kv = 2;
    int t = 7;
    int d = 8;
    float[] q =
        gaussian(rnd, b * h * t * d, 0, 1.5); // large enough that the softmax is far from uniform
    float[] k = gaussian(rnd, b * kv * t * d, 0, 1.5);
    float[] v = gaussian(rnd, b * kv * t * d, 0, 1);
    double[] ref = refAttention(q, k, v, b, h, kv, t, d);
    try (NDManager m = TorchEngine.get().newBaseManager()) {
      float[] got = null;
      for (int block : new int[] {t, 3, 1}) { // one block, uneven query blocks, one query per block
        NDArray y =
            Ops.attention(
                    m.create(q, new Shape(b, h, t, d)),
                    m.create(k, new Shape(b, kv, t, d)),
                    m.create(v, new Shape(b, kv, t, d)),
                    Precision.FP32,
                    Ops.causalBlocks(m, new int[b][t], block))
                .transpose(0, 2, 1, 3);
        assertEquals(new Shape(b, h, t, d), y.getShape());
        got = y.toFloatArray();
        assertClose(ref, got, TOL, "attention H=4 K=2, query block " + block);
      }
      // the other plausible GQA mapping (query head j uses kv head j % K) must give a different
      // answer
      double[] wrong = refAttentionModuloMapping(q, k, v, b, h, kv, t, d);
      double maxDiff = 0;
      for (int i = 0; i < got.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(wrong[i] - got[i]));
      }
      assertTrue(maxDiff > 1e-2, "test input must distinguish j / (H/K) from j % K");
    }
  }

  /**
   * Same as {@link #refAttention} but with kv head j % K: a plausible mistake the test must be able
   * to see.
   */
  private static double[] refAttentionModuloMapping(
      float[] q, float[] k, float[] v, int b, int h, int kv, int t, int d) {
    float[] kk = new float[b * h * t * d];
    float[] vv = new float[b * h * t * d];
    for (int bi = 0; bi < b; bi++) {
      for (int hi = 0; hi < h; hi++) {
        System.arraycopy(k, ((bi * kv + hi % kv) * t) * d, kk, ((bi * h + hi) * t) * d, t * d);
        System.arraycopy(v, ((bi * kv + hi % kv) * t) * d, vv, ((bi * h + hi) * t) * d, t * d);
      }
    }
    return refAttention(q, kk, vv, b, h, h, t, d);
  }

  /**
   * Windows packed end to end in a row: each segment's attention equals the reference attention of
   * that segment alone, whatever the query blocks; padding positions do not disturb real ones.
   */
  @Test
  void packedSegmentsAttendOnlyToThemselves() {
    Random rnd = new Random(21);
    int b = 2;
    int h = 4;
    int kv = 2;
    int t = 7;
    int d = 8;
    // row 0: segments [0, 3) and [3, 7); row 1: one segment [0, 5), then two padding positions
    int[][] segments = {{0, 3, 7}, {0, 5}};
    int[][] segmentStart = {{0, 0, 0, 3, 3, 3, 3}, {0, 0, 0, 0, 0, 5, 6}};
    float[] q = gaussian(rnd, b * h * t * d, 0, 1.5);
    float[] k = gaussian(rnd, b * kv * t * d, 0, 1.5);
    float[] v = gaussian(rnd, b * kv * t * d, 0, 1);
    try (NDManager m = TorchEngine.get().newBaseManager()) {
      for (int block : new int[] {t, 3, 2, 1}) {
        float[] got =
            Ops.attention(
                    m.create(q, new Shape(b, h, t, d)),
                    m.create(k, new Shape(b, kv, t, d)),
                    m.create(v, new Shape(b, kv, t, d)),
                    Precision.FP32,
                    Ops.causalBlocks(m, segmentStart, block))
                .toFloatArray(); // (B, T, H, D)
        for (int r = 0; r < b; r++) {
          for (int sgi = 0; sgi + 1 < segments[r].length; sgi++) {
            int s0 = segments[r][sgi];
            int len = segments[r][sgi + 1] - s0;
            double[] ref =
                refAttention(
                    slice(q, r, h, t, d, s0, len),
                    slice(k, r, kv, t, d, s0, len),
                    slice(v, r, kv, t, d, s0, len),
                    1,
                    h,
                    kv,
                    len,
                    d); // (1, H, len, D)
            for (int hi = 0; hi < h; hi++) {
              for (int i = 0; i < len; i++) {
                for (int x = 0; x < d; x++) {
                  double want = ref[(hi * len + i) * d + x];
                  float have = got[((r * t + s0 + i) * h + hi) * d + x];
                  assertEquals(
                      want,
                      have,
                      TOL * Math.max(1, Math.abs(want)),
                      "row " + r + " segment " + sgi + " position " + i + ", query block " + block);
                }
              }
            }
          }
        }
      }
    }
  }

  /**
   * @return positions [s0, s0 + len) of row r of x (B, heads, T, D), as (1, heads, len, D)
   */
  private static float[] slice(float[] x, int r, int heads, int t, int d, int s0, int len) {
    float[] out = new float[heads * len * d];
    for (int hi = 0; hi < heads; hi++) {
      System.arraycopy(x, ((r * heads + hi) * t + s0) * d, out, (hi * len) * d, len * d);
    }
    return out;
  }

  @Test
  void attentionWithOneKvHeadPerQueryHeadMatchesReference() {
    Random rnd = new Random(18);
    int b = 1;
    int h = 2;
    int t = 9;
    int d = 8;
    float[] q = gaussian(rnd, b * h * t * d, 0, 1.5);
    float[] k = gaussian(rnd, b * h * t * d, 0, 1.5);
    float[] v = gaussian(rnd, b * h * t * d, 0, 1);
    try (NDManager m = TorchEngine.get().newBaseManager()) {
      NDArray y =
          Ops.attention(
                  m.create(q, new Shape(b, h, t, d)),
                  m.create(k, new Shape(b, h, t, d)),
                  m.create(v, new Shape(b, h, t, d)),
                  Precision.FP32,
                  Ops.causalBlocks(m, new int[b][t], 4))
              .transpose(0, 2, 1, 3);
      assertClose(refAttention(q, k, v, b, h, h, t, d), y.toFloatArray(), TOL, "attention H=K=2");
    }
  }

  @Test
  void logSoftmaxOverWideRowMatchesReference() {
    Random rnd = new Random(19);
    int rows = 3;
    int w = 5000;
    float[] x = gaussian(rnd, rows * w, 0.0, 4.0);
    for (int i = 0; i < w; i++) {
      x[w + i] += 1000f; // a large common offset: needs the max shift
      x[2 * w + i] *= 5f; // a peaked row
    }
    try (NDManager m = TorchEngine.get().newBaseManager()) {
      NDArray y = m.create(x, new Shape(rows, w)).logSoftmax(-1);
      float[] got = y.toFloatArray();
      double[] ref = refLogSoftmax(x, w);
      assertClose(ref, got, TOL, "logSoftmax");
      for (int r = 0; r < rows; r++) {
        double z = 0;
        for (int i = 0; i < w; i++) {
          z += Math.exp(got[r * w + i]);
        }
        assertEquals(1.0, z, 1e-4, "row " + r + " is a distribution");
      }
    }
  }
}
