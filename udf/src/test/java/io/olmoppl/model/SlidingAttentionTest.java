package io.olmoppl.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.olmoppl.runtime.DjlSettings;
import io.olmoppl.runtime.TorchEngine;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Attention by query blocks over the keys in reach ({@link Ops#attention} with {@link
 * Ops#causalBlocks}) against a plain (T, T) attention in double with the mask written out: query i
 * sees key j iff j is in its own segment, j <= i and (sliding layers) i - W < j. Rows hold packed
 * segments and padding; every query block size, both kinds.
 */
class SlidingAttentionTest {
  private static final double TOL = 1e-5;

  @BeforeAll
  static void configure() {
    DjlSettings.configure();
  }

  @ParameterizedTest(name = "window {0}")
  @CsvSource({"5", "1", "13", "2147483647"}) // sliding, a window of one key, wider, full
  void blocksMatchPlainMaskedAttention(int window) {
    Random rnd = new Random(31 + window);
    int b = 2;
    int h = 4;
    int kv = 2;
    int t = 40;
    int d = 8;
    // row 0: one segment of 40; row 1: segments [0, 9), [9, 33), then 7 padding positions
    int[][] segmentStart = new int[b][t];
    for (int i = 0; i < t; i++) {
      segmentStart[1][i] = i < 9 ? 0 : i < 33 ? 9 : i;
    }
    float[] q = gaussian(rnd, b * h * t * d);
    float[] k = gaussian(rnd, b * kv * t * d);
    float[] v = gaussian(rnd, b * kv * t * d);
    double[] ref = reference(q, k, v, b, h, kv, t, d, segmentStart, window);
    try (NDManager m = TorchEngine.get().newBaseManager()) {
      for (int block : new int[] {t, 16, 7, 3, 1}) {
        Ops.CausalBlocks blocks = Ops.causalBlocks(m, segmentStart, block, window);
        float[] got =
            Ops.attention(
                    m.create(q, new Shape(b, h, t, d)),
                    m.create(k, new Shape(b, kv, t, d)),
                    m.create(v, new Shape(b, kv, t, d)),
                    Precision.FP32,
                    blocks)
                .toFloatArray(); // (B, T, H, D)
        double worst = 0;
        for (int i = 0; i < ref.length; i++) {
          worst = Math.max(worst, Math.abs(ref[i] - got[i]));
        }
        assertTrue(worst < TOL, "window " + window + ", query block " + block + ": " + worst);
        if (window < t && block < t) {
          // a sliding layer computes only the keys in reach: at most W - 1 + block per query
          assertTrue(blocks.computedPairs() <= (long) t * (window - 1 + block));
        }
      }
    }
  }

  /** A one-segment row of 600 positions, W = 37: the band blocks (every row the same). */
  @ParameterizedTest(name = "query block {0}")
  @CsvSource({"64", "37", "10"})
  void longRowWithBandBlocks(int block) {
    Random rnd = new Random(7);
    int t = 600;
    int window = 37;
    int h = 2;
    int d = 4;
    float[] q = gaussian(rnd, h * t * d);
    float[] k = gaussian(rnd, t * d);
    float[] v = gaussian(rnd, t * d);
    double[] ref = reference(q, k, v, 1, h, 1, t, d, new int[1][t], window);
    try (NDManager m = TorchEngine.get().newBaseManager()) {
      Ops.CausalBlocks blocks = Ops.causalBlocks(m, new int[1][t], block, window);
      float[] got =
          Ops.attention(
                  m.create(q, new Shape(1, h, t, d)),
                  m.create(k, new Shape(1, 1, t, d)),
                  m.create(v, new Shape(1, 1, t, d)),
                  Precision.FP32,
                  blocks)
              .toFloatArray();
      for (int i = 0; i < ref.length; i++) {
        assertEquals(ref[i], got[i], TOL, "element " + i);
      }
      assertTrue(blocks.computedPairs() <= (long) t * (window - 1 + block));
    }
  }

  /** Plain softmax attention over the whole (T, T) grid, in double. @return (B, T, H, D) */
  static double[] reference(
      float[] q,
      float[] k,
      float[] v,
      int b,
      int h,
      int kv,
      int t,
      int d,
      int[][] segmentStart,
      int window) {
    double[] out = new double[b * t * h * d];
    int g = h / kv;
    for (int r = 0; r < b; r++) {
      for (int hi = 0; hi < h; hi++) {
        int kh = hi / g;
        for (int i = 0; i < t; i++) {
          double[] s = new double[t];
          double max = Double.NEGATIVE_INFINITY;
          for (int j = 0; j < t; j++) {
            boolean seen = j >= segmentStart[r][i] && j <= i && (long) i - window < j;
            if (!seen) {
              s[j] = Double.NEGATIVE_INFINITY;
              continue;
            }
            double dot = 0;
            for (int x = 0; x < d; x++) {
              dot +=
                  q[((r * h + hi) * t + i) * d + x] * (double) k[((r * kv + kh) * t + j) * d + x];
            }
            s[j] = dot / Math.sqrt(d);
            max = Math.max(max, s[j]);
          }
          double z = 0;
          for (int j = 0; j < t; j++) {
            s[j] = s[j] == Double.NEGATIVE_INFINITY ? 0 : Math.exp(s[j] - max);
            z += s[j];
          }
          for (int x = 0; x < d; x++) {
            double acc = 0;
            for (int j = 0; j < t; j++) {
              acc += s[j] / z * v[((r * kv + kh) * t + j) * d + x];
            }
            out[((r * t + i) * h + hi) * d + x] = acc;
          }
        }
      }
    }
    return out;
  }

  private static float[] gaussian(Random rnd, int n) {
    float[] a = new float[n];
    for (int i = 0; i < n; i++) {
      a[i] = (float) (rnd.nextGaussian() * 1.5);
    }
    return a;
  }
}
