package io.olmoppl.job.tools;

import ai.djl.Device;
import ai.djl.pytorch.jni.JniUtils;
import com.google.gson.GsonBuilder;
import io.olmoppl.batching.ScoringEngine;
import io.olmoppl.checkpoint.Checkpoint;
import io.olmoppl.checkpoint.CheckpointLayout;
import io.olmoppl.checkpoint.OlmoConfig;
import io.olmoppl.checkpoint.TyingRule;
import io.olmoppl.checkpoint.writer.CheckpointMaker;
import io.olmoppl.job.cli.Args;
import io.olmoppl.job.cli.BundledTokenizers;
import io.olmoppl.job.cli.Command;
import io.olmoppl.job.cli.UsageException;
import io.olmoppl.model.OlmoModel;
import io.olmoppl.model.Precision;
import io.olmoppl.runtime.MklDispatch;
import io.olmoppl.runtime.NativeAllocator;
import io.olmoppl.tokenizer.OlmoTokenizer;
import java.io.IOException;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryUsage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import org.apache.commons.io.FileUtils;

/**
 * {@code olmo-ppl bench}: how close scoring comes to what the machine can do, in one process. It
 * measures the fp32 matmul ceiling through the engine (2048^3 and the model's own shapes), then the
 * workloads (one long document at window 512 / stride 256; many short documents of mixed lengths at
 * window 512; a user's documents at window 512; thousands of short documents on a tiny model),
 * first through the scoring engine alone and then end to end through {@code olmo-ppl score} on
 * {@code local[*]}, one model at a time: the long, short and texts workloads on the benchmark
 * model, the overhead workload on the tiny one. FLOPs are counted by {@link ModelFlops}.
 */
public final class Bench implements Command {
  public static final String HELP =
      String.join(
          "\n",
          "usage: olmo-ppl bench [--model DIR] [--json] [--long-tokens N] [--short-docs N] [--texts FILE]"
              + " [--no-spark]"
              + " [--rounds N] [--workload LIST] [--overhead-docs N] [--overhead-model DIR]"
              + " [--peer transformers [--python PATH]]",
          "",
          "Measures scoring throughput against the fp32 matmul ceiling of this machine, in process and end to end",
          "through olmo-ppl score. The long, short and texts workloads run on --model; without it the bench builds",
          "the benchmark checkpoint (olmo layout, hidden 1024, 8 layers, 16 heads, intermediate 4096, tied, F32).",
          "Windows are 512 tokens (the model's positions if fewer).",
          "  --long-tokens N  tokens of the long document (default 26292)",
          "  --short-docs N   number of short documents (default 230, about 95 tokens each)",
          "  --texts FILE     the texts workload's documents: JSON Lines, the field text of every line (your",
          "                   own corpus's mix of lengths, scored like the short mix, beside it)",
          "  --no-spark       skip the end-to-end runs through olmo-ppl score",
          "  --workload LIST  comma-separated, of long (one long document at stride 256), short (the short mix),",
          "                   texts (the documents of --texts at window 512) and overhead (--overhead-docs short",
          "                   documents on a tiny model, hidden 128, 2 layers, where costs outside the forward pass",
          "                   show); default long,short. Each model is loaded and measured in turn: long, short and",
          "                   texts on the benchmark model, then overhead on its own",
          "  --overhead-docs N  number of documents of the overhead workload (default 3000)",
          "  --overhead-model DIR  the overhead workload's model instead of the tiny one the bench builds",
          "  --peer transformers  also score every workload with Hugging Face transformers on PyTorch CPU (the",
          "                   same windows and threads, alternating with the engine) and compare speed and NLLs",
          "  --python PATH    the Python with torch and transformers for --peer (default python3)",
          "  --rounds N       end-to-end runs per workload, each followed by one in process (default 1);",
          "                   the ratio is best to best, so more rounds ride out a noisy machine",
          "  --json           print every figure as JSON instead of the table");

  /** The names {@code --workload} takes, in the order the bench runs them. */
  static final List<String> WORKLOADS = List.of("long", "short", "texts", "overhead");

  /** The options that belong to one workload, and its name in {@code --workload}. */
  static final Map<String, String> WORKLOAD_OPTIONS =
      Map.of(
          "long-tokens", "long",
          "short-docs", "short",
          "texts", "texts",
          "overhead-docs", "overhead",
          "overhead-model", "overhead");

  public Bench() {}

  @Override
  public String name() {
    return "bench";
  }

  @Override
  public String oneLine() {
    return "[--model DIR] [--json]                  measure throughput against this machine's ceiling";
  }

  @Override
  public String help() {
    return HELP;
  }

  @Override
  public int run(String[] argv, PrintStream out, PrintStream err) throws IOException {
    run(argv, out);
    return 0;
  }

