package io.olmoppl.job.tools;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;
import io.olmoppl.batching.EngineStats;
import io.olmoppl.batching.ScoringEngine;
import io.olmoppl.checkpoint.OlmoConfig;
import io.olmoppl.model.OlmoModel;
import io.olmoppl.model.Window;
import io.olmoppl.runtime.TorchEngine;
import io.olmoppl.scoring.DocumentScore;
import io.olmoppl.scoring.PerplexityScorer;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.apache.arrow.vector.VarCharVector;

/** The bench's in-process phase: workloads through the scoring engine, and the matmul ceiling. */
final class InProcessPhase {
  private InProcessPhase() {}

  /** One workload through the engine: throughput, FLOPs, padding, time outside the forward pass. */
  static Map<String, Object> inProcess(ScoringEngine engine, OlmoConfig c, Workload work) {
    return inProcess(engine, c, work, new java.util.ArrayList<>());
  }

  /**
   * As {@link #inProcess(ScoringEngine, OlmoConfig, Workload)}, adding the scores to {@code sink}.
   */
  static Map<String, Object> inProcess(
      ScoringEngine engine, OlmoConfig c, Workload work, List<DocumentScore> sink) {
    EngineStats s = engine.stats();
    long positions0 = s.positions();
    long padded0 = s.paddedPositions();
    double forward0 = s.forwardSeconds();
    long t0 = System.nanoTime();
    List<DocumentScore> scores = score(engine, work);
    double secs = (System.nanoTime() - t0) / 1e9;
    sink.addAll(scores);
    long scored = scores.stream().mapToLong(DocumentScore::tokens).sum();
    double flops = 0;
    PerplexityScorer plan = engine.scorer(work.options());
    for (String t : work.texts()) {
      for (Window w : plan.plan(engine.tokenizer().encode(t))) {
        flops += ModelFlops.window(c, w.inputLength(), w.scored());
      }
    }
    long positions = s.positions() - positions0;
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("documents", work.texts().size());
    m.put("window", work.window());
    m.put("stride", work.stride());
    m.put("scored_tokens", scored);
    m.put("seconds", secs);
    m.put("scored_tokens_per_second", scored / secs);
    m.put("computed_positions_per_second", positions / secs);
    m.put("effective_gflops", flops / secs / 1e9);
    m.put("padding_efficiency", (double) positions / (s.paddedPositions() - padded0));
    m.put("share_outside_forward", 1 - (s.forwardSeconds() - forward0) / secs);
    return m;
  }

  static List<DocumentScore> score(ScoringEngine engine, Workload work) {
    List<String> texts = work.texts();
    try (BufferAllocator alloc = new RootAllocator();
        VarCharVector v = new VarCharVector("text", alloc)) {
      v.allocateNew(texts.size());
      for (int i = 0; i < texts.size(); i++) {
        v.setSafe(i, texts.get(i).getBytes(StandardCharsets.UTF_8));
      }
      v.setValueCount(texts.size());
      return engine.score(v, engine.scorer(work.options()));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  /**
   * @return the run with the most scored tokens per second
   */
  static Map<String, Object> best(List<Map<String, Object>> runs) {
    return runs.stream()
        .max(java.util.Comparator.comparingDouble(InProcessPhase::rate))
        .orElseThrow();
  }

  @SuppressWarnings("unchecked")
  static double rate(Object run) {
    return (double) ((Map<String, Object>) run).get("scored_tokens_per_second");
  }

  /**
   * The fp32 matmul rate through DJL with the engine's threads: 2048^3 and the shapes of a CPU pass
   * of {@code m} (1,024 rows; the MLP's and the output matrix's slices).
   */
  static Map<String, Object> ceiling(OlmoModel m) {
    OlmoConfig c = m.config();
    Map<String, Object> ceiling = new LinkedHashMap<>();
    ceiling.put("threads", JniUtils.getNumThreads());
    ceiling.put("gflops_2048", matmulGflops(2048, 2048, 2048));
    long rows = 1024;
    ceiling.put("gflops_qkv", matmulGflops(rows, c.hiddenSize(), c.hiddenSize() + 2L * c.kvDim()));
    ceiling.put("gflops_up_gate", matmulGflops(rows, c.hiddenSize(), m.mlpSliceWidth()));
    ceiling.put("gflops_down", matmulGflops(rows, m.mlpSliceWidth(), c.hiddenSize()));
    ceiling.put("gflops_logits", matmulGflops(rows, c.hiddenSize(), m.logitSliceRows()));
    return ceiling;
  }

  static double matmulGflops(long m, long k, long n) {
    try (NDManager nd = TorchEngine.get().newBaseManager()) {
      NDArray x = nd.randomNormal(new Shape(m, k));
      NDArray y = nd.randomNormal(new Shape(k, n));
      for (int i = 0; i < 2; i++) {
        x.matMul(y).close();
      }
      int reps = 0;
      long t0 = System.nanoTime();
      do {
        NDArray z = x.matMul(y);
        z.toFloatArray(); // force completion
        z.close();
        reps++;
      } while (System.nanoTime() - t0 < 1_000_000_000L);
      double secs = (System.nanoTime() - t0) / 1e9;
      return reps * 2.0 * m * k * n / secs / 1e9;
    }
  }
}
