package io.olmoppl.job.tools;

import com.google.gson.Gson;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.gson.stream.JsonWriter;
import io.olmoppl.batching.ScoringEngine;
import io.olmoppl.checkpoint.OlmoConfig;
import io.olmoppl.job.cli.JobException;
import io.olmoppl.model.Window;
import io.olmoppl.runtime.NativeAllocator;
import io.olmoppl.scoring.DocumentScore;
import io.olmoppl.scoring.PerplexityScorer;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The bench's peer phase: the same workloads scored by Hugging Face transformers on PyTorch CPU (a
 * script of the project's own, {@code peer-transformers.py}), alternating with the engine in
 * process. The peer gets the bench's exact windows (token ids and first scored position) and the
 * engine's thread count, so only the engines differ; its per-document NLLs are a third reference.
 */
final class PeerPhase {
  static final String SCRIPT = "peer-transformers.py";

  private PeerPhase() {}

  /**
   * Refuses {@code --peer transformers} before any work when {@code python} cannot import torch and
   * transformers: a run that only finds out after its other phases would have measured in vain.
   */
  static void check(String python, Path work) throws IOException {
    Path said = work.resolve("peer-check.txt");
    String why;
    try {
      ProcessBuilder pb =
          new ProcessBuilder(python, "-c", "import torch, transformers")
              .redirectErrorStream(true)
              .redirectOutput(said.toFile());
      NativeAllocator.clearForChild(pb.environment());
      Process p = pb.start();
      if (!p.waitFor(300, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        why = "importing torch and transformers took over 300 s";
      } else if (p.exitValue() == 0) {
        return;
      } else {
        why = lastLine(said);
      }
    } catch (IOException e) {
      why = "cannot run it: " + e.getMessage();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      why = "interrupted";
    }
    throw new JobException(
        "--peer transformers needs a Python with torch and transformers; "
            + python
            + " has not ("
            + why
            + "). Give --python PATH of one (e.g. a venv: python3 -m venv V && V/bin/pip install"
            + " torch transformers)");
  }

  /**
   * The peer script started on {@code model}, its model loaded: it scores the workloads it is asked
   * for. Started before any of the model's timed runs, so a model transformers cannot load stops
   * the bench before it measures.
   */
  static final class Peer implements AutoCloseable {
    private final Process p;
    private final BufferedReader answers;
    private final Writer asks;
    private final Path stderr;
    private final JsonObject ready;

    private Peer(Process p, Path stderr) throws IOException {
      this.p = p;
      this.stderr = stderr;
      this.answers =
          new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
      this.asks = new OutputStreamWriter(p.getOutputStream(), StandardCharsets.UTF_8);
      String first = answers.readLine();
      this.ready = first == null || !first.startsWith("{\"ready\"") ? null : parse(first);
    }

    /**
     * @throws JobException when the script cannot load {@code model} (what it said)
     */
    static Peer start(
        ScoringEngine engine,
        Path model,
        Path work,
        String python,
        int threads,
        Map<String, Workload> workloads)
        throws IOException {
      Path windows = work.resolve("peer-windows.json");
      writeWindows(engine, workloads, windows);
      Path script = work.resolve(SCRIPT);
      try (InputStream in = PeerPhase.class.getResourceAsStream(SCRIPT)) {
        Files.copy(in, script);
      }
      Path stderr = work.resolve("peer-stderr.txt");
      ProcessBuilder pb =
          new ProcessBuilder(
                  python,
                  script.toString(),
                  "--model",
                  model.toString(),
                  "--windows",
                  windows.toString(),
                  "--threads",
                  String.valueOf(threads))
              .redirectError(stderr.toFile());
      // the peer's PyTorch runs as the user's script would, not with the job's MKL settings
      NativeAllocator.clearForChild(pb.environment());
      Process p = pb.start();
      Peer peer;
      try {
        peer = new Peer(p, stderr);
      } catch (IOException | RuntimeException e) { // its first line unreadable, or not JSON
        p.destroyForcibly();
        throw e;
      }
      if (peer.ready == null || !peer.ready.get("ready").getAsBoolean()) {
        String why =
            peer.ready != null
                ? peer.ready.get("error").getAsString()
                : "it exited without answering: " + lastLine(stderr);
        peer.close();
        throw new JobException(
            "--peer transformers: "
                + python
                + " cannot load "
                + model
                + " with transformers ("
                + why
                + "); run the bench without --peer for this model");
      }
      return peer;
    }

    /**
     * Each workload, {@code rounds} times: the peer, then a 2048^3 matmul (added to {@code
     * ceilings}) and the engine in process (added to {@code inRuns}). @return the peer's figures
     * per workload
     */
    Map<String, Object> run(
        ScoringEngine engine,
        OlmoConfig c,
        Map<String, Workload> workloads,
        Map<String, List<Map<String, Object>>> inRuns,
        Ceilings ceilings,
        int rounds)
        throws IOException {
      Map<String, List<JsonObject>> peerRuns = new LinkedHashMap<>();
      Map<String, Double> nllDiff = new LinkedHashMap<>();
      for (int round = 0; round < rounds; round++) {
        for (Map.Entry<String, Workload> w : workloads.entrySet()) {
          asks.write(w.getKey() + "\n");
          asks.flush();
          String line = answers.readLine();
          if (line == null) {
            throw new IOException(
                "the transformers peer exited while scoring "
                    + w.getKey()
                    + ": "
                    + lastLine(stderr));
          }
          JsonObject run = parse(line);
          run.addProperty(
              "scored_tokens_per_second",
              run.get("scored_tokens").getAsLong() / run.get("seconds").getAsDouble());
          peerRuns.computeIfAbsent(w.getKey(), k -> new ArrayList<>()).add(run);
          List<DocumentScore> ours = new ArrayList<>();
          ceilings.measure();
          inRuns.get(w.getKey()).add(InProcessPhase.inProcess(engine, c, w.getValue(), ours));
          nllDiff.merge(
              w.getKey(), maxRelativeDifference(ours, run.getAsJsonArray("nll")), Math::max);
        }
      }
      Map<String, Object> out = new LinkedHashMap<>();
      out.put("engine", "transformers " + ready.get("transformers").getAsString());
      out.put("torch", ready.get("torch").getAsString());
      out.put("threads", ready.get("threads").getAsInt());
      for (String w : peerRuns.keySet()) {
        List<Double> rates =
            peerRuns.get(w).stream()
                .map(r -> r.get("scored_tokens_per_second").getAsDouble())
                .toList();
        double best = rates.stream().mapToDouble(Double::doubleValue).max().orElseThrow();
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("scored_tokens", peerRuns.get(w).get(0).get("scored_tokens").getAsLong());
        m.put("scored_tokens_per_second", best);
        m.put("runs_tokens_per_second", rates);
        m.put("rounds", rounds);
        m.put(
            "ratio_in_process_to_peer",
            InProcessPhase.rate(InProcessPhase.best(inRuns.get(w))) / best);
        m.put("max_relative_nll_difference", nllDiff.get(w));
        out.put(w, m);
      }
      return out;
    }

    @Override
    public void close() throws IOException {
      try {
        asks.close(); // its stdin closed: it exits
      } catch (IOException e) {
        // it has exited already
      }
      answers.close();
      p.destroy();
      try {
        if (!p.waitFor(30, TimeUnit.SECONDS)) {
          p.destroyForcibly();
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  /** Every workload's windows, as the engine plans them: {name: [[{ids, first}, ...], ...]}. */
  static void writeWindows(ScoringEngine engine, Map<String, Workload> workloads, Path file)
      throws IOException {
    try (JsonWriter j = new Gson().newJsonWriter(Files.newBufferedWriter(file))) {
      j.beginObject();
      for (Map.Entry<String, Workload> w : workloads.entrySet()) {
        PerplexityScorer plan = engine.scorer(w.getValue().options());
        j.name(w.getKey()).beginArray();
        for (String t : w.getValue().texts()) {
          j.beginArray();
          for (Window win : plan.plan(engine.tokenizer().encode(t))) {
            j.beginObject().name("ids").beginArray();
            for (long id : win.tokens()) {
              j.value(id);
            }
            j.endArray().name("first").value(win.firstScored()).endObject();
          }
          j.endArray();
        }
        j.endArray();
      }
      j.endObject();
    }
  }

  /**
   * @return the largest |ours - peer| / |peer| over the documents' NLLs
   */
  static double maxRelativeDifference(List<DocumentScore> ours, JsonArray peer) {
    if (ours.size() != peer.size()) {
      throw new IllegalStateException(
          "the peer scored " + peer.size() + " documents, the engine " + ours.size());
    }
    double max = 0;
    for (int i = 0; i < ours.size(); i++) {
      double theirs = peer.get(i).getAsDouble();
      max = Math.max(max, Math.abs(ours.get(i).nll() - theirs) / Math.abs(theirs));
    }
    return max;
  }

  private static JsonObject parse(String line) throws IOException {
    try {
      return JsonParser.parseString(line).getAsJsonObject();
    } catch (RuntimeException e) {
      throw new IOException("the transformers peer answered something else than JSON: " + line, e);
    }
  }

  private static String lastLine(Path stderr) throws IOException {
    List<String> lines = Files.readAllLines(stderr);
    return lines.isEmpty() ? "(nothing on stderr)" : lines.get(lines.size() - 1);
  }
}