  public static void run(String[] argv, PrintStream out) throws IOException {
    Args a =
        Args.parse(
            "bench",
            argv,
            1,
            Set.of(
                "model",
                "long-tokens",
                "short-docs",
                "texts",
                "short-texts",
                "master",
                "rounds",
                "workload",
                "overhead-docs",
                "overhead-model",
                "peer",
                "python"),
            Set.of("json", "no-spark"));
    boolean json = a.flag("json");
    PrintStream log = json ? System.err : out;
    Path work = Files.createTempDirectory("olmo-ppl-bench");
    try {
      run(a, work, json, log, out);
    } finally {
      FileUtils.deleteDirectory(work.toFile()); // the checkpoint it built and the runs' files
    }
  }

  /**
   * A checkpoint and the workloads that run on it: the benchmark model's (long, short, texts) or
   * the tiny model's (overhead).
   */
  record ModelGroup(Path model, List<String> workloads) {}

  static void run(Args a, Path work, boolean json, PrintStream log, PrintStream out)
      throws IOException {
    if (a.get("short-texts") != null) {
      throw new UsageException(
          "--short-texts is now a workload of its own, beside the generated short mix: pass --texts "
              + a.get("short-texts")
              + " and add texts to --workload (e.g. --workload long,short,texts)");
    }
    List<String> chosen = List.of(a.get("workload", "long,short").split(","));
    for (String w : chosen) {
      if (!WORKLOADS.contains(w)) {
        throw new UsageException(
            "--workload takes " + String.join(", ", WORKLOADS) + " (comma-separated), not " + w);
      }
    }
    if (chosen.contains("texts") && a.get("texts") == null) {
      throw new UsageException(
          "--workload texts scores the documents of --texts FILE (JSON Lines, the field text):"
              + " name the file");
    }
    // an option of a workload that does not run would be ignored: refused instead
    for (Map.Entry<String, String> e : WORKLOAD_OPTIONS.entrySet()) {
      if (a.get(e.getKey()) != null && !chosen.contains(e.getValue())) {
        throw new UsageException(
            "--"
                + e.getKey()
                + " is an option of the "
                + e.getValue()
                + " workload, which does not run: add "
                + e.getValue()
                + " to --workload (now "
                + String.join(",", chosen)
                + ")");
      }
    }
    String peer = a.get("peer");
    if (peer != null && !peer.equals("transformers")) {
      throw new UsageException("--peer takes transformers, not " + peer);
    }
    if (peer == null && a.get("python") != null) {
      throw new UsageException("--python names the Python of --peer transformers: add --peer");
    }
    String python = a.get("python", "python3");
    int rounds = a.integer("rounds", 1);
    if (rounds < 1) {
      throw new UsageException("--rounds must be at least 1, not " + rounds);
    }
    // read before any model is built: a bad file is refused first
    List<String> texts =
        a.get("texts") == null ? null : Workload.readTexts(Path.of(a.get("texts")));
    if (peer != null) {
      PeerPhase.check(python, work);
    }
    List<ModelGroup> groups = groups(a, chosen, work, log);
    int longTokens = a.integer("long-tokens", 26_292);
    int shortDocs = a.integer("short-docs", 230);
    int overheadDocs = a.integer("overhead-docs", 3000);
    Map<String, Object> r = new LinkedHashMap<>();
    r.put("machine", BenchMachine.machine());
    List<Map<String, Object>> models = new ArrayList<>();
    // every in-process run of each workload, and every 2048^3 rate: figures are best to best
    Map<String, List<Map<String, Object>>> inRuns = new LinkedHashMap<>();
    Ceilings ceilings = null; // with the engine's threads, once the first engine exists
    Map<String, Object> ceiling = new LinkedHashMap<>();
    Map<String, Object> spark = new LinkedHashMap<>();
    Map<String, Object> peers = new LinkedHashMap<>();
    try (EndToEndPhase.Spark session = new EndToEndPhase.Spark(a.get("master", "local[*]"))) {
      for (int g = 0; g < groups.size(); g++) {
        ModelGroup group = groups.get(g);
        // the memory figures and the ceiling's shapes are the first model's: the benchmark model,
        // unless the overhead workload runs alone
        boolean first = g == 0;
        Path model = group.model();
        Path groupWork = Files.createDirectories(work.resolve("model-" + g)); // its runs' files
        Checkpoint ckpt = Checkpoint.open(model, TyingRule.STRICT);
        OlmoConfig c = ckpt.config();
        Map<String, Object> info = modelInfo(model, ckpt);
        if (first) {
          r.put("model", new LinkedHashMap<>(info));
          if (c.experts() != null) {
            r.put("experts", c.experts());
          }
          r.put("models", models);
        }
        long rssBefore = 0;
        long mallocBefore = 0;
        if (first) {
          rssBefore = BenchMachine.residentBytes("VmRSS:");
          BenchMachine.resetPeakResident();
          mallocBefore = BenchMachine.MallocSampler.now();
        }
        Map<String, Object> mem = new LinkedHashMap<>();
        BenchMachine.MallocSampler sampler = first ? new BenchMachine.MallocSampler() : null;
        PeerPhase.Peer peerRun = null;
        try (sampler;
            OlmoModel m = OlmoModel.load(ckpt, ckpt, Device.cpu(), Precision.FP32);
            OlmoTokenizer tok = OlmoTokenizer.load(ckpt.tokenizerJson());
            ScoringEngine engine =
                new ScoringEngine(
                    m,
                    tok,
                    ScoringEngine.QUEUE_TOKENS_DEFAULT,
                    Runtime.getRuntime().availableProcessors())) {
          if (first) {
            mem.put("malloc_after_load_bytes", BenchMachine.MallocSampler.now() - mallocBefore);
            mem.put("activation_bytes", m.cpuActivationBytes());
            r.put("allocator", BenchMachine.allocator());
            r.put("mkl_code_path", MklDispatch.select());
          }
          Map<String, Workload> workloads = new LinkedHashMap<>();
          for (String w : group.workloads()) {
            workloads.put(
                w,
                switch (w) {
                  case "long_document" ->
                      Workload.longDocument(
                          c, List.of(Workload.text(tok, longTokens, new SplittableRandom(1))));
                  case "short_documents" ->
                      Workload.shortDocuments(
                          c, Workload.shortTexts(tok, shortDocs, new SplittableRandom(2)));
                  case "texts" -> Workload.shortDocuments(c, texts);
                  case "overhead" ->
                      Workload.shortDocuments(
                          c, Workload.shortTexts(tok, overheadDocs, new SplittableRandom(3)));
                  default -> throw new IllegalStateException("no workload " + w);
                });
          }
          info.put("workloads", List.copyOf(workloads.keySet()));
          models.add(info);
          // loaded before any timed run: a model the peer cannot load stops the bench here
          peerRun =
              peer == null
                  ? null
                  : PeerPhase.Peer.start(
                      engine, model, groupWork, python, JniUtils.getNumThreads(), workloads);
          // Spark's first job, the engine's first passes: not part of the steady state
          Workload warmUp =
              Workload.shortDocuments(c, Workload.shortTexts(tok, 8, new SplittableRandom(4)));
          InProcessPhase.score(engine, warmUp);
          long peakBeforeCeiling = 0;
          if (first) {
            peakBeforeCeiling = BenchMachine.residentBytes("VmHWM:");
            ceiling.putAll(sampler.unsampled(() -> InProcessPhase.ceiling(m)));
            // the ceiling's operands are the bench's, not the scorer's: their freed blocks go back
            // to the system before the peak is reset
            NativeAllocator.trim();
            BenchMachine.resetPeakResident();
            r.put("matmul_ceiling", ceiling);
            ceilings = new Ceilings((int) ceiling.get("threads"));
            ceilings.add((double) ceiling.get("gflops_2048"));
          }
          workloads.forEach(
              (w, load) ->
                  inRuns.put(
                      w, new ArrayList<>(List.of(InProcessPhase.inProcess(engine, c, load)))));
          if (first) {
            mem.put("malloc_peak_bytes", sampler.max() - mallocBefore);
            long peakResident = Math.max(peakBeforeCeiling, BenchMachine.residentBytes("VmHWM:"));
            long weights = ckpt.uniqueWeightBytes();
            MemoryUsage heap = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage();
            // the Java heap is outside the figure only when it was fixed and pre-touched (as the
            // launcher runs bench): then its resident size cannot change
            mem.put("java_heap_fixed", heap.getCommitted() == heap.getMax());
            mem.put("resident_before_model_bytes", rssBefore);
            mem.put("peak_resident_bytes", peakResident);
            mem.put("scoring_bytes", peakResident - rssBefore);
            mem.put("unique_weight_bytes", weights);
            mem.put(
                "scoring_over_target",
                (peakResident - rssBefore) / (1.5 * weights + (long) mem.get("activation_bytes")));
            mem.put("workloads", info.get("workloads"));
            r.put("memory", mem);
            sampler.close(); // its walks of malloc's lists take malloc's locks: not while timing
          }
          if (!a.flag("no-spark")) {
            spark.putAll(
                EndToEndPhase.endToEnd(
                    engine, c, model, groupWork, session, warmUp, workloads, inRuns, ceilings,
                    rounds));
          }
          if (peerRun != null) {
            peers.putAll(peerRun.run(engine, c, workloads, inRuns, ceilings, rounds));
          }
        } finally {
          if (peerRun != null) {
            peerRun.close();
          }
        }
      }
    }
    if (!a.flag("no-spark")) {
      r.put("spark", spark);
    }
    if (peer != null) {
      r.put("peer", peers);
    }
    ceilings.report(ceiling);
    Map<String, Object> loads = new LinkedHashMap<>();
    for (Map.Entry<String, List<Map<String, Object>>> e : inRuns.entrySet()) {
      Map<String, Object> best = new LinkedHashMap<>(InProcessPhase.best(e.getValue()));
      ceilings.ratios(best);
      best.put("runs_tokens_per_second", e.getValue().stream().map(InProcessPhase::rate).toList());
      loads.put(e.getKey(), best);
    }
    r.put("in_process", loads);
    if (json) {
      out.println(
          new GsonBuilder()
              .setPrettyPrinting()
              .serializeSpecialFloatingPointValues()
              .create()
              .toJson(r));
    } else {
      BenchPrinter.print(r, out);
    }
  }

