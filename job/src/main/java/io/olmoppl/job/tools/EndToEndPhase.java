package io.olmoppl.job.tools;

import io.olmoppl.batching.ScoringEngine;
import io.olmoppl.checkpoint.OlmoConfig;
import io.olmoppl.job.report.ScoreSummary;
import io.olmoppl.job.score.ScoreCommand;
import io.olmoppl.spark.ExecutorModels;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.SparkSession;

/** The bench's end-to-end phase: the workloads through {@code olmo-ppl score} on Spark. */
final class EndToEndPhase {
  private EndToEndPhase() {}

  /**
   * The end-to-end runs' Spark session on {@code master}: started by the first end-to-end phase and
   * shared by the models' phases after it; {@link #close} stops it only if it started it (not a
   * session it found).
   */
  static final class Spark implements AutoCloseable {
    private final String master;
    private SparkSession session;
    private boolean ours;

    Spark(String master) {
      this.master = master;
    }

    String master() {
      return master;
    }

    void start() {
      if (session == null) {
        ours = SparkSession.getDefaultSession().isEmpty();
        session =
            SparkSession.builder()
                .appName("olmo-ppl bench")
                .master(master)
                .config("spark.ui.enabled", "false")
                .config("spark.driver.host", "127.0.0.1")
                .config("spark.driver.bindAddress", "127.0.0.1")
                .getOrCreate();
      }
    }

    @Override
    public void close() {
      if (session != null && ours) {
        session.stop();
      }
    }
  }

  /**
   * The workloads of one model end to end through {@code olmo-ppl score} on {@code spark}'s master,
   * {@code rounds} times. Each end-to-end run is followed by the same workload through the engine
   * in process again, and the ratio is the best end-to-end rate to the best in-process rate of the
   * workload: on a shared machine whose speed drifts and dips (a cloud VM), a ratio of two single
   * runs minutes apart measures the host as much as the job, and a slowdown is never the job
   * running faster.
   */
  static Map<String, Object> endToEnd(
      ScoringEngine engine,
      OlmoConfig c,
      Path model,
      Path work,
      Spark spark,
      Workload warmUp,
      Map<String, Workload> workloads,
      Map<String, List<Map<String, Object>>> inRuns,
      Ceilings ceilings,
      int rounds)
      throws IOException {
    spark.start();
    String master = spark.master();
    // warm-up: Spark's first job and the executor's model load are not part of the steady state
    scoreCommand(model, work.resolve("warm-up"), warmUp, master);
    Map<String, List<Map<String, Object>>> e2eRuns = new LinkedHashMap<>();
    for (String w : workloads.keySet()) {
      e2eRuns.put(w, new ArrayList<>());
    }
    for (int round = 0; round < rounds; round++) {
      for (String w : e2eRuns.keySet()) {
        e2eRuns
            .get(w)
            .add(scoreCommand(model, work.resolve(w + "-" + round), workloads.get(w), master));
        ceilings.measure();
        inRuns.get(w).add(InProcessPhase.inProcess(engine, c, workloads.get(w)));
      }
    }
    Map<String, Object> e2e = new LinkedHashMap<>();
    for (String w : e2eRuns.keySet()) {
      List<Map<String, Object>> runs = e2eRuns.get(w);
      double bestIn = InProcessPhase.rate(InProcessPhase.best(inRuns.get(w)));
      Map<String, Object> m = new LinkedHashMap<>(InProcessPhase.best(runs));
      m.put("rounds", rounds);
      m.put("runs_tokens_per_second", runs.stream().map(InProcessPhase::rate).toList());
      m.put(
          "in_process_runs_tokens_per_second",
          inRuns.get(w).stream().map(InProcessPhase::rate).toList());
      m.put("best_in_process_tokens_per_second", bestIn);
      m.put("ratio_to_in_process", InProcessPhase.rate(m) / bestIn);
      e2e.put(w, m);
    }
    return e2e;
  }

  /**
   * One workload through {@code olmo-ppl score} (JSON lines in, parquet out). On a {@code local} or
   * {@code local[N]} master the executor is this JVM, so its engines' forward time over the run is
   * the job's: the figures then include the share of the scoring stage's wall time outside the
   * forward pass.
   */
  static Map<String, Object> scoreCommand(Path model, Path dir, Workload w, String master)
      throws IOException {
    Files.createDirectories(dir);
    Path input = dir.resolve("input.jsonl");
    StringBuilder sb = new StringBuilder();
    com.google.gson.Gson gson = new com.google.gson.Gson();
    for (String t : w.texts()) {
      sb.append(gson.toJson(Map.of("text", t))).append('\n');
    }
    Files.writeString(input, sb);
    String[] args = {
      "score",
      "--model",
      model.toString(),
      "--input",
      input.toString(),
      "--output",
      dir.resolve("out").toString(),
      "--window",
      String.valueOf(w.window()),
      "--stride",
      String.valueOf(w.stride()),
      "--master",
      master
    };
    double forward0 = ExecutorModels.forwardSeconds();
    long t0 = System.nanoTime();
    ScoreSummary summary =
        ScoreCommand.main(args, new PrintStream(java.io.OutputStream.nullOutputStream()));
    double secs = (System.nanoTime() - t0) / 1e9;
    long tokens = summary.corpus().tokens();
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("master", master);
    m.put("scored_tokens", tokens);
    m.put("seconds", secs);
    m.put("scored_tokens_per_second", tokens / secs);
    m.put(
        "timings",
        timings(summary.timings())); // the job's own: setup, input count, scoring, summary
    if (master.equals("local") || master.startsWith("local[")) {
      double forward = ExecutorModels.forwardSeconds() - forward0;
      m.put("score_forward_seconds", forward);
      m.put("score_share_outside_forward", 1 - forward / summary.timings().scoreAndWriteSeconds());
    }
    return m;
  }

  /** The job's timings as the bench's JSON has them (the summary's names). */
  private static Map<String, Object> timings(ScoreSummary.Timings t) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("setup_seconds", t.setupSeconds());
    m.put("input_count_seconds", t.inputCountSeconds());
    m.put("score_and_write_seconds", t.scoreAndWriteSeconds());
    m.put("summary_seconds", t.summarySeconds());
    m.put("total_seconds", t.totalSeconds());
    return m;
  }
}
