package io.olmoppl.job.tools;

import ai.djl.Device;
import ai.djl.engine.Engine;
import io.olmoppl.DjlSettings;
import io.olmoppl.checkpoint.Checkpoint;
import io.olmoppl.checkpoint.TyingRule;
import io.olmoppl.job.Args;
import io.olmoppl.model.DeviceMapping;
import io.olmoppl.model.OlmoModel;
import io.olmoppl.model.Precision;
import io.olmoppl.scoring.DocumentScore;
import io.olmoppl.scoring.PerplexityScorer;
import io.olmoppl.scoring.ScoringOptions;
import io.olmoppl.tokenizer.OlmoTokenizer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The GPU check ({@code scripts/gpu-check}): on a machine with an NVIDIA GPU, prints what the engine sees, how Spark
 * GPU addresses map to CUDA devices (with and without a narrowed {@code CUDA_VISIBLE_DEVICES}), and compares scores
 * on the device in fp32 and fp16 against fp32 on CPU for a checkpoint, with throughput. With {@code --device cpu} it
 * runs the same comparison on CPU (a machine without a GPU). Exit code 1 when a comparison exceeds its bound.
 *
 * <p>Bounds: fp32 on any device must match CPU fp32 within 1e-4 per token; fp16 matmuls within 0.05 nats per token
 * and 1e-2 in mean NLL (fp16 has an 11-bit mantissa; norms, softmax and the residual stream stay fp32).
 */
public final class GpuCheck {
  private GpuCheck() {}

  public static void main(String[] argv) throws Exception {
    DjlSettings.configure();
    Args a = Args.parse("gpu-check", argv, 0, java.util.Set.of("model", "device", "repeat"), java.util.Set.of());
    Path model = Path.of(a.get("model", "udf/src/test/resources/refcases/p04_olmo_untied_gqa_f16"));
    String mode = a.get("device", "gpu");
    int repeat = a.integer("repeat", 3);
    Engine engine = OlmoModel.engine();
    int gpus = engine.getGpuCount();
    String cvd = System.getenv("CUDA_VISIBLE_DEVICES");
    System.out.printf("engine %s %s, CUDA devices visible: %d, CUDA_VISIBLE_DEVICES=%s%n", engine.getEngineName(),
        engine.getVersion(), gpus, cvd);
    for (int i = 0; i < gpus; i++) {
      System.out.printf("  spark address %d -> %s (as assigned) ; with CUDA_VISIBLE_DEVICES=%d -> %s%n", i,
          DeviceMapping.choose("gpu", List.of(String.valueOf(i)), true, cvd, gpus), i,
          DeviceMapping.choose("gpu", List.of(String.valueOf(i)), true, String.valueOf(i), 1));
    }
    Device device = DeviceMapping.choose(mode, List.of(), false, cvd, gpus);
    System.out.println("scoring device: " + device);
    Checkpoint ckpt = Checkpoint.open(model, TyingRule.STRICT);
    List<String> texts = texts();
    boolean ok = true;
    try (OlmoTokenizer tok = OlmoTokenizer.load(ckpt.tokenizerJson())) {
      Run ref = run(ckpt, tok, texts, Device.cpu(), Precision.FP32, repeat);
      System.out.printf("cpu  fp32: %d tokens, mean NLL %.6f, %.0f tokens/s%n", ref.tokens, ref.meanNll(),
          ref.tokensPerSecond);
      for (Precision p : List.of(Precision.FP32, Precision.FP16)) {
        Run r = run(ckpt, tok, texts, device, p, repeat);
        double maxTok = 0;
        for (int d = 0; d < texts.size(); d++) {
          double[] x = ref.scores.get(d).tokenLogprobs();
          double[] y = r.scores.get(d).tokenLogprobs();
          for (int k = 0; k < x.length; k++) {
            maxTok = Math.max(maxTok, Math.abs(x[k] - y[k]));
          }
        }
        double dMean = Math.abs(ref.meanNll() - r.meanNll());
        boolean pass = p == Precision.FP32 ? maxTok <= 1e-4 : maxTok <= 0.05 && dMean <= 1e-2;
        ok &= pass;
        System.out.printf("%s %s: max |d log p| %.3g, |d mean NLL| %.3g, %.0f tokens/s (%.2fx cpu fp32) %s%n",
            device.getDeviceType(), p.id(), maxTok, dMean, r.tokensPerSecond, r.tokensPerSecond / ref.tokensPerSecond,
            pass ? "PASS" : "FAIL");
      }
    }
    System.exit(ok ? 0 : 1);
  }

  private record Run(List<DocumentScore> scores, long tokens, double nll, double tokensPerSecond) {
    double meanNll() {
      return nll / tokens;
    }
  }

  private static Run run(Checkpoint ckpt, OlmoTokenizer tok, List<String> texts, Device device, Precision p,
      int repeat) {
    try (OlmoModel m = OlmoModel.load(ckpt, ckpt, device, p)) {
      PerplexityScorer s = new PerplexityScorer(m, tok, ScoringOptions.defaults().withTokenLogprobs(true)
          .withPrecision(p));
      List<DocumentScore> scores = s.score(texts); // warm-up, and the result compared
      long t0 = System.nanoTime();
      for (int i = 0; i < repeat; i++) {
        s.score(texts);
      }
      double secs = (System.nanoTime() - t0) / 1e9;
      long tokens = scores.stream().mapToLong(DocumentScore::tokens).sum();
      double nll = scores.stream().mapToDouble(DocumentScore::nll).sum();
      return new Run(scores, tokens, nll, tokens * (double) repeat / secs);
    }
  }

  private static List<String> texts() {
    List<String> t = new ArrayList<>();
    String base = "Perplexity measures how well a language model predicts a text; lower is better. ";
    for (int i = 0; i < 16; i++) {
      t.add(base.repeat(1 + i % 5) + " Document " + i + " ends here.");
    }
    return t;
  }
}
