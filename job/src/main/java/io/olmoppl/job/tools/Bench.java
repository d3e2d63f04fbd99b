package io.olmoppl.job.tools;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;
import com.google.gson.GsonBuilder;
import io.olmoppl.batching.EngineStats;
import io.olmoppl.batching.ScoringEngine;
import io.olmoppl.checkpoint.Checkpoint;
import io.olmoppl.checkpoint.CheckpointLayout;
import io.olmoppl.checkpoint.OlmoConfig;
import io.olmoppl.checkpoint.TyingRule;
import io.olmoppl.checkpoint.writer.CheckpointMaker;
import io.olmoppl.job.Args;
import io.olmoppl.job.ModelFlops;
import io.olmoppl.job.ScoreCommand;
import io.olmoppl.model.OlmoModel;
import io.olmoppl.model.Precision;
import io.olmoppl.model.Window;
import io.olmoppl.runtime.MklDispatch;
import io.olmoppl.runtime.NativeAllocator;
import io.olmoppl.runtime.TorchEngine;
import io.olmoppl.scoring.DocumentScore;
import io.olmoppl.scoring.PerplexityScorer;
import io.olmoppl.scoring.ScoringOptions;
import io.olmoppl.tokenizer.OlmoTokenizer;
import java.io.IOException;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryUsage;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.function.Supplier;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.apache.arrow.vector.VarCharVector;
import org.apache.commons.io.FileUtils;
import org.apache.spark.sql.SparkSession;

/**
 * {@code olmo-ppl bench}: how close scoring comes to what the machine can do, in one process. It
 * measures the fp32 matmul ceiling through the engine (2048^3 and the model's own shapes), then two
 * workloads (one long document at window 512 / stride 256; many short documents of mixed lengths at
 * window 512), first through the scoring engine alone and then end to end through {@code olmo-ppl
 * score} on {@code local[*]}. FLOPs are counted exactly from the config: projections and the MLP at
 * every computed position, causal attention pairs, the output projection at scored positions only.
 */
public final class Bench {
  public static final String HELP =
      String.join(
          "\n",
          "usage: olmo-ppl bench [--model DIR] [--json] [--long-tokens N] [--short-docs N] [--no-spark]",
          "",
          "Measures scoring throughput against the fp32 matmul ceiling of this machine, in process and end to end",
          "through olmo-ppl score. Without --model it builds the benchmark checkpoint (olmo layout, hidden 1024, 8",
          "layers, 16 heads, intermediate 4096, tied, F32). Windows are 512 tokens (the model's positions if fewer).",
          "  --long-tokens N  tokens of the long document (default 26292)",
          "  --short-docs N   number of short documents (default 230, about 95 tokens each)",
          "  --no-spark       skip the end-to-end runs through olmo-ppl score",
          "  --rounds N       end-to-end runs per workload, each followed by one in process (default 1);",
          "                   the ratio is best to best, so more rounds ride out a noisy machine",
          "  --json           print every figure as JSON instead of the table");
  static final int WINDOW = 512;

  /**
   * Texts scored at one window and stride: the window is 512 tokens, or the model's positions when
   * it has fewer; the long document's stride is half the window.
   */
  record Workload(List<String> texts, int window, int stride) {
    static Workload longDocument(OlmoConfig c, List<String> texts) {
      int w = Math.min(WINDOW, c.maxPositionEmbeddings());
      return new Workload(texts, w, w / 2);
    }

    static Workload shortDocuments(OlmoConfig c, List<String> texts) {
      int w = Math.min(WINDOW, c.maxPositionEmbeddings());
      return new Workload(texts, w, w);
    }

    ScoringOptions options() {
      return ScoringOptions.defaults().withWindow(window, stride);
    }
  }

  private Bench() {}

