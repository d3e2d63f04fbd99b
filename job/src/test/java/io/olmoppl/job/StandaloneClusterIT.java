package io.olmoppl.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.olmoppl.checkpoint.Checkpoint;
import io.olmoppl.checkpoint.TyingRule;
import io.olmoppl.job.score.Output;
import io.olmoppl.job.testing.SparkTestBase;
import io.olmoppl.job.testing.StandaloneCluster;
import io.olmoppl.testing.Refcases;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The shaded jar on a real multi-JVM standalone cluster (Master, two Workers, a client-mode
 * SparkSubmit driver and two executors of one core, all separate {@code java} processes): the
 * output equals the in-process result row for row, each executor JVM loads the model exactly once,
 * and the tied matrix is broadcast once.
 */
class StandaloneClusterIT {
  static final String CASE =
      "p02_hfolmo_tied_ffout_alias_bf16"; // tied, with an identical stored ff_out alias
  static Path work;
  static StandaloneCluster cluster;
  static Path input;
  static Map<String, JsonObject> inProcess;

  @BeforeAll
  static void startCluster() throws Exception {
    Path sparkHome = Path.of(System.getProperty("olmoppl.sparkHome"));
    work = Files.createDirectories(sparkHome.getParent().resolve("cluster-it"));
    cluster = new StandaloneCluster(sparkHome, work.resolve("logs"));
    input = work.resolve("docs.jsonl");
    StringBuilder sb = new StringBuilder();
    int id = 0;
    for (int rep = 0; rep < 3; rep++) {
      for (var e : Refcases.expected(CASE)) {
        if (e.window() == e.stride() && e.prefix().equals("eos")) {
          JsonObject o = new JsonObject();
          o.addProperty("id", id++);
          o.addProperty("text", e.text());
          sb.append(o).append('\n');
        }
      }
    }
    sb.append("{\"id\":").append(id).append(",\"text\":null}\n");
    Files.writeString(input, sb.toString());
    Path ref = work.resolve("in-process");
    deleteRecursively(ref);
    SparkTestBase.Cli r =
        SparkTestBase.cli(
            "score",
            "--model",
            Refcases.dir(CASE).toString(),
            "--input",
            input.toString(),
            "--output",
            ref.toString(),
            "--input-format",
            "json",
            "--output-format",
            "json",
            "--master",
            "local[2]");
    assertEquals(0, r.code(), r.err());
    inProcess = byId(SparkTestBase.readJsonLines(ref));
    cluster.start(2, "1500m");
  }

  @AfterAll
  static void stopCluster() throws Exception {
    if (cluster != null) {
      cluster.close();
      deleteRecursively(
          cluster.sparkHome.resolve("work")); // executors' copies of the 120 MB application jar
    }
  }

  @Test
  void broadcastSendsTheTiedMatrixOnceAndEachExecutorLoadsOnce() throws Exception {
    JsonObject summary = submit("broadcast");
    Checkpoint c = Checkpoint.open(Refcases.dir(CASE), TyingRule.STRICT);
    long stored = c.tensors().values().stream().mapToLong(t -> t.info().byteLength()).sum();
    long alias = c.tensors().get("model.transformer.ff_out.weight").info().byteLength();
    assertEquals(
        stored - alias,
        summary.get("unique_weight_bytes").getAsLong(),
        "the tied matrix counted once");
    assertEquals(
        summary.get("unique_weight_bytes").getAsLong(),
        summary.get("broadcast_bytes").getAsLong(),
        "broadcast bytes = unique weight bytes");
    for (JsonElement e : summary.getAsJsonArray("executors")) {
      assertEquals(stored - alias, e.getAsJsonObject().get("bytes_received").getAsLong());
    }
  }

  @Test
  void filesModeGivesTheSameOutput() throws Exception {
    JsonObject summary = submit("files");
    assertEquals(0, summary.get("broadcast_bytes").getAsLong());
  }

