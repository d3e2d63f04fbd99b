package io.olmoppl.scoring;

import io.olmoppl.model.Window;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Cuts a fed sequence x (prefix + text tokens) into scoring windows (README, "Scoring contract"):
 * targets x[1..n-1] form consecutive blocks, the first {@code x[1..min(L, n-1)]}, each later one
 * the next S targets; a block ending at x[e] is predicted from {@code x[max(0, e-L) .. e-1]} and
 * only its own targets are scored. Every target is scored exactly once. With S = L this is
 * lm-eval's {@code loglikelihood_rolling}.
 */
public final class WindowPlan {
  private WindowPlan() {}

  /**
   * @param x the fed sequence
   * @param window L
   * @param stride S
   * @return the windows in order; empty when x has no target
   */
  public static List<Window> plan(long[] x, int window, int stride) {
    List<Window> out = new ArrayList<>();
    int n = x.length;
    int b = 1;
    int e = Math.min(window, n - 1);
    while (b <= n - 1) {
      int a = Math.max(0, e - window);
      // tokens x[a..e]: inputs x[a..e-1], the last target x[e]; position j predicts x[a+j+1]
      out.add(new Window(Arrays.copyOfRange(x, a, e + 1), b - 1 - a));
      b = e + 1;
      e = Math.min(b + stride - 1, n - 1);
    }
    return out;
  }
}