  /**
   * The chosen workloads by model: long, short and texts on {@code --model} or the benchmark
   * checkpoint, overhead on {@code --overhead-model} or the tiny checkpoint (one group when both
   * name the same folder). The checkpoints the bench builds are written to {@code work}.
   */
  static List<ModelGroup> groups(Args a, List<String> chosen, Path work, PrintStream log)
      throws IOException {
    List<String> bench = new ArrayList<>();
    if (chosen.contains("long")) {
      bench.add("long_document");
    }
    if (chosen.contains("short")) {
      bench.add("short_documents");
    }
    if (chosen.contains("texts")) {
      bench.add("texts");
    }
    if (bench.isEmpty() && a.get("model") != null) {
      throw new UsageException(
          "--model is the model of the long, short and texts workloads, and none was chosen; the overhead"
              + " workload runs on --overhead-model DIR (default: a tiny model the bench builds)");
    }
    List<ModelGroup> groups = new ArrayList<>();
    if (!bench.isEmpty()) {
      groups.add(
          new ModelGroup(
              a.get("model") != null ? Path.of(a.get("model")) : benchmarkCheckpoint(work, log),
              bench));
    }
    if (chosen.contains("overhead")) {
      Path tiny =
          a.get("overhead-model") != null
              ? Path.of(a.get("overhead-model"))
              : overheadCheckpoint(work, log);
      if (!groups.isEmpty() && groups.get(0).model().equals(tiny)) {
        groups.set(0, new ModelGroup(tiny, concat(bench, "overhead")));
      } else {
        groups.add(new ModelGroup(tiny, List.of("overhead")));
      }
    }
    return groups;
  }