  /**
   * Executor loss: one executor JVM is killed ({@code kill -9}) once it has loaded the model and is
   * scoring. Spark reruns its tasks on a replacement executor; the output holds every input row
   * exactly once, with the scores of an undisturbed run.
   */
  @Test
  void jobSurvivesTheLossOfAnExecutor() throws Exception {
    Path many = work.resolve("many.jsonl");
    StringBuilder sb = new StringBuilder();
    List<String> lines = Files.readAllLines(input);
    int id = 0;
    for (int rep = 0; rep < 4; rep++) { // enough rows that the kill lands while tasks run
      for (String line : lines) {
        JsonObject o = JsonParser.parseString(line).getAsJsonObject();
        o.addProperty("id", id++);
        sb.append(o).append('\n');
      }
    }
    Files.writeString(many, sb.toString());
    Path out = work.resolve("out-loss");
    deleteRecursively(out);
    Path appLogs = cluster.sparkHome.resolve("work");
    List<String> args =
        List.of(
            "--conf",
            "spark.driver.host=127.0.0.1",
            "--conf",
            "spark.driver.bindAddress=127.0.0.1",
            "--conf",
            "spark.executor.cores=1",
            "--conf",
            "spark.cores.max=2",
            "--conf",
            "spark.executor.memory=1g",
            "--conf",
            "spark.ui.enabled=false",
            System.getProperty("olmoppl.jar"),
            "score",
            "--model",
            Refcases.dir(CASE).toString(),
            "--input",
            many.toString(),
            "--output",
            out.toString(),
            "--input-format",
            "json",
            "--output-format",
            "json",
            "--partitions",
            "6",
            "--distribution",
            "files");
    long before = loadedLines(appLogs);
    Process driver = cluster.submitAsync("submit-loss", args);
    long deadline = System.nanoTime() + Duration.ofMinutes(3).toNanos();
    while (loadedLines(appLogs) == before && driver.isAlive() && System.nanoTime() < deadline) {
      Thread.sleep(100);
    }
    List<ProcessHandle> execs = cluster.executors();
    assertTrue(
        driver.isAlive() && !execs.isEmpty(),
        "an executor is scoring when it is killed: "
            + StandaloneCluster.tail(cluster.logs.resolve("submit-loss.log")));
    ProcessHandle victim = execs.get(0);
    assertTrue(victim.destroyForcibly(), "kill -9 of executor " + victim.pid());
    int code = cluster.await("submit-loss", driver, Duration.ofMinutes(8));
    String log = Files.readString(cluster.logs.resolve("submit-loss.log"));
    assertEquals(
        0,
        code,
        "the job finishes despite the lost executor: "
            + StandaloneCluster.tail(cluster.logs.resolve("submit-loss.log")));
    assertTrue(
        log.contains("Lost executor")
            || log.contains("lost executor")
            || log.contains("Executor lost"),
        "the driver saw the executor go before the job finished");

    Map<String, JsonObject> undisturbed = new HashMap<>();
    inProcess.values().forEach(r -> undisturbed.put(r.get("text").toString(), r));
    List<JsonObject> rows = SparkTestBase.readJsonLines(out);
    assertEquals(id, rows.size(), "every input row, no more");
    Set<String> ids = new HashSet<>();
    for (JsonObject r : rows) {
      assertTrue(ids.add(r.get("id").getAsString()), "row " + r.get("id") + " written once");
      JsonObject want = undisturbed.get(r.get("text").toString());
      for (String k : List.of("ppl_tokens", "ppl_windows", "ppl_status", "ppl_model")) {
        assertEquals(want.get(k), r.get(k), "id " + r.get("id") + " " + k);
      }
      double nll = want.get("ppl_nll").getAsDouble();
      assertEquals(
          nll,
          r.get("ppl_nll").getAsDouble(),
          Refcases.BATCH_REL_NLL * Math.max(1, nll),
          "id " + r.get("id"));
    }
    assertTrue(
        Files.exists(out.resolve(Output.MARKER)) && Files.exists(out.resolve("_summary.json")));
  }

  /**
   * @return how many times executors under {@code appLogs} have logged a model load so far
   */
  private static long loadedLines(Path appLogs) throws java.io.IOException {
    if (!Files.exists(appLogs)) {
      return 0;
    }
    try (var s = Files.walk(appLogs)) {
      long n = 0;
      for (Path p : s.filter(f -> f.getFileName().toString().equals("stderr")).toList()) {
        n +=
            Files.readAllLines(p).stream()
                .filter(l -> l.contains("olmo-ppl: loaded model"))
                .count();
      }
      return n;
    }
  }

