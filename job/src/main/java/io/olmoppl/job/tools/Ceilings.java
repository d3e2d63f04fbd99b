package io.olmoppl.job.tools;

import io.olmoppl.runtime.MklDispatch;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Every 2048^3 fp32 rate of a bench run: this process's (MKL's path as olmo-ppl chose it) and,
 * right after each, MKL's default path's (its own choice, in a child JVM) where the two differ. A
 * figure is best to best, as the host's speed drifts within a run.
 */
final class Ceilings {
  private final int threads;
  // MKL's own choice differs from this process's path only where olmo-ppl chose MKL's Intel path
  private final boolean separateDefault = MklDispatch.intelPath();
  private final List<Double> own = new ArrayList<>();
  private final List<Double> defaultPath = new ArrayList<>();
  private String defaultPathError;

  /**
   * @param threads the engine's threads, which every measurement uses
   */
  Ceilings(int threads) {
    this.threads = threads;
  }

  /** Measures this process's 2048^3 rate, then the default path's. */
  void measure() {
    add(InProcessPhase.matmulGflops(2048, 2048, 2048));
  }

  /** Records this process's 2048^3 rate measured just now, then measures the default path's. */
  void add(double gflops) {
    own.add(gflops);
    if (separateDefault && defaultPathError == null) {
      try {
        defaultPath.add(DefaultPathCeiling.measure(threads));
      } catch (IOException e) {
        defaultPathError = e.getMessage(); // the figures without it still stand
      }
    }
  }

  /**
   * @return the best of this process's 2048^3 rates
   */
  double best() {
    return own.stream().mapToDouble(Double::doubleValue).max().orElseThrow();
  }

  /**
   * @return the best of MKL's default path's 2048^3 rates (this process's where they are the same
   *     path), or NaN where its measurement failed
   */
  double bestDefaultPath() {
    if (!separateDefault) {
      return best();
    }
    return defaultPath.stream().mapToDouble(Double::doubleValue).max().orElse(Double.NaN);
  }

  /** The ceiling's figures for the report, added to {@code ceiling}. */
  void report(Map<String, Object> ceiling) {
    ceiling.put("gflops_2048", best());
    ceiling.put("gflops_2048_runs", own);
    Map<String, Object> d = new LinkedHashMap<>();
    d.put("separate_process", separateDefault);
    if (separateDefault) {
      d.put("gflops_2048", bestDefaultPath());
      d.put("gflops_2048_runs", defaultPath);
      if (defaultPathError != null) {
        d.put("error", defaultPathError);
      }
    }
    ceiling.put("default_path", d);
  }

  /**
   * Adds a workload's ratios to the ceilings: to this process's, and to MKL's default path's (also
   * as scored tokens/s per default-path GFLOP/s, a figure of the machine that another engine's
   * tokens/s can be divided by too).
   *
   * @param best the workload's best in-process run
   */
  void ratios(Map<String, Object> best) {
    double gflops = (double) best.get("effective_gflops");
    best.put("ratio_to_ceiling", gflops / best());
    best.put("ratio_to_default_path_ceiling", gflops / bestDefaultPath());
    best.put(
        "tokens_per_second_per_default_path_gflops", InProcessPhase.rate(best) / bestDefaultPath());
  }
}
