package io.olmoppl.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.olmoppl.checkpoint.CheckpointLayout;
import io.olmoppl.checkpoint.DType;
import io.olmoppl.checkpoint.Experts;
import io.olmoppl.checkpoint.OlmoConfig;
import io.olmoppl.checkpoint.writer.LayoutConfigWriter;
import io.olmoppl.runtime.DjlSettings;
import io.olmoppl.runtime.TorchEngine;
import java.util.Arrays;
import java.util.Comparator;
import java.util.SplittableRandom;
import java.util.stream.IntStream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The expert MLP against a plain-Java double reference of transformers' {@code
 * OlmoeSparseMoeBlock}: the router (softmax over every expert, top k, the weights as they are or
 * divided by their sum) and the whole block (the weighted sum of the chosen experts' SwiGLU MLPs),
 * whole and in row chunks.
 */
class MixtureOfExpertsTest {
  private static final int C = 12;
  private static final int I = 10;

  @BeforeAll
  static void configure() {
    DjlSettings.configure();
  }

  private static float[] random(SplittableRandom rnd, int n, double scale) {
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = (float) ((rnd.nextDouble() * 2 - 1) * scale);
    }
    return v;
  }

  /** Router probabilities of one row, softmax over every expert, in double. */
  private static double[] probs(float[] x, int row, float[] router, int e) {
    double[] z = new double[e];
    double max = Double.NEGATIVE_INFINITY;
    for (int j = 0; j < e; j++) {
      for (int c = 0; c < C; c++) {
        z[j] += (double) x[row * C + c] * router[j * C + c];
      }
      max = Math.max(max, z[j]);
    }
    double sum = 0;
    for (int j = 0; j < e; j++) {
      z[j] = Math.exp(z[j] - max);
      sum += z[j];
    }
    for (int j = 0; j < e; j++) {
      z[j] /= sum;
    }
    return z;
  }

  /** The k largest, by decreasing probability. */
  private static int[] topK(double[] p, int k) {
    return IntStream.range(0, p.length)
        .boxed()
        .sorted(Comparator.comparingDouble((Integer j) -> -p[j]))
        .limit(k)
        .mapToInt(Integer::intValue)
        .toArray();
  }

  private static double[] weights(double[] p, int[] top, boolean norm) {
    double[] w = new double[top.length];
    double sum = 0;
    for (int j = 0; j < top.length; j++) {
      w[j] = p[top[j]];
      sum += w[j];
    }
    if (norm) {
      for (int j = 0; j < w.length; j++) {
        w[j] /= sum;
      }
    }
    return w;
  }

  @ParameterizedTest
  @CsvSource({"6, 2, false", "6, 2, true", "8, 3, false", "5, 5, true", "7, 1, false"})
  void routerMatchesTheDoubleReference(int e, int k, boolean norm) {
    SplittableRandom rnd = new SplittableRandom(11L * e + k);
    int n = 64;
    float[] x = random(rnd, n * C, 1.0);
    float[] router = random(rnd, e * C, 1.0);
    try (NDManager m = TorchEngine.get().newBaseManager(Device.cpu())) {
      MixtureOfExperts.Routing r =
          MixtureOfExperts.route(
              m.create(x, new Shape(n, C)),
              m.create(router, new Shape(e, C)),
              k,
              norm,
              Precision.FP32);
      assertEquals(n * k, r.experts().length);
      double worst = 0;
      for (int row = 0; row < n; row++) {
        double[] p = probs(x, row, router, e);
        int[] top = topK(p, k);
        if (k < e) { // the data must not make the float32 choice ambiguous
          assertTrue(p[top[k - 1]] - p[topK(p, k + 1)[k]] > 1e-5, "row " + row + " near a tie");
        }
        double[] w = weights(p, top, norm);
        for (int j = 0; j < k; j++) {
          assertEquals(top[j], r.experts()[row * k + j], "row " + row + " expert " + j);
          worst = Math.max(worst, Math.abs(w[j] - r.weights()[row * k + j]));
        }
      }
      assertTrue(worst < 1e-6, "router weights off by " + worst);
      if (!norm && k < e) { // without renormalisation the weights sum to less than 1
        assertTrue(r.weights()[0] + r.weights()[1 % k] < 1.0 || k == 1);
      }
    }
  }

  @Test
  void tiedExpertsStillGiveAValidTopK() {
    // experts 1, 2 and 3 have the same router row: every token ties between them
    int e = 5;
    int k = 2;
    int n = 16;
    SplittableRandom rnd = new SplittableRandom(3);
    float[] x = random(rnd, n * C, 1.0);
    float[] router = random(rnd, e * C, 1.0);
    for (int c = 0; c < C; c++) {
      router[2 * C + c] = router[C + c];
      router[3 * C + c] = router[C + c];
    }
    try (NDManager m = TorchEngine.get().newBaseManager(Device.cpu())) {
      for (boolean norm : new boolean[] {false, true}) {
        MixtureOfExperts.Routing r =
            MixtureOfExperts.route(
                m.create(x, new Shape(n, C)),
                m.create(router, new Shape(e, C)),
                k,
                norm,
                Precision.FP32);
        for (int row = 0; row < n; row++) {
          double[] p = probs(x, row, router, e);
          int a = r.experts()[row * k];
          int b = r.experts()[row * k + 1];
          assertNotEquals(a, b, "row " + row + ": an expert chosen twice");
          double lowest = Math.min(p[a], p[b]);
          for (int j = 0; j < e; j++) {
            if (j != a && j != b) {
              assertTrue(p[j] <= lowest + 1e-7, "row " + row + ": expert " + j + " left out");
            }
          }
          double[] w = weights(p, new int[] {a, b}, norm);
          assertEquals(w[0], r.weights()[row * k], 1e-6);
          assertEquals(w[1], r.weights()[row * k + 1], 1e-6);
        }
      }
    }
  }

  /** The whole block in double: sum over the chosen experts of w * down(silu(gate x) * up x). */
  private static double[] reference(
      float[] x, int n, float[] router, float[][] upGate, float[][] down, Experts ex) {
    double[] out = new double[n * C];
    for (int row = 0; row < n; row++) {
      double[] p = probs(x, row, router, ex.count());
      int[] top = topK(p, ex.topK());
      double[] w = weights(p, top, ex.normTopkProb());
      for (int j = 0; j < top.length; j++) {
        float[] ug = upGate[top[j]];
        float[] dn = down[top[j]];
        double[] act = new double[I];
        for (int i = 0; i < I; i++) {
          double up = 0;
          double gate = 0;
          for (int c = 0; c < C; c++) {
            up += (double) ug[i * C + c] * x[row * C + c];
            gate += (double) ug[(I + i) * C + c] * x[row * C + c];
          }
          act[i] = gate / (1 + Math.exp(-gate)) * up;
        }
        for (int c = 0; c < C; c++) {
          double y = 0;
          for (int i = 0; i < I; i++) {
            y += (double) dn[c * I + i] * act[i];
          }
          out[row * C + c] += w[j] * y;
        }
      }
    }
    return out;
  }

  @ParameterizedTest
  @CsvSource({"6, 2, false, 10", "6, 2, true, 4", "3, 2, true, 10"})
  void blockMatchesTheDoubleReferenceWholeAndInRowChunks(
      int e, int k, boolean norm, int sliceWidth) {
    Experts ex = new Experts(e, k, norm);
    OlmoConfig c =
        OlmoConfig.fromJson(
            LayoutConfigWriter.configJson(
                CheckpointLayout.OLMOE,
                new LayoutConfigWriter.Dims(C, 1, 2, 2, I, 50304, 32, ex),
                false,
                DType.F32),
            "test config");
    SplittableRandom rnd = new SplittableRandom(e * 31L + k);
    int n = 40;
    float[] x = random(rnd, n * C, 1.0);
    float[] router = random(rnd, e * C, 1.0);
    float[][] upGate = new float[e][];
    float[][] down = new float[e][];
    for (int i = 0; i < e; i++) {
      upGate[i] = random(rnd, 2 * I * C, 0.5);
      down[i] = random(rnd, C * I, 0.5);
    }
    double[] want = reference(x, n, router, upGate, down, ex);
    try (NDManager m = TorchEngine.get().newBaseManager(Device.cpu())) {
      OlmoWeights.ExpertWeights[] experts = new OlmoWeights.ExpertWeights[e];
      for (int i = 0; i < e; i++) {
        experts[i] =
            new OlmoWeights.ExpertWeights(
                m.create(upGate[i], new Shape(2 * I, C)), m.create(down[i], new Shape(C, I)));
      }
      OlmoWeights.LayerWeights w =
          new OlmoWeights.LayerWeights(
              null,
              null,
              null,
              null,
              null,
              null,
              null,
              null,
              null,
              null,
              null,
              null,
              null,
              null,
              m.create(router, new Shape(e, C)),
              experts);
      MixtureOfExperts moe = new MixtureOfExperts(c, w, sliceWidth, Precision.FP32);
      NDArray in = m.create(x, new Shape(n, C));
      float[] whole = moe.forward(in).toFloatArray();
      // the same rows in chunks of other sizes: each row's output is its own
      NDList parts = new NDList();
      for (int[] chunk : new int[][] {{0, 1}, {1, 17}, {17, 40}}) {
        parts.add(moe.forward(in.get(chunk[0] + ":" + chunk[1])));
      }
      float[] chunked = NDArrays.concat(parts, 0).toFloatArray();
      double worst = 0;
      double worstChunk = 0;
      for (int i = 0; i < want.length; i++) {
        worst = Math.max(worst, Math.abs(want[i] - whole[i]));
        worstChunk = Math.max(worstChunk, Math.abs(whole[i] - chunked[i]));
      }
      assertTrue(worst < 1e-5, "block off the double reference by " + worst);
      assertTrue(worstChunk < 1e-6, "a row's output depends on its chunk by " + worstChunk);
      assertTrue(Arrays.stream(want).anyMatch(v -> Math.abs(v) > 1e-2), "a non-trivial output");
    }
  }
}