  /**
   * Submits the shaded jar without --class, checks the output and the load accounting, returns the
   * summary.
   */
  private static JsonObject submit(String distribution) throws Exception {
    Path out = work.resolve("out-" + distribution);
    deleteRecursively(out);
    List<String> args =
        new java.util.ArrayList<>(
            List.of(
                "--conf",
                "spark.driver.host=127.0.0.1",
                "--conf",
                "spark.driver.bindAddress=127.0.0.1",
                "--conf",
                "spark.executor.cores=1",
                "--conf",
                "spark.cores.max=2",
                "--conf",
                "spark.executor.memory=1g",
                "--conf",
                "spark.ui.enabled=false"));
    // files mode takes its options as Spark configuration (spark.olmoppl.*), broadcast mode on the
    // command line
    boolean viaConf = distribution.equals("files");
    if (viaConf) {
      args.addAll(
          List.of(
              "--conf",
              "spark.olmoppl.distribution=files",
              "--conf",
              "spark.olmoppl.partitions=6"));
    }
    args.addAll(
        List.of(
            System.getProperty("olmoppl.jar"),
            "score",
            "--model",
            Refcases.dir(CASE).toString(),
            "--input",
            input.toString(),
            "--output",
            out.toString(),
            "--input-format",
            "json",
            "--output-format",
            "json"));
    if (!viaConf) {
      args.addAll(List.of("--distribution", distribution, "--partitions", "6"));
    }
    int code = cluster.submit("submit-" + distribution, args, Duration.ofMinutes(4));
    String log = StandaloneCluster.tail(cluster.logs.resolve("submit-" + distribution + ".log"));
    assertEquals(0, code, "spark-submit failed: " + log);
    Map<String, JsonObject> rows = byId(SparkTestBase.readJsonLines(out));
    assertEquals(inProcess.keySet(), rows.keySet(), "row count out = row count in");
    for (var e : inProcess.entrySet()) {
      JsonObject a = e.getValue();
      JsonObject b = rows.get(e.getKey());
      for (String k : List.of("ppl_tokens", "ppl_windows", "ppl_status", "ppl_model")) {
        assertEquals(a.get(k), b.get(k), "id " + e.getKey() + " " + k);
      }
      double nll = a.get("ppl_nll").getAsDouble();
      assertEquals(
          nll,
          b.get("ppl_nll").getAsDouble(),
          Refcases.BATCH_REL_NLL * Math.max(1, nll),
          "id " + e.getKey());
    }
    JsonObject s =
        JsonParser.parseString(Files.readString(out.resolve("_summary.json"))).getAsJsonObject();
    assertEquals(distribution, s.get("distribution").getAsString());
    assertEquals(2, s.get("model_loads").getAsLong(), "one load per executor JVM: " + s);
    JsonArray execs = s.getAsJsonArray("executors");
    assertEquals(2, execs.size(), "two executor JVMs scored: " + execs);
    Set<Long> pids = new HashSet<>();
    for (JsonElement e : execs) {
      JsonObject x = e.getAsJsonObject();
      assertEquals(1, x.get("loads").getAsLong(), "loaded exactly once: " + x);
      assertNotEquals("driver", x.get("executor_id").getAsString());
      pids.add(x.get("pid").getAsLong());
    }
    assertEquals(2, pids.size());
    assertTrue(!pids.contains(cluster.pidOf("SparkSubmit")), "the driver never scores");
    assertEquals((long) inProcess.size(), s.get("documents").getAsLong());
    // progress counted in executor JVMs reaches the driver (accumulators through the listener)
    String progress = inProcess.size() + "/" + inProcess.size() + " documents, ";
    assertTrue(
        Files.readString(cluster.logs.resolve("submit-" + distribution + ".log"))
            .contains(progress),
        "final progress line '" + progress + "' in " + log);
    return s;
  }

  static Map<String, JsonObject> byId(List<JsonObject> rows) {
    Map<String, JsonObject> m = new HashMap<>();
    rows.forEach(r -> m.put(r.get("id").getAsString(), r));
    return m;
  }

  static void deleteRecursively(Path p) throws java.io.IOException {
    if (!Files.exists(p)) {
      return;
    }
    try (var s = Files.walk(p)) {
      for (Path x : s.sorted(java.util.Comparator.reverseOrder()).toList()) {
        Files.delete(x);
      }
    }
  }
}