  private static List<String> concat(List<String> list, String last) {
    List<String> all = new ArrayList<>(list);
    all.add(last);
    return all;
  }

  /** What the report says of a model: where it is, its shape and size. */
  private static Map<String, Object> modelInfo(Path model, Checkpoint ckpt) {
    OlmoConfig c = ckpt.config();
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("path", model.toString());
    m.put("layout", c.layout().id());
    m.put("hidden", c.hiddenSize());
    m.put("layers", c.numHiddenLayers());
    m.put("heads", c.numAttentionHeads());
    m.put("intermediate", c.intermediateSize());
    m.put("vocab_rows", c.vocabRows());
    m.put("parameters", ckpt.parameterCount());
    m.put("unique_weight_bytes", ckpt.uniqueWeightBytes());
    m.put("tied", ckpt.tying().tied());
    if (c.experts() != null) {
      m.put("experts", c.experts());
    }
    return m;
  }

  static Path benchmarkCheckpoint(Path work, PrintStream log) throws IOException {
    return checkpoint(
        work,
        "checkpoint",
        log,
        CheckpointMaker.small(CheckpointLayout.OLMO).withDims(1024, 8, 16, 16, 4096, 2048));
  }

  /** The overhead workload's model: so small that costs outside the forward pass show. */
  static Path overheadCheckpoint(Path work, PrintStream log) throws IOException {
    return checkpoint(
        work,
        "tiny-checkpoint",
        log,
        CheckpointMaker.small(CheckpointLayout.OLMO).withDims(128, 2, 2, 2, 512, 512));
  }

  private static Path checkpoint(Path work, String name, PrintStream log, CheckpointMaker maker)
      throws IOException {
    Path tok = work.resolve("tokenizer.json");
    if (!Files.exists(tok)) {
      try (var in = BundledTokenizers.open("neox")) {
        Files.copy(in, tok);
      }
    }
    Path dir = work.resolve(name);
    log.println("olmo-ppl bench: writing the " + name + " to " + dir);
    maker.withTied(true, CheckpointMaker.OutputCopy.NONE).write(dir, tok);
    return dir;
  }
}
