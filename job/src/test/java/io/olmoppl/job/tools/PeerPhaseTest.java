package io.olmoppl.job.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.olmoppl.testing.Refcases;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * {@code olmo-ppl bench --peer transformers}: with a Python that has torch and transformers
 * (OLMO_PPL_PEER_PYTHON, else python3; skipped without one), the peer scores the bench's own
 * windows, the same tokens, to the same NLLs (an independent implementation: transformers' OLMo),
 * on each workload's model (the reference model, the tiny one of the overhead workload); without
 * one the bench says so and still reports everything else.
 */
class PeerPhaseTest {
  private static final String PYTHON =
      System.getenv().getOrDefault("OLMO_PPL_PEER_PYTHON", "python3");

  @Test
  void thePeerScoresTheSameTokensToTheSameNlls() throws Exception {
    assumeTrue(hasTorchAndTransformers(PYTHON), PYTHON + " has no torch and transformers");
    JsonObject r = bench(PYTHON, "2");
    JsonObject peer = r.getAsJsonObject("peer");
    assertFalse(peer.has("skipped"), String.valueOf(peer.get("skipped")));
    for (String w : List.of("long_document", "short_documents", "overhead")) {
      JsonObject in = r.getAsJsonObject("in_process").getAsJsonObject(w);
      JsonObject p = peer.getAsJsonObject(w);
      assertEquals(in.get("scored_tokens").getAsLong(), p.get("scored_tokens").getAsLong(), w);
      double diff = p.get("max_relative_nll_difference").getAsDouble();
      assertTrue(diff >= 0 && diff <= 1e-6, w + ": NLLs differ by " + diff + " relative");
      // two rounds, each the peer and then the engine: the first in-process run and two after
      assertEquals(2, p.getAsJsonArray("runs_tokens_per_second").size(), w);
      assertEquals(3, in.getAsJsonArray("runs_tokens_per_second").size(), w);
      double bestPeer = 0;
      for (var v : p.getAsJsonArray("runs_tokens_per_second")) {
        bestPeer = Math.max(bestPeer, v.getAsDouble());
      }
      assertEquals(
          in.get("scored_tokens_per_second").getAsDouble() / bestPeer,
          p.get("ratio_in_process_to_peer").getAsDouble(),
          1e-12,
          w + ": best to best");
    }
    // the first 2048^3 rate, and one before each in-process run after a peer run (2 rounds of 3)
    JsonObject ceiling = r.getAsJsonObject("matmul_ceiling");
    assertEquals(7, ceiling.getAsJsonArray("gflops_2048_runs").size());
    JsonObject defaultPath = ceiling.getAsJsonObject("default_path");
    if (defaultPath.get("separate_process").getAsBoolean()) {
      assertEquals(
          7, defaultPath.getAsJsonArray("gflops_2048_runs").size(), defaultPath.toString());
    }
  }

  @Test
  void withoutAUsablePythonTheBenchSaysSoAndReportsTheRest() throws Exception {
    JsonObject r = bench("/nonexistent/python3", "1");
    String why = r.getAsJsonObject("peer").get("skipped").getAsString();
    assertTrue(why.contains("/nonexistent/python3") && why.contains("--python"), why);
    assertTrue(r.getAsJsonObject("in_process").has("short_documents"));
    assertTrue(r.getAsJsonObject("in_process").has("overhead"));
  }

  private static JsonObject bench(String python, String rounds) throws Exception {
    ByteArrayOutputStream o = new ByteArrayOutputStream();
    Bench.run(
        new String[] {
          "bench",
          "--model",
          Refcases.dir("p01_olmo_tied_f32").toString(),
          "--long-tokens",
          "600",
          "--short-docs",
          "10",
          "--workload",
          "long,short,overhead",
          "--overhead-docs",
          "10",
          "--no-spark",
          "--rounds",
          rounds,
          "--peer",
          "transformers",
          "--python",
          python,
          "--json"
        },
        new PrintStream(o, true, StandardCharsets.UTF_8));
    return JsonParser.parseString(o.toString(StandardCharsets.UTF_8)).getAsJsonObject();
  }

  private static boolean hasTorchAndTransformers(String python) {
    try {
      Process p =
          new ProcessBuilder(python, "-c", "import torch, transformers")
              .redirectErrorStream(true)
              .redirectOutput(ProcessBuilder.Redirect.DISCARD)
              .start();
      return p.waitFor(120, TimeUnit.SECONDS) && p.exitValue() == 0;
    } catch (Exception e) {
      return false;
    }
  }
}
