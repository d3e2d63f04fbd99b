package io.olmoppl.job.tools;

import java.io.PrintStream;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** The bench's figures as the table it prints. */
final class BenchPrinter {
  private BenchPrinter() {}

  @SuppressWarnings("unchecked")
  static String rates(Object list) {
    return ((List<Double>) list)
        .stream().map(v -> String.format(Locale.ROOT, "%.1f", v)).toList().toString();
  }

  /** Workload names as the table says them: "long document, short documents". */
  @SuppressWarnings("unchecked")
  static String workloads(Object names) {
    return String.join(
        ", ", ((List<String>) names).stream().map(w -> w.replace('_', ' ')).toList());
  }

  @SuppressWarnings("unchecked")
  static void print(Map<String, Object> r, PrintStream out) {
    Map<String, Object> ceil = (Map<String, Object>) r.get("matmul_ceiling");
    out.printf("machine: %s%n", r.get("machine"));
    out.printf("allocator: %s%n", r.get("allocator"));
    out.printf("MKL code path: %s%n", r.get("mkl_code_path"));
    out.printf(
        "fp32 matmul ceiling, %s threads: 2048^3 %.1f GFLOP/s (best of %s); a pass's shapes of the"
            + " hidden %s model: qkv %.1f, up or gate slice %.1f, down slice %.1f, logit slice %.1f%n",
        ceil.get("threads"),
        ceil.get("gflops_2048"),
        rates(ceil.get("gflops_2048_runs")),
        ((Map<String, Object>) r.get("model")).get("hidden"),
        ceil.get("gflops_qkv"),
        ceil.get("gflops_up_gate"),
        ceil.get("gflops_down"),
        ceil.get("gflops_logits"));
    Map<String, Object> d = (Map<String, Object>) ceil.get("default_path");
    if ((boolean) d.get("separate_process")) {
      out.printf(
          "MKL's default path (its own choice, what plain libtorch gets here; 2048^3 in a separate"
              + " JVM right after each of the above): %s%n",
          d.containsKey("error")
              ? "not measured: " + d.get("error")
              : String.format(
                  Locale.ROOT,
                  "%.1f GFLOP/s (best of %s)",
                  d.get("gflops_2048"),
                  rates(d.get("gflops_2048_runs"))));
    }
    Map<String, Object> in = (Map<String, Object>) r.get("in_process");
    Map<String, Object> spark = (Map<String, Object>) r.get("spark");
    Map<String, Object> peer = (Map<String, Object>) r.get("peer");
    for (Map<String, Object> model : (List<Map<String, Object>>) r.get("models")) {
      out.printf(
          "model of %s: %s, hidden %s, %s layers, %s heads, intermediate %s, %,d parameters, %,d"
              + " unique weight bytes%n",
          workloads(model.get("workloads")),
          model.get("layout"),
          model.get("hidden"),
          model.get("layers"),
          model.get("heads"),
          model.get("intermediate"),
          (long) model.get("parameters"),
          (long) model.get("unique_weight_bytes"));
      for (String w : (List<String>) model.get("workloads")) {
        workload(w, (Map<String, Object>) in.get(w), spark, peer, out);
      }
    }
    Map<String, Object> mem = (Map<String, Object>) r.get("memory");
    out.printf(
        "memory, the model of %s: resident %,d bytes before the model, peak %,d while loading and"
            + " scoring in process: %,d bytes = %.2f x (1.5 x unique weight bytes + %,d bytes of"
            + " activations per CPU pass)%s%n",
        workloads(mem.get("workloads")),
        (long) mem.get("resident_before_model_bytes"),
        (long) mem.get("peak_resident_bytes"),
        (long) mem.get("scoring_bytes"),
        mem.get("scoring_over_target"),
        (long) mem.get("activation_bytes"),
        (boolean) mem.get("java_heap_fixed")
            ? ""
            : " (the Java heap was not fixed and pre-touched, so its growth is included)");
    out.printf(
        "of which glibc malloc: %,d bytes allocated after loading the model, at most %,d while"
            + " scoring%n",
        (long) mem.get("malloc_after_load_bytes"), (long) mem.get("malloc_peak_bytes"));
  }

  /** One workload's lines: in process, end to end, the peer. */
  @SuppressWarnings("unchecked")
  private static void workload(
      String w,
      Map<String, Object> m,
      Map<String, Object> spark,
      Map<String, Object> peer,
      PrintStream out) {
    out.printf(
        "%s (%s docs, %,d scored tokens, window %s, stride %s), in process (best of %s): %.1f scored tokens/s, %.1f positions/s,"
            + " %.1f GFLOP/s = %.2f x ceiling%s, padding efficiency %.3f, %.1f%% of wall time outside the"
            + " forward pass%n",
        w.replace('_', ' '),
        m.get("documents"),
        (long) m.get("scored_tokens"),
        m.get("window"),
        m.get("stride"),
        rates(m.get("runs_tokens_per_second")),
        m.get("scored_tokens_per_second"),
        m.get("computed_positions_per_second"),
        m.get("effective_gflops"),
        m.get("ratio_to_ceiling"),
        Double.isNaN((double) m.get("ratio_to_default_path_ceiling"))
            ? ""
            : String.format(
                Locale.ROOT,
                " (%.2f x MKL's default-path 2048^3, %.2f scored tokens/s per its GFLOP/s)",
                m.get("ratio_to_default_path_ceiling"),
                m.get("tokens_per_second_per_default_path_gflops")),
        m.get("padding_efficiency"),
        100 * (double) m.get("share_outside_forward"));
    if (spark != null) {
      Map<String, Object> s = (Map<String, Object>) spark.get(w);
      Map<String, Object> t = (Map<String, Object>) s.get("timings");
      out.printf(
          "%s, olmo-ppl score on %s: %.1f scored tokens/s = %.2f x in process (best of %s end-to-end"
              + " runs %s against the best of the in-process runs %s, one after each); %.1f of its"
              + " %.1f s went to starting (setup, input count) and summarizing the job%s%n",
          w.replace('_', ' '),
          s.get("master"),
          s.get("scored_tokens_per_second"),
          s.get("ratio_to_in_process"),
          s.get("rounds"),
          rates(s.get("runs_tokens_per_second")),
          rates(s.get("in_process_runs_tokens_per_second")),
          (double) t.get("setup_seconds")
              + (double) t.get("input_count_seconds")
              + (double) t.get("summary_seconds"),
          s.get("seconds"),
          s.containsKey("score_share_outside_forward")
              ? String.format(
                  Locale.ROOT,
                  "; %.1f%% of its scoring stage's %.1f s outside the forward pass",
                  100 * (double) s.get("score_share_outside_forward"),
                  (double) t.get("score_and_write_seconds"))
              : "");
    }
    if (peer != null && peer.containsKey(w)) {
      Map<String, Object> p = (Map<String, Object>) peer.get(w);
      out.printf(
          "%s, peer %s (torch %s, %s threads): %.1f scored tokens/s (best of %s); olmo-ppl in"
              + " process %.2f x the peer (best to best); NLLs differ by at most %.2g relative%n",
          w.replace('_', ' '),
          peer.get("engine"),
          peer.get("torch"),
          peer.get("threads"),
          p.get("scored_tokens_per_second"),
          rates(p.get("runs_tokens_per_second")),
          p.get("ratio_in_process_to_peer"),
          p.get("max_relative_nll_difference"));
    }
  }
}
