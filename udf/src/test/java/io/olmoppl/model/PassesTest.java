package io.olmoppl.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.olmoppl.testing.Refcases;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** How a CPU model lays a batch's windows out in forward passes (rows of packed windows). */
class PassesTest {
  private static OlmoModel model;

  @BeforeAll
  static void load() {
    model = Refcases.cpuModel("p01_olmo_tied_f32");
  }

  @AfterAll
  static void close() {
    if (model != null) {
      model.close();
    }
  }

  private static Window window(int inputLength) {
    return new Window(new long[inputLength + 1], 0);
  }

  @Test
  void everyWindowRunsOnceInRowsOfAtMostOnePassBudget() {
    SplittableRandom r = new SplittableRandom(3);
    List<Window> windows = new ArrayList<>();
    for (int i = 0; i < 300; i++) {
      windows.add(window(1 + r.nextInt(i % 10 == 0 ? 2000 : 200)));
    }
    List<Pass> passes = model.passes(windows);
    int[] seen = new int[windows.size()];
    long positions = 0;
    for (Pass p : passes) {
      assertEquals(2, p.rowStarts().length, "on CPU a pass is one row");
      int len = 0;
      for (int i = 0; i < p.windows().size(); i++) {
        assertSame(windows.get(p.index()[i]), p.windows().get(i));
        seen[p.index()[i]]++;
        len += p.windows().get(i).inputLength();
      }
      assertEquals(len, p.length(), "a CPU row is exactly its windows: no padding");
      assertTrue(
          len <= MemoryBudget.CPU_PASS_TOKENS || p.windows().size() == 1,
          "a row over the pass budget holds one window alone: " + len);
      positions += p.positions();
      assertEquals(p.positions(), p.paddedPositions());
    }
    for (int i = 0; i < seen.length; i++) {
      assertEquals(1, seen[i], "window " + i + " runs exactly once");
    }
    assertEquals(windows.stream().mapToLong(Window::inputLength).sum(), positions);
    // first fit by decreasing length: only the last rows may be far from full
    long full =
        passes.stream().filter(p -> p.length() >= MemoryBudget.CPU_PASS_TOKENS - 200).count();
    assertTrue(full >= passes.size() - 2, full + " of " + passes.size() + " passes nearly full");
  }

  @Test
  void packedScoresMatchScoresAlone() {
    List<Window> windows = new ArrayList<>();
    SplittableRandom r = new SplittableRandom(5);
    for (int i = 0; i < 12; i++) {
      long[] t = new long[3 + r.nextInt(60)];
      for (int j = 0; j < t.length; j++) {
        t[j] = r.nextInt(50280);
      }
      windows.add(new Window(t, r.nextInt(t.length - 1)));
    }
    float[][] packed;
    try (var bm = model.newBatchManager()) {
      packed = model.logProbs(bm, windows);
    }
    for (int i = 0; i < windows.size(); i++) {
      float[] alone;
      try (var bm = model.newBatchManager()) {
        alone = model.logProbs(bm, List.of(windows.get(i)))[0];
      }
      assertEquals(windows.get(i).scored(), packed[i].length);
      for (int j = 0; j < alone.length; j++) {
        assertEquals(alone[j], packed[i][j], 1e-5, "window " + i + " target " + j);
      }
    }
  }
}
