package io.olmoppl.job.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.olmoppl.checkpoint.Checkpoint;
import io.olmoppl.checkpoint.TyingRule;
import io.olmoppl.job.cli.UsageException;
import io.olmoppl.job.testing.SparkTestBase;
import io.olmoppl.runtime.MklDispatch;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * {@code olmo-ppl bench --json} on a reference-case model with small workloads: every figure the
 * README's Performance section quotes is there and sane (no speed is asserted), each workload ran
 * on its own model (the overhead workload on the tiny one the bench builds, the others on {@code
 * --model}), the end-to-end runs scored the same tokens as the engine in process, and the bench
 * leaves no files behind.
 */
class BenchTest extends SparkTestBase {

  /**
   * A bad bench command line is a usage error (one line, exit 2), refused before any model is
   * built.
   */
  @Test
  void badCommandLinesAreUsageErrors() {
    PrintStream out = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
    for (String[] argv :
        List.of(
            new String[] {"bench", "--workload", "long,medium"},
            new String[] {"bench", "--peer", "llama.cpp"},
            new String[] {"bench", "--python", "/usr/bin/python3"},
            new String[] {"bench", "--rounds", "0"},
            new String[] {"bench", "--workload", "overhead", "--model", "/nowhere"},
            new String[] {"bench", "--workload", "long", "--overhead-model", "/nowhere"},
            new String[] {"bench", "--workload", "texts", "--texts", "/nowhere.jsonl"},
            // the texts workload without its file; the option of earlier versions
            new String[] {"bench", "--workload", "long,texts"},
            new String[] {"bench", "--workload", "short", "--short-texts", "/nowhere.jsonl"},
            // an option of a workload that does not run
            new String[] {"bench", "--workload", "long", "--texts", "/nowhere.jsonl"},
            new String[] {"bench", "--workload", "long,overhead", "--short-docs", "5"},
            new String[] {"bench", "--workload", "short", "--long-tokens", "500"},
            new String[] {"bench", "--overhead-docs", "50"})) {
      UsageException e = assertThrows(UsageException.class, () -> Bench.run(argv, out));
      assertTrue(e.getMessage().startsWith("--"), e.getMessage());
    }
  }

