package io.olmoppl.job.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.olmoppl.job.cli.JobException;
import io.olmoppl.testing.Refcases;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.apache.commons.io.FileUtils;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code olmo-ppl bench --peer transformers}: with a Python that has torch and transformers
 * (OLMO_PPL_PEER_PYTHON, else python3; skipped without one), the peer scores the bench's own
 * windows, the same tokens, to the same NLLs (an independent implementation: transformers' OLMo),
 * on each workload's model (the reference model, the tiny one of the overhead workload), in every
 * layout (hf_olmo converted); without one, or with a model transformers cannot compute, the bench
 * refuses before it measures.
 */
class PeerPhaseTest {
  private static final String PYTHON =
      System.getenv().getOrDefault("OLMO_PPL_PEER_PYTHON", "python3");

  @Test
  void thePeerScoresTheSameTokensToTheSameNlls() throws Exception {
    assumeTrue(hasTorchAndTransformers(PYTHON), PYTHON + " has no torch and transformers");
    JsonObject r = bench(PYTHON, "2");
    JsonObject peer = r.getAsJsonObject("peer");
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
  void withoutAUsablePythonTheBenchRefusesBeforeAnyWork() throws Exception {
    ByteArrayOutputStream o = new ByteArrayOutputStream();
    JobException e =
        assertThrows(
            JobException.class,
            () ->
                Bench.run(
                    new String[] {
                      "bench",
                      "--model",
                      Refcases.dir("p01_olmo_tied_f32").toString(),
                      "--no-spark",
                      "--peer",
                      "transformers",
                      "--python",
                      "/nonexistent/python3"
                    },
                    new PrintStream(o, true, StandardCharsets.UTF_8)));
    assertTrue(
        e.getMessage().contains("/nonexistent/python3") && e.getMessage().contains("--python"),
        e.getMessage());
    assertEquals("", o.toString(StandardCharsets.UTF_8), "nothing ran before the refusal");
  }

  /**
   * A peer whose first line looks like its ready line but is not JSON is refused, and its process
   * does not outlive the refusal. The "Python" is a shell script that passes the import check.
   */
  @Test
  void aPeerThatAnswersGarbageIsStopped(@TempDir Path tmp) throws Exception {
    Path pidFile = tmp.resolve("pid");
    Path python = tmp.resolve("python3");
    Files.writeString(
        python,
        "#!/bin/sh\n"
            + "[ \"$1\" = -c ] && exit 0\n" // the import check
            + "echo $$ > '"
            + pidFile
            + "'\n"
            + "echo '{\"ready\" not json'\n"
            + "exec sleep 600\n");
    assertTrue(python.toFile().setExecutable(true));
    java.io.IOException e =
        assertThrows(
            java.io.IOException.class,
            () -> bench(python.toString(), "1", Refcases.dir("p01_olmo_tied_f32"), "short"));
    assertTrue(e.getMessage().contains("not json"), e.getMessage());
    long pid = Long.parseLong(Files.readString(pidFile).trim());
    ProcessHandle peer = ProcessHandle.of(pid).orElse(null);
    if (peer != null
        && !peer.onExit().completeOnTimeout(peer, 30, TimeUnit.SECONDS).join().isAlive()) {
      peer = null;
    }
    if (peer != null) {
      peer.destroyForcibly();
    }
    assertTrue(peer == null, "the peer was left running");
  }

  /**
   * transformers has no hf_olmo class: the peer converts the layout (as transformers'
   * convert_olmo_weights_to_hf.py does) and scores p02 (hf_olmo, bf16, a stored ff_out that aliases
   * the embedding) to the engine's NLLs.
   */
  @Test
  void thePeerScoresTheHfOlmoLayout() throws Exception {
    assumeTrue(hasTorchAndTransformers(PYTHON), PYTHON + " has no torch and transformers");
    JsonObject r = bench(PYTHON, "1", Refcases.dir("p02_hfolmo_tied_ffout_alias_bf16"), "short");
    JsonObject p = r.getAsJsonObject("peer").getAsJsonObject("short_documents");
    assertEquals(
        r.getAsJsonObject("in_process")
            .getAsJsonObject("short_documents")
            .get("scored_tokens")
            .getAsLong(),
        p.get("scored_tokens").getAsLong());
    double diff = p.get("max_relative_nll_difference").getAsDouble();
    assertTrue(diff >= 0 && diff <= 1e-6, "NLLs differ by " + diff + " relative");
  }

  /**
   * An hf_olmo model that transformers' OlmoForCausalLM cannot compute (here norm_after) stops the
   * bench when the peer loads it, with the switch named, instead of a comparison of two models.
   */
  @Test
  void anHfOlmoModelThePeerCannotComputeIsRefused(@TempDir Path tmp) throws Exception {
    assumeTrue(hasTorchAndTransformers(PYTHON), PYTHON + " has no torch and transformers");
    Path model = tmp.resolve("norm-after");
    FileUtils.copyDirectory(
        Refcases.dir("p02_hfolmo_tied_ffout_alias_bf16").toFile(), model.toFile());
    Path config = model.resolve("config.json");
    JsonObject c = JsonParser.parseString(Files.readString(config)).getAsJsonObject();
    c.addProperty("norm_after", true);
    Files.writeString(config, c.toString());
    JobException e = assertThrows(JobException.class, () -> bench(PYTHON, "1", model, "short"));
    assertTrue(
        e.getMessage().contains("norm_after true") && e.getMessage().contains("without --peer"),
        e.getMessage());
  }

  private static JsonObject bench(String python, String rounds) throws Exception {
    return bench(python, rounds, Refcases.dir("p01_olmo_tied_f32"), "long,short,overhead");
  }

  private static JsonObject bench(String python, String rounds, Path model, String workloads)
      throws Exception {
    List<String> argv =
        new ArrayList<>(
            List.of(
                "bench",
                "--model",
                model.toString(),
                "--workload",
                workloads,
                "--short-docs",
                "10"));
    if (workloads.contains("long")) {
      argv.addAll(List.of("--long-tokens", "600"));
    }
    if (workloads.contains("overhead")) {
      argv.addAll(List.of("--overhead-docs", "10"));
    }
    argv.addAll(
        List.of(
            "--no-spark",
            "--rounds",
            rounds,
            "--peer",
            "transformers",
            "--python",
            python,
            "--json"));
    ByteArrayOutputStream o = new ByteArrayOutputStream();
    Bench.run(argv.toArray(String[]::new), new PrintStream(o, true, StandardCharsets.UTF_8));
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
