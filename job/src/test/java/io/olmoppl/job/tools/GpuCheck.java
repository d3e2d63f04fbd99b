package io.olmoppl.job.tools;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.util.cuda.CudaUtils;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import io.olmoppl.batching.ScoringEngine;
import io.olmoppl.checkpoint.Checkpoint;
import io.olmoppl.checkpoint.TyingRule;
import io.olmoppl.job.cli.Args;
import io.olmoppl.model.OlmoModel;
import io.olmoppl.model.Precision;
import io.olmoppl.runtime.DeviceMapping;
import io.olmoppl.runtime.DjlSettings;
import io.olmoppl.runtime.TorchEngine;
import io.olmoppl.scoring.DocumentScore;
import io.olmoppl.scoring.PerplexityScorer;
import io.olmoppl.scoring.ScoringOptions;
import io.olmoppl.testing.Refcases;
import io.olmoppl.testing.Refcases.Expected;
import io.olmoppl.tokenizer.OlmoTokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * The GPU checks of the GPU kit ({@code scripts/gpu-kit}; README "GPUs"), without Spark. Two
 * phases, each its own JVM:
 *
 * <ul>
 *   <li>{@code refcases}: (1) the engine sees the GPU and Spark's address mapping picks it; (2)
 *       every reference case in {@code --refcases}, scored in fp32 on the device and on CPU,
 *       matches its expected values (per token |Δ log p| ≤ 1e-4, |Δ mean NLL| ≤ 1e-5); (3) fp16
 *       against fp32 on the device, |Δ mean NLL| ≤ 1e-3 per case. Writes the device's fp32
 *       log-probs to {@code --ours} for the transformers reference (check 4).
 *   <li>{@code throughput}: (5) an OLMo-1B-shaped random checkpoint made with {@code
 *       make-checkpoint}, scored at window 2048 in fp16: tokens/s, model FLOPs per token, MFU
 *       against {@code --peak-tflops}; (6) device memory against the weight bytes. Writes the
 *       shapes and figures to {@code --bench} for the transformers side.
 * </ul>
 *
 * <p>With {@code --device cpu} the same checks run on CPU (the kit's self-test). Exit code 1 when a
 * bound fails. It lives with the tests because it reads the reference cases through {@link
 * Refcases}.
 */
public final class GpuCheck {
  static final double FP16_MEAN_NLL_TOL = 1e-3;

  private GpuCheck() {}

  public static void main(String[] argv) throws Exception {
    DjlSettings.configure();
    String phase = argv.length > 0 ? argv[0] : "";
    Args a =
        Args.parse(
            "gpu-check",
            argv,
            1,
            Set.of(
                "device",
                "refcases",
                "ours",
                "checkpoint",
                "bench",
                "shape",
                "windows",
                "batch",
                "peak-tflops"),
            Set.of("no-engine"));
    boolean gpu = a.get("device", "gpu").equals("gpu");
    boolean ok =
        switch (phase) {
          case "refcases" ->
              refcases(gpu, Path.of(a.require("refcases")), Path.of(a.require("ours")));
          case "throughput" ->
              throughput(
                  gpu,
                  Path.of(a.require("checkpoint")),
                  Path.of(a.require("bench")),
                  a.get("shape", "1b"),
                  a.integer("windows", 256),
                  a.integer("batch", 8),
                  Double.parseDouble(a.get("peak-tflops", "989")),
                  a.flag("no-engine"));
          default ->
              throw new IllegalArgumentException("usage: GpuCheck refcases|throughput [options]");
        };
    System.out.flush();
    System.exit(ok ? 0 : 1);
  }

  // ---------------------------------------------------------------- checks 1-3

  private static boolean refcases(boolean gpu, Path root, Path ours) throws Exception {
    System.setProperty("olmoppl.refcases", root.toString());
    Device device = check1(gpu);
    if (device == null) {
      return false;
    }
    System.out.println(
        "check 2: reference cases in fp32 (TF32: libtorch's default, off; DJL does not change it)");
    boolean ok = true;
    JsonObject oursJson = new JsonObject();
    oursJson.addProperty("device", device.toString());
    JsonObject casesJson = new JsonObject();
    oursJson.add("cases", casesJson);
    Map<String, List<DocumentScore>> fp32 = new LinkedHashMap<>();
    List<Device> devices = gpu ? List.of(device, Device.cpu()) : List.of(device);
    for (String name : Refcases.names()) {
      Checkpoint ckpt = Checkpoint.open(Refcases.dir(name), TyingRule.STRICT);
      List<Expected> main = mainGroup(name);
      try (OlmoTokenizer tok = OlmoTokenizer.load(ckpt.tokenizerJson())) {
        for (Expected e : main) {
          if (!Arrays.equals(e.ids(), tok.encode(e.text()))) {
            System.out.printf("  %s/%s: token ids differ from the reference FAIL%n", name, e.key());
            ok = false;
          }
        }
        for (Device d : devices) {
          double[] worst = new double[2];
          List<String> errors = new ArrayList<>();
          try (OlmoModel m = OlmoModel.load(ckpt, ckpt, d, Precision.FP32);
              ScoringEngine engine = new ScoringEngine(m, tok)) {
            for (List<Expected> group : Refcases.groups(name)) {
              List<DocumentScore> got =
                  engine.score(
                      group.stream().map(Expected::text).toList(),
                      engine.scorer(Refcases.options(group.get(0))));
              compare(group, got, worst, errors);
              if (d == device && sameGroup(group.get(0), main.get(0))) {
                fp32.put(name, got);
                casesJson.add(name, oursCase(main, got));
              }
            }
          }
          boolean pass =
              errors.isEmpty()
                  && worst[0] <= Refcases.TOKEN_TOL
                  && worst[1] <= Refcases.MEAN_NLL_TOL;
          ok &= pass;
          System.out.printf(
              "  %-34s %-6s max |d log p| %.2e, max |d mean NLL| %.2e %s%n",
              name, label(d), worst[0], worst[1], pass ? "PASS" : "FAIL " + errors);
        }
      }
    }
    Files.writeString(ours, new GsonBuilder().create().toJson(oursJson));
    System.out.println(
        "check 3: fp16 against fp32 on " + label(device) + " (|d mean NLL| <= 1e-3 per case)");
    for (String name : Refcases.names()) {
      Checkpoint ckpt = Checkpoint.open(Refcases.dir(name), TyingRule.STRICT);
      List<Expected> main = mainGroup(name);
      List<DocumentScore> half;
      try (OlmoTokenizer tok = OlmoTokenizer.load(ckpt.tokenizerJson());
          OlmoModel m = OlmoModel.load(ckpt, ckpt, device, Precision.FP16);
          ScoringEngine engine = new ScoringEngine(m, tok)) {
        half =
            engine.score(
                main.stream().map(Expected::text).toList(),
                engine.scorer(Refcases.options(main.get(0)).withPrecision(Precision.FP16)));
      }
      List<DocumentScore> full = fp32.get(name);
      double nll32 = 0;
      double nll16 = 0;
      long tokens = 0;
      double worstDoc = 0;
      double worstTok = 0;
      String where = "-";
      for (int i = 0; i < main.size(); i++) {
        DocumentScore x = full.get(i);
        DocumentScore y = half.get(i);
        if (x.tokens() == 0) {
          continue;
        }
        nll32 += x.nll();
        nll16 += y.nll();
        tokens += x.tokens();
        worstDoc = Math.max(worstDoc, Math.abs(x.nll() - y.nll()) / x.tokens());
        for (int k = 0; k < x.tokenLogprobs().length; k++) {
          double dt = Math.abs(x.tokenLogprobs()[k] - y.tokenLogprobs()[k]);
          if (!(dt <= worstTok)) {
            worstTok = dt;
            where =
                String.format(
                    "%s token %d: %.5f vs %.5f",
                    main.get(i).key(), k, x.tokenLogprobs()[k], y.tokenLogprobs()[k]);
          }
        }
      }
      double dMean = Math.abs(nll32 - nll16) / tokens;
      boolean pass = dMean <= FP16_MEAN_NLL_TOL;
      ok &= pass;
      System.out.printf(
          "  %-34s |d mean NLL| %.2e (worst document %.2e), worst token |d log p| %.2e (%s) %s%n",
          name, dMean, worstDoc, worstTok, where, pass ? "PASS" : "FAIL");
    }
    return ok;
  }

  /**
   * Check 1: what the engine sees, and the device Spark's address mapping picks; null when the
   * check fails.
   */
  private static Device check1(boolean gpu) {
    Engine engine = TorchEngine.get();
    int gpus = engine.getGpuCount();
    String cvd = System.getenv("CUDA_VISIBLE_DEVICES");
    System.out.printf(
        "check 1: engine %s %s, libtorch %s, JNI %s; CUDA devices: %d%s%n",
        engine.getEngineName(),
        engine.getVersion(),
        ai.djl.pytorch.jni.LibUtils.getLibtorchPath(),
        System.getenv("OLMO_PPL_KIT_JNI"),
        gpus,
        gpus > 0
            ? ", compute capability "
                + CudaUtils.getComputeCapability(0)
                + ", "
                + CudaUtils.getGpuMemory(Device.gpu(0)).getMax() / (1L << 20)
                + " MiB"
            : "");
    // a task that Spark gave GPU address 0 (spark.task.resource.gpu.amount set), as the executors
    // decide
    Device picked = DeviceMapping.choose("auto", List.of("0"), true, cvd, gpus);
    Device expected = gpu ? Device.gpu(0) : Device.cpu();
    boolean pass = picked.equals(expected) && (gpus > 0) == gpu;
    if (pass) {
      try (NDManager m = TorchEngine.get().newBaseManager(picked)) {
        NDArray x = m.arange(1f, 5f);
        pass = x.matMul(x).getFloat() == 30f; // runs on the picked device
      }
    }
    System.out.printf(
        "  Spark GPU address 0 (CUDA_VISIBLE_DEVICES=%s) -> %s %s%n",
        cvd, picked, pass ? "PASS" : "FAIL (expected " + expected + ")");
    return pass ? picked : null;
  }

  /**
   * @return the results at the case's context with stride = window and the EOS prefix: the one
   *     group of 3 and 4
   */
  private static List<Expected> mainGroup(String name) {
    return Refcases.groups(name).stream()
        .filter(g -> g.get(0).prefix().equals("eos") && g.get(0).window() == g.get(0).stride())
        .findFirst()
        .orElseThrow();
  }

  private static boolean sameGroup(Expected a, Expected b) {
    return a.window() == b.window() && a.stride() == b.stride() && a.prefix().equals(b.prefix());
  }

  private static void compare(
      List<Expected> group, List<DocumentScore> got, double[] worst, List<String> errors) {
    for (int i = 0; i < group.size(); i++) {
      Expected e = group.get(i);
      DocumentScore s = got.get(i);
      String where = e.key() + " L=" + e.window() + " S=" + e.stride() + " " + e.prefix();
      if (e.nScored() != s.tokens() || e.windows() != s.windows()) {
        errors.add(where + ": counts");
        continue;
      }
      if (e.tokenLogprobs() != null) {
        for (int k = 0; k < e.tokenLogprobs().length; k++) {
          worst[0] = max(worst[0], Math.abs(e.tokenLogprobs()[k] - s.tokenLogprobs()[k]));
        }
      }
      if (e.nScored() > 0) {
        worst[1] = max(worst[1], Math.abs(s.nll() / s.tokens() - e.meanNll()));
      }
    }
  }

  /** NaN-propagating max: a non-finite difference fails the bound. */
  private static double max(double a, double b) {
    return a >= b || Double.isNaN(a) ? a : b;
  }

  private static JsonObject oursCase(List<Expected> group, List<DocumentScore> got) {
    JsonObject c = new JsonObject();
    c.addProperty("window", group.get(0).window());
    JsonObject texts = new JsonObject();
    for (int i = 0; i < group.size(); i++) {
      JsonObject t = new JsonObject();
      JsonArray lp = new JsonArray();
      for (double v : got.get(i).tokenLogprobs()) {
        lp.add(v);
      }
      t.add("token_logprobs", lp);
      t.addProperty("nll", got.get(i).nll());
      texts.add(group.get(i).key(), t);
    }
    c.add("texts", texts);
    return c;
  }

  private static String label(Device d) {
    return d.isGpu() ? "gpu" + d.getDeviceId() : "cpu";
  }

  // ---------------------------------------------------------------- checks 5-6

  private static boolean throughput(
      boolean gpu,
      Path dir,
      Path bench,
      String shape,
      int windows,
      int batch,
      double peakTflops,
      boolean noEngine)
      throws Exception {
    boolean big = shape.equals("1b");
    int window = big ? 2048 : 256;
    Precision precision =
        gpu ? Precision.FP16 : Precision.FP32; // fp16 matmuls are ~200x slower on CPU
    if (!Files.exists(dir.resolve("model.safetensors"))) {
      long t0 = System.nanoTime();
      MakeCheckpointCommand.run(
          new String[] {
            "make-checkpoint",
            "--layout",
            "olmo",
            "--out",
            dir.toString(),
            "--hidden",
            big ? "2048" : "128",
            "--layers",
            big ? "16" : "2",
            "--heads",
            big ? "16" : "4",
            "--intermediate",
            big ? "8192" : "512",
            "--max-positions",
            String.valueOf(window),
            "--tied",
            "--dtype",
            gpu ? "F16" : "F32"
          },
          System.out);
      System.out.printf("make-checkpoint %s: %.1f s%n", dir, (System.nanoTime() - t0) / 1e9);
    }
    Checkpoint ckpt = Checkpoint.open(dir, TyingRule.STRICT);
    Device device = gpu ? Device.gpu(0) : Device.cpu();
    double flops = ModelFlops.perToken(ckpt.config(), window);
    JsonObject j = new JsonObject();
    j.addProperty("checkpoint", dir.toAbsolutePath().toString());
    j.addProperty("precision", precision.id());
    j.addProperty("window", window);
    j.addProperty("batch", batch);
    j.addProperty("windows", windows);
    j.addProperty("flops_per_token", flops);
    j.addProperty("peak_tflops", peakTflops);
    Files.writeString(bench, new GsonBuilder().setPrettyPrinting().create().toJson(j));
    if (noEngine) { // the transformers side still runs on this checkpoint
      return true;
    }
    long base;
    try (NDManager m = TorchEngine.get().newBaseManager(device)) {
      m.ones(new ai.djl.ndarray.types.Shape(1))
          .toFloatArray(); // the CUDA context exists from here on
      base = used(device);
    }
    SplittableRandom rnd = new SplittableRandom(7);
    List<long[]> docs = new ArrayList<>();
    for (int i = 0; i < windows; i++) {
      docs.add(
          rnd.longs(window, 0, 50280)
              .toArray()); // [EOS] + window tokens: exactly one full window each
    }
    long[] bytes = new long[batch];
    Arrays.fill(bytes, 4L * window);
    long weightBytes = 0;
    long afterLoad;
    long peak;
    long tokens = 0;
    int finite = 0;
    double secs;
    try (OlmoModel m = OlmoModel.load(ckpt, ckpt, device, precision);
        OlmoTokenizer tok = OlmoTokenizer.load(ckpt.tokenizerJson());
        ScoringEngine engine = new ScoringEngine(m, tok)) {
      for (NDArray w : m.weightsManager().getManagedArrays()) {
        weightBytes += w.size() * w.getDataType().getNumOfBytes();
      }
      afterLoad = used(device);
      peak = afterLoad;
      PerplexityScorer s =
          engine.scorer(
              ScoringOptions.defaults()
                  .withWindow(window, window)
                  .withBatchTokens(batch * window)
                  .withPrecision(precision));
      engine.scoreIds(docs.subList(0, batch), bytes, s); // warm-up
      long t0 = System.nanoTime();
      for (int i = 0; i + batch <= windows; i += batch) {
        for (DocumentScore d : engine.scoreIds(docs.subList(i, i + batch), bytes, s)) {
          tokens += d.tokens();
          finite += Double.isFinite(d.nll()) ? 1 : 0;
        }
        peak = Math.max(peak, used(device));
      }
      secs = (System.nanoTime() - t0) / 1e9;
    }
    double tps = tokens / secs;
    boolean ok = finite == tokens / window;
    System.out.printf(
        "check 5: ours, %s, %,d parameters, window %d, batch %d x %d, %s: %,d tokens in %.2f s ="
            + " %,.0f tokens/s; %.3f GFLOP/token -> %.1f TFLOP/s = MFU %.1f%% of %.0f TFLOP/s; finite scores %d/%d %s%n",
        dir.getFileName(),
        ckpt.parameterCount(),
        window,
        batch,
        window,
        precision.id(),
        tokens,
        secs,
        tps,
        flops / 1e9,
        tps * flops / 1e12,
        100 * tps * flops / (peakTflops * 1e12),
        peakTflops,
        finite,
        tokens / window,
        ok ? "PASS" : "FAIL");
    if (gpu) {
      System.out.printf(
          "check 6: ours, weights %.2f GiB on the device; device memory above the CUDA context: %.2f"
              + " GiB after loading, %.2f GiB peak = %.2f x the weight bytes%n",
          gib(weightBytes),
          gib(afterLoad - base),
          gib(peak - base),
          (peak - base) / (double) weightBytes);
    } else {
      System.out.printf(
          "check 6: ours, weights %.2f GiB (device memory is measured on GPUs only)%n",
          gib(weightBytes));
    }
    j.addProperty("ours_tokens_per_s", tps);
    j.addProperty("ours_weight_bytes", weightBytes);
    j.addProperty("ours_peak_bytes", gpu ? peak - base : -1);
    Files.writeString(bench, new GsonBuilder().setPrettyPrinting().create().toJson(j));
    return ok;
  }

  /**
   * @return bytes in use on the device (cudaMemGetInfo: every process, the caching allocator's
   *     reserve included)
   */
  private static long used(Device d) {
    return d.isGpu() ? CudaUtils.getGpuMemory(d).getCommitted() : 0;
  }

  private static double gib(long b) {
    return b / (double) (1L << 30);
  }
}