  @Test
  void benchReportsEveryFigureAndCleansUp() throws Exception {
    Path tmpdir = Path.of(System.getProperty("java.io.tmpdir"));
    Set<Path> before = benchDirs(tmpdir);
    Path texts = Files.createTempFile("bench-texts", ".jsonl");
    Files.writeString(
        texts,
        "{\"text\": \"A first paragraph of the user's own.\"}\n"
            + "{\"text\": \"A second one, a little longer than the first.\"}\n"
            + "{\"text\": \"Third.\"}\n",
        StandardCharsets.UTF_8);
    ByteArrayOutputStream o = new ByteArrayOutputStream();
    Bench.run(
        new String[] {
          "bench",
          "--model",
          model(),
          "--long-tokens",
          "700",
          "--short-docs",
          "12",
          "--workload",
          "long,short,texts,overhead",
          "--texts",
          texts.toString(),
          "--overhead-docs",
          "20",
          "--json",
          "--master",
          spark.sparkContext().master()
        },
        new PrintStream(o, true, StandardCharsets.UTF_8));
    JsonObject r = JsonParser.parseString(o.toString(StandardCharsets.UTF_8)).getAsJsonObject();
    Files.delete(texts);
    // the long, short and texts workloads on --model, the overhead workload on the tiny model
    int modelHidden = Checkpoint.open(Path.of(model()), TyingRule.STRICT).config().hiddenSize();
    assertTrue(modelHidden != 128, "the reference model must differ from the tiny one");
    JsonArray models = r.getAsJsonArray("models");
    assertNotNull(models, "the report lists the models with the workloads each ran");
    assertEquals(2, models.size(), models.toString());
    JsonObject benchModel = models.get(0).getAsJsonObject();
    assertEquals(
        List.of("long_document", "short_documents", "texts"),
        names(benchModel.getAsJsonArray("workloads")));
    assertEquals(model(), benchModel.get("path").getAsString());
    assertEquals(modelHidden, benchModel.get("hidden").getAsInt());
    assertEquals(modelHidden, r.getAsJsonObject("model").get("hidden").getAsInt());
    JsonObject tiny = models.get(1).getAsJsonObject();
    assertEquals(List.of("overhead"), names(tiny.getAsJsonArray("workloads")));
    assertEquals(128, tiny.get("hidden").getAsInt());
    assertEquals(2, tiny.get("layers").getAsInt());
    assertPositive(tiny.get("parameters").getAsDouble(), "tiny parameters");
    assertEquals(
        List.of("long_document", "short_documents", "texts"),
        names(r.getAsJsonObject("memory").getAsJsonArray("workloads")),
        "the memory figures are the first model's");
    JsonObject ceiling = r.getAsJsonObject("matmul_ceiling");
    for (String k : List.of("gflops_2048", "gflops_qkv", "gflops_up_gate", "gflops_down")) {
      assertPositive(ceiling.get(k).getAsDouble(), k);
    }
    for (String w : List.of("long_document", "short_documents", "texts", "overhead")) {
      JsonObject in = r.getAsJsonObject("in_process").getAsJsonObject(w);
      JsonObject e2e = r.getAsJsonObject("spark").getAsJsonObject(w);
      for (String k :
          List.of(
              "scored_tokens_per_second",
              "computed_positions_per_second",
              "effective_gflops",
              "ratio_to_ceiling")) {
        assertPositive(in.get(k).getAsDouble(), w + " " + k);
      }
      double padding = in.get("padding_efficiency").getAsDouble();
      assertTrue(padding > 0 && padding <= 1, w + " padding " + padding);
      double outside = in.get("share_outside_forward").getAsDouble();
      assertTrue(outside >= 0 && outside < 1, w + " outside " + outside);
      assertEquals(in.get("scored_tokens").getAsLong(), e2e.get("scored_tokens").getAsLong(), w);
      assertPositive(e2e.get("ratio_to_in_process").getAsDouble(), w + " ratio");
      // one end-to-end run; the first in-process run and one after it
      assertEquals(1, e2e.getAsJsonArray("runs_tokens_per_second").size(), w);
      assertEquals(2, e2e.getAsJsonArray("in_process_runs_tokens_per_second").size(), w);
      double bestIn = 0;
      for (var v : e2e.getAsJsonArray("in_process_runs_tokens_per_second")) {
        bestIn = Math.max(bestIn, v.getAsDouble());
      }
      assertEquals(
          e2e.get("scored_tokens_per_second").getAsDouble() / bestIn,
          e2e.get("ratio_to_in_process").getAsDouble(),
          1e-12,
          w + ": best to best");
      assertTrue(e2e.getAsJsonObject("timings").has("summary_seconds"), w);
      // the executor is this JVM on a local master: its engine's forward time is the job's
      assertPositive(e2e.get("score_forward_seconds").getAsDouble(), w + " forward seconds");
      double e2eOutside = e2e.get("score_share_outside_forward").getAsDouble();
      assertTrue(e2eOutside >= 0 && e2eOutside < 1, w + " end to end outside " + e2eOutside);
    }
    // 700 tokens at window 512 / stride 256: every token scored once
    assertEquals(
        700,
        r.getAsJsonObject("in_process")
            .getAsJsonObject("long_document")
            .get("scored_tokens")
            .getAsLong());
    assertEquals(
        20,
        r.getAsJsonObject("in_process").getAsJsonObject("overhead").get("documents").getAsInt());
    assertEquals(
        3, r.getAsJsonObject("in_process").getAsJsonObject("texts").get("documents").getAsInt());
    // the first 2048^3 rate, and one before the in-process run that follows each of the 4
    // workloads' end-to-end runs; the best
    assertEquals(5, ceiling.getAsJsonArray("gflops_2048_runs").size());
    double bestCeiling = 0;
    for (var v : ceiling.getAsJsonArray("gflops_2048_runs")) {
      bestCeiling = Math.max(bestCeiling, v.getAsDouble());
    }
    assertEquals(bestCeiling, ceiling.get("gflops_2048").getAsDouble(), 0.0);
    for (String w : List.of("long_document", "short_documents", "texts", "overhead")) {
      JsonObject in = r.getAsJsonObject("in_process").getAsJsonObject(w);
      assertEquals(2, in.getAsJsonArray("runs_tokens_per_second").size(), w);
      assertEquals(
          in.get("effective_gflops").getAsDouble() / bestCeiling,
          in.get("ratio_to_ceiling").getAsDouble(),
          1e-12,
          w);
    }
    // MKL's default path: measured in a child JVM after each 2048^3 run where this process runs
    // MKL's Intel path, else the same figure
    JsonObject defaultPath = ceiling.getAsJsonObject("default_path");
    boolean separate = MklDispatch.intelPath();
    assertEquals(separate, defaultPath.get("separate_process").getAsBoolean());
    double bestDefault = bestCeiling;
    if (separate) {
      assertTrue(!defaultPath.has("error"), defaultPath.toString());
      JsonArray runs = defaultPath.getAsJsonArray("gflops_2048_runs");
      assertEquals(5, runs.size(), "one after each of this process's 2048^3 runs");
      bestDefault = 0;
      for (var v : runs) {
        assertPositive(v.getAsDouble(), "default-path run");
        bestDefault = Math.max(bestDefault, v.getAsDouble());
      }
      assertEquals(bestDefault, defaultPath.get("gflops_2048").getAsDouble(), 0.0);
    }
    for (String w : List.of("long_document", "short_documents", "texts", "overhead")) {
      JsonObject in = r.getAsJsonObject("in_process").getAsJsonObject(w);
      assertEquals(
          in.get("effective_gflops").getAsDouble() / bestDefault,
          in.get("ratio_to_default_path_ceiling").getAsDouble(),
          1e-12,
          w);
      assertEquals(
          in.get("scored_tokens_per_second").getAsDouble() / bestDefault,
          in.get("tokens_per_second_per_default_path_gflops").getAsDouble(),
          1e-12,
          w);
    }
    JsonObject mem = r.getAsJsonObject("memory");
    assertPositive(mem.get("peak_resident_bytes").getAsDouble(), "peak resident");
    assertPositive(mem.get("scoring_over_target").getAsDouble(), "memory ratio");
    assertEquals(before, benchDirs(tmpdir), "the bench's work directory is deleted");
    assertTrue(
        !spark.sparkContext().isStopped(), "a session the bench did not start is left running");
  }

  private static List<String> names(JsonArray a) {
    return a.asList().stream().map(JsonElement::getAsString).toList();
  }

  private static void assertPositive(double v, String what) {
    assertTrue(Double.isFinite(v) && v > 0, what + " = " + v);
  }

  private static Set<Path> benchDirs(Path tmpdir) throws Exception {
    try (Stream<Path> s = Files.list(tmpdir)) {
      return s.filter(p -> p.getFileName().toString().startsWith("olmo-ppl-bench"))
          .collect(Collectors.toSet());
    }
  }
}