  public static void run(String[] argv, PrintStream out) throws IOException {
    Args a =
        Args.parse(
            "bench",
            argv,
            1,
            Set.of("model", "long-tokens", "short-docs", "master", "rounds"),
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

  private static void run(Args a, Path work, boolean json, PrintStream log, PrintStream out)
      throws IOException {
    Path model = a.get("model") != null ? Path.of(a.get("model")) : benchmarkCheckpoint(work, log);
    Checkpoint ckpt = Checkpoint.open(model, TyingRule.STRICT);
    OlmoConfig c = ckpt.config();
    Map<String, Object> r = new LinkedHashMap<>();
    r.put("machine", machine());
    r.put(
        "model",
        Map.of(
            "path",
            model.toString(),
            "layout",
            c.layout().id(),
            "hidden",
            c.hiddenSize(),
            "layers",
            c.numHiddenLayers(),
            "heads",
            c.numAttentionHeads(),
            "intermediate",
            c.intermediateSize(),
            "vocab_rows",
            c.vocabRows(),
            "parameters",
            ckpt.parameterCount(),
            "unique_weight_bytes",
            ckpt.uniqueWeightBytes(),
            "tied",
            ckpt.tying().tied()));
    int longTokens = a.integer("long-tokens", 26_292);
    int shortDocs = a.integer("short-docs", 230);
    // every in-process run of each workload, and every 2048^3 rate: figures are best to best
    Map<String, List<Map<String, Object>>> inRuns = new LinkedHashMap<>();
    List<Double> ceilings = new ArrayList<>();
    long rssBefore = residentBytes("VmRSS:");
    resetPeakResident();
    long mallocBefore = MallocSampler.now();
    Map<String, Object> mem = new LinkedHashMap<>();
    Map<String, Object> ceiling;
    try (MallocSampler sampler = new MallocSampler();
        OlmoModel m = OlmoModel.load(ckpt, ckpt, Device.cpu(), Precision.FP32);
        OlmoTokenizer tok = OlmoTokenizer.load(ckpt.tokenizerJson());
        ScoringEngine engine =
            new ScoringEngine(
                m,
                tok,
                ScoringEngine.QUEUE_TOKENS_DEFAULT,
                Runtime.getRuntime().availableProcessors())) {
      mem.put("malloc_after_load_bytes", MallocSampler.now() - mallocBefore);
      mem.put("activation_bytes", m.cpuActivationBytes());
      r.put("allocator", allocator());
      r.put("mkl_code_path", MklDispatch.select());
      Workload longDoc =
          Workload.longDocument(c, List.of(text(tok, longTokens, new SplittableRandom(1))));
      Workload shortMix =
          Workload.shortDocuments(c, shortDocuments(tok, shortDocs, new SplittableRandom(2)));
      Workload warmUp = Workload.shortDocuments(c, warmUpTexts(shortMix, 8));
      score(engine, warmUp);
      long peakBeforeCeiling = residentBytes("VmHWM:");
      ceiling = sampler.unsampled(() -> ceiling(m));
      // the ceiling's operands are the bench's, not the scorer's: their freed blocks go back to the
      // system before the peak is reset
      NativeAllocator.trim();
      resetPeakResident();
      r.put("matmul_ceiling", ceiling);
      ceilings.add((double) ceiling.get("gflops_2048"));
      Map<String, Workload> workloads = new LinkedHashMap<>();
      workloads.put("long_document", longDoc);
      workloads.put("short_documents", shortMix);
      workloads.forEach(
          (w, load) -> inRuns.put(w, new ArrayList<>(List.of(inProcess(engine, c, load)))));
      mem.put("malloc_peak_bytes", sampler.max() - mallocBefore);
      long peakResident = Math.max(peakBeforeCeiling, residentBytes("VmHWM:"));
      long weights = ckpt.uniqueWeightBytes();
      MemoryUsage heap = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage();
      // the Java heap is outside the figure only when it was fixed and pre-touched (as the launcher
      // runs bench): then its resident size cannot change
      mem.put("java_heap_fixed", heap.getCommitted() == heap.getMax());
      mem.put("resident_before_model_bytes", rssBefore);
      mem.put("peak_resident_bytes", peakResident);
      mem.put("scoring_bytes", peakResident - rssBefore);
      mem.put("unique_weight_bytes", weights);
      mem.put(
          "scoring_over_target",
          (peakResident - rssBefore) / (1.5 * weights + (long) mem.get("activation_bytes")));
      r.put("memory", mem);
      sampler.close(); // its walks of malloc's lists take malloc's locks: not while measuring speed
      if (!a.flag("no-spark")) {
        r.put(
            "spark",
            endToEnd(
                engine,
                c,
                model,
                work,
                a.get("master", "local[*]"),
                workloads,
                inRuns,
                ceilings,
                a.integer("rounds", 1)));
      }
    }
    double bestCeiling = ceilings.stream().mapToDouble(Double::doubleValue).max().orElseThrow();
    ceiling.put("gflops_2048", bestCeiling);
    ceiling.put("gflops_2048_runs", ceilings);
    Map<String, Object> loads = new LinkedHashMap<>();
    for (Map.Entry<String, List<Map<String, Object>>> e : inRuns.entrySet()) {
      Map<String, Object> best = new LinkedHashMap<>(best(e.getValue()));
      best.put("ratio_to_ceiling", (double) best.get("effective_gflops") / bestCeiling);
      best.put("runs_tokens_per_second", e.getValue().stream().map(Bench::rate).toList());
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
      print(r, out);
    }
  }

  /** One workload through the engine: throughput, FLOPs, padding, time outside the forward pass. */
  private static Map<String, Object> inProcess(ScoringEngine engine, OlmoConfig c, Workload work) {
    EngineStats s = engine.stats();
    long positions0 = s.positions();
    long padded0 = s.paddedPositions();
    double forward0 = s.forwardSeconds();
    long t0 = System.nanoTime();
    List<DocumentScore> scores = score(engine, work);
    double secs = (System.nanoTime() - t0) / 1e9;
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
   * Both workloads end to end through {@code olmo-ppl score} on {@code master}, {@code rounds}
   * times. Each end-to-end run is followed by the same workload through the engine in process
   * again, and the ratio is the best end-to-end rate to the best in-process rate of the workload:
   * on a shared machine whose speed drifts and dips (a cloud VM), a ratio of two single runs
   * minutes apart measures the host as much as the job, and a slowdown is never the job running
   * faster.
   */
  private static Map<String, Object> endToEnd(
      ScoringEngine engine,
      OlmoConfig c,
      Path model,
      Path work,
      String master,
      Map<String, Workload> workloads,
      Map<String, List<Map<String, Object>>> inRuns,
      List<Double> ceilings,
      int rounds)
      throws IOException {
    if (rounds < 1) {
      throw new IllegalArgumentException("--rounds must be at least 1, not " + rounds);
    }
    boolean ours = SparkSession.getDefaultSession().isEmpty(); // stop only a session it starts
    SparkSession spark =
        SparkSession.builder()
            .appName("olmo-ppl bench")
            .master(master)
            .config("spark.ui.enabled", "false")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .getOrCreate();
    try {
      // warm-up: Spark's first job and the executor's model load are not part of the steady state
      scoreCommand(
          model,
          work.resolve("warm-up"),
          Workload.shortDocuments(c, warmUpTexts(workloads.get("short_documents"), 4)),
          master);
      Map<String, List<Map<String, Object>>> e2eRuns = new LinkedHashMap<>();
      for (String w : workloads.keySet()) {
        e2eRuns.put(w, new ArrayList<>());
      }
      for (int round = 0; round < rounds; round++) {
        for (String w : e2eRuns.keySet()) {
          e2eRuns
              .get(w)
              .add(scoreCommand(model, work.resolve(w + "-" + round), workloads.get(w), master));
          ceilings.add(matmulGflops(2048, 2048, 2048));
          inRuns.get(w).add(inProcess(engine, c, workloads.get(w)));
        }
      }
      Map<String, Object> e2e = new LinkedHashMap<>();
      for (String w : e2eRuns.keySet()) {
        List<Map<String, Object>> runs = e2eRuns.get(w);
        double bestIn = rate(best(inRuns.get(w)));
        Map<String, Object> m = new LinkedHashMap<>(best(runs));
        m.put("rounds", rounds);
        m.put("runs_tokens_per_second", runs.stream().map(Bench::rate).toList());
        m.put(
            "in_process_runs_tokens_per_second", inRuns.get(w).stream().map(Bench::rate).toList());
        m.put("best_in_process_tokens_per_second", bestIn);
        m.put("ratio_to_in_process", rate(m) / bestIn);
        e2e.put(w, m);
      }
      return e2e;
    } finally {
      if (ours) {
        spark.stop();
      }
    }
  }

  /**
   * @return the first {@code n} texts of {@code w} (all when it has fewer)
   */
  private static List<String> warmUpTexts(Workload w, int n) {
    return w.texts().subList(0, Math.min(n, w.texts().size()));
  }

  /**
   * @return the run with the most scored tokens per second
   */
  private static Map<String, Object> best(List<Map<String, Object>> runs) {
    return runs.stream().max(java.util.Comparator.comparingDouble(Bench::rate)).orElseThrow();
  }

  @SuppressWarnings("unchecked")
  private static double rate(Object run) {
    return (double) ((Map<String, Object>) run).get("scored_tokens_per_second");
  }

  /** One workload through {@code olmo-ppl score} (JSON lines in, parquet out). */
  private static Map<String, Object> scoreCommand(Path model, Path dir, Workload w, String master)
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
    long t0 = System.nanoTime();
    Map<String, Object> summary =
        ScoreCommand.main(args, new PrintStream(java.io.OutputStream.nullOutputStream()));
    double secs = (System.nanoTime() - t0) / 1e9;
    long tokens = ((Number) summary.get("tokens")).longValue();
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("master", master);
    m.put("scored_tokens", tokens);
    m.put("seconds", secs);
    m.put("scored_tokens_per_second", tokens / secs);
    m.put("timings", summary.get("timings")); // the job's own: setup, input count, scoring, summary
    return m;
  }

  private static Path benchmarkCheckpoint(Path work, PrintStream log) throws IOException {
    Path tok = work.resolve("tokenizer.json");
    try (var in = MakeCheckpointCommand.tokenizer("neox")) {
      Files.copy(in, tok);
    }
    Path dir = work.resolve("checkpoint");
    log.println("olmo-ppl bench: writing the benchmark checkpoint to " + dir);
    CheckpointMaker.small(CheckpointLayout.OLMO)
        .withDims(1024, 8, 16, 16, 4096, 2048)
        .withTied(true, CheckpointMaker.OutputCopy.NONE)
        .write(dir, tok);
    return dir;
  }

  /**
   * The fp32 matmul rate through DJL with the engine's threads: 2048^3 and the shapes of a CPU pass
   * of {@code m} (1,024 rows; the MLP's and the output matrix's slices).
   */
  private static Map<String, Object> ceiling(OlmoModel m) {
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

  /**
   * @return a text of about {@code tokens} tokens: words drawn from the tokenizer's own vocabulary
   *     of words
   */
  static String text(OlmoTokenizer tok, int tokens, SplittableRandom r) {
    String[] words =
        ("the of and to in a is that for it as was with be by on not he this are or his from at which"
                + " but have an they you were her she there been one all we their has would when if so no will can more"
                + " data model token corpus perplexity spark executor window stride byte river mountain history science"
                + " language people government between through because during without under about against")
            .split(" ");
    StringBuilder sb = new StringBuilder();
    int have = 0;
    while (have < tokens) {
      StringBuilder chunk = new StringBuilder();
      for (int w = 0; w < 64; w++) {
        chunk
            .append(sb.length() + chunk.length() == 0 ? "" : " ")
            .append(words[r.nextInt(words.length)]);
        if (r.nextInt(12) == 0) {
          chunk.append('.');
        }
      }
      sb.append(chunk);
      have = tok.encode(sb.toString()).length;
    }
    long[] ids = tok.encode(sb.toString());
    // cut at a word boundary near the target length
    String s = sb.toString();
    while (ids.length > tokens) {
      s = s.substring(0, s.lastIndexOf(' '));
      ids = tok.encode(s);
    }
    return s;
  }

  /**
   * @return {@code n} documents with a log-normal mix of lengths (median about 70 tokens, mean
   *     about 95)
   */
  static List<String> shortDocuments(OlmoTokenizer tok, int n, SplittableRandom r) {
    List<String> out = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      double g =
          Math.sqrt(-2 * Math.log(1 - r.nextDouble())) * Math.cos(2 * Math.PI * r.nextDouble());
      int tokens = (int) Math.max(8, Math.min(480, Math.round(Math.exp(Math.log(70) + 0.75 * g))));
      out.add(text(tok, tokens, r));
    }
    return out;
  }

  private static Map<String, Object> machine() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("cores", Runtime.getRuntime().availableProcessors());
    m.put("os", System.getProperty("os.name") + " " + System.getProperty("os.arch"));
    try {
      Files.readAllLines(Path.of("/proc/cpuinfo")).stream()
          .filter(l -> l.startsWith("model name"))
          .findFirst()
          .ifPresent(l -> m.put("cpu", l.substring(l.indexOf(':') + 1).trim()));
      Files.readAllLines(Path.of("/proc/meminfo")).stream()
          .filter(l -> l.startsWith("MemTotal"))
          .findFirst()
          .ifPresent(l -> m.put("memory", l.substring(l.indexOf(':') + 1).trim()));
    } catch (IOException e) {
      // not Linux: the figures are still valid without the machine's description
    }
    return m;
  }

  private static String allocator() {
    String preload = System.getenv("LD_PRELOAD");
    if (preload != null && !preload.isBlank()) {
      return "LD_PRELOAD=" + preload;
    }
    return Boolean.parseBoolean(System.getProperty("olmoppl.malloc.tune", "true"))
        ? "glibc malloc, tuned by olmo-ppl (fixed 32 MiB mmap threshold, 1 GiB trim threshold)"
        : "glibc malloc, defaults (-Dolmoppl.malloc.tune=false)";
  }

  /**
   * @return a /proc/self/status memory line in bytes ({@code VmRSS:} now, {@code VmHWM:} peak); -1
   *     off Linux
   */
  private static long residentBytes(String key) {
    try {
      for (String l : Files.readAllLines(Path.of("/proc/self/status"))) {
        if (l.startsWith(key)) {
          return Long.parseLong(l.replaceAll("[^0-9]", "")) * 1024;
        }
      }
    } catch (IOException e) {
      // not Linux
    }
    return -1;
  }

  /**
   * Samples what glibc's malloc has allocated (see {@link NativeAllocator#mallocInUseBytes}) every
   * 100 ms (each sample walks malloc's free lists: at 10 ms it took 1.7 % of the CPU) and keeps the
   * largest value: the weights, the engine's activations, the tokenizer's and Arrow's memory are
   * there. Sampling pauses while the bench itself allocates (the matmul ceiling's operands).
   */
  static final class MallocSampler implements AutoCloseable {
    private final Thread thread;
    private volatile boolean stop;
    private volatile boolean paused;
    private volatile long max = now();

    MallocSampler() {
      thread = new Thread(this::run, "olmo-ppl-bench-memory");
      thread.setDaemon(true);
      thread.start();
    }

    /**
     * @return bytes allocated through glibc's malloc now; -1 without glibc 2.33+
     */
    static long now() {
      return NativeAllocator.mallocInUseBytes();
    }

    private void run() {
      while (!stop) {
        if (!paused) {
          max = Math.max(max, now());
        }
        try {
          Thread.sleep(100);
        } catch (InterruptedException e) {
          return;
        }
      }
    }

    /** Runs {@code work} unsampled; @return its result */
    <T> T unsampled(Supplier<T> work) {
      max = Math.max(max, now());
      paused = true;
      try {
        return work.get();
      } finally {
        paused = false;
      }
    }

    /**
     * @return the largest sample so far
     */
    long max() {
      return Math.max(max, now());
    }

    @Override
    public void close() {
      stop = true;
      thread.interrupt();
    }
  }

  /**
   * Resets the process's peak resident size to the current one (Linux 4.0+), so the peak is the
   * scoring's own.
   */
  private static void resetPeakResident() {
    try {
      Files.writeString(Path.of("/proc/self/clear_refs"), "5");
    } catch (IOException e) {
      // not Linux, or not allowed: the peak then covers the whole process life
    }
  }

  @SuppressWarnings("unchecked")
  private static String rates(Object list) {
    return ((List<Double>) list)
        .stream().map(v -> String.format(Locale.ROOT, "%.1f", v)).toList().toString();
  }

  @SuppressWarnings("unchecked")
  private static void print(Map<String, Object> r, PrintStream out) {
    Map<String, Object> model = (Map<String, Object>) r.get("model");
    Map<String, Object> ceil = (Map<String, Object>) r.get("matmul_ceiling");
    out.printf("machine: %s%n", r.get("machine"));
    out.printf(
        "model: %s, hidden %s, %s layers, %s heads, intermediate %s, %,d parameters, %,d unique weight"
            + " bytes%n",
        model.get("layout"),
        model.get("hidden"),
        model.get("layers"),
        model.get("heads"),
        model.get("intermediate"),
        (long) model.get("parameters"),
        (long) model.get("unique_weight_bytes"));
    out.printf("allocator: %s%n", r.get("allocator"));
    out.printf("MKL code path: %s%n", r.get("mkl_code_path"));
    out.printf(
        "fp32 matmul ceiling, %s threads: 2048^3 %.1f GFLOP/s (best of %s); a pass's shapes: qkv %.1f, up or gate"
            + " slice %.1f, down slice %.1f, logit slice %.1f%n",
        ceil.get("threads"),
        ceil.get("gflops_2048"),
        rates(ceil.get("gflops_2048_runs")),
        ceil.get("gflops_qkv"),
        ceil.get("gflops_up_gate"),
        ceil.get("gflops_down"),
        ceil.get("gflops_logits"));
    Map<String, Object> in = (Map<String, Object>) r.get("in_process");
    Map<String, Object> spark = (Map<String, Object>) r.get("spark");
    for (String w : List.of("long_document", "short_documents")) {
      Map<String, Object> m = (Map<String, Object>) in.get(w);
      out.printf(
          "%s (%s docs, %,d scored tokens, window %s, stride %s), in process (best of %s): %.1f scored tokens/s, %.1f positions/s,"
              + " %.1f GFLOP/s = %.2f x ceiling, padding efficiency %.3f, %.1f%% of wall time outside the forward"
              + " pass%n",
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
          m.get("padding_efficiency"),
          100 * (double) m.get("share_outside_forward"));
      if (spark != null) {
        Map<String, Object> s = (Map<String, Object>) spark.get(w);
        Map<String, Object> t = (Map<String, Object>) s.get("timings");
        out.printf(
            "%s, olmo-ppl score on %s: %.1f scored tokens/s = %.2f x in process (best of %s end-to-end"
                + " runs %s against the best of the in-process runs %s, one after each); %.1f of its"
                + " %.1f s went to starting (setup, input count) and summarizing the job%n",
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
            s.get("seconds"));
      }
    }
    Map<String, Object> mem = (Map<String, Object>) r.get("memory");
    out.printf(
        "memory: resident %,d bytes before the model, peak %,d while loading and scoring in process:"
            + " %,d bytes = %.2f x (1.5 x unique weight bytes + %,d bytes of activations per CPU"
            + " pass)%s%n",
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
}
