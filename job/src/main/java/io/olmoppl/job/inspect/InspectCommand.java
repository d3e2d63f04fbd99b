package io.olmoppl.job.inspect;

import io.olmoppl.checkpoint.AttentionKind;
import io.olmoppl.checkpoint.Checkpoint;
import io.olmoppl.checkpoint.OlmoConfig;
import io.olmoppl.checkpoint.TyingRule;
import io.olmoppl.checkpoint.WeightScan;
import io.olmoppl.job.cli.Args;
import io.olmoppl.job.cli.Command;
import io.olmoppl.job.cli.UsageException;
import io.olmoppl.job.report.ScoreSummary;
import io.olmoppl.job.report.Summary;
import io.olmoppl.job.report.SummaryJson;
import io.olmoppl.model.MemoryBudget;
import io.olmoppl.scoring.ScoringOptions;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * {@code olmo-ppl inspect}: layout, config, parameters, tied group, bytes per precision,
 * fingerprint.
 */
public final class InspectCommand implements Command {
  static final String HELP =
      String.join(
          "\n",
          "usage: olmo-ppl inspect --model DIR [--json] [--tying strict|config|checkpoint] [--scan-weights true|false]",
          "",
          "Validates the checkpoint as 'score' would and describes it: layout, config, parameter count (distinct",
          "tensors), the tied group (the roles the one matrix serves and every name the file stores it under), bytes",
          "per stored precision and the model fingerprint written to every scored row. Every loaded weight is checked",
          "for NaN and infinite values unless --scan-weights false. For a mixture of experts: experts per layer,",
          "experts per token and the parameters one token uses. The memory scoring needs: on CPU float32 weights and",
          "one pass's activations, on a GPU fp16 weights and a default batch's activations (estimates from above).");

  public InspectCommand() {}

  @Override
  public String name() {
    return "inspect";
  }

  @Override
  public String oneLine() {
    return "--model DIR [--json]                    describe a checkpoint (layout, tying, fingerprint)";
  }

  @Override
  public String help() {
    return HELP;
  }

  @Override
  public int run(String[] argv, PrintStream out, PrintStream err) {
    run(argv, out);
    return 0;
  }

  static void run(String[] argv, PrintStream out) {
    Args a =
        Args.parse("inspect", argv, 1, Set.of("model", "tying", "scan-weights"), Set.of("json"));
    TyingRule rule;
    try {
      rule = TyingRule.parse(a.get("tying", "strict"));
    } catch (IllegalArgumentException e) {
      throw new UsageException(e.getMessage());
    }
    Checkpoint c = Checkpoint.open(Path.of(a.require("model")), rule);
    String scan = a.get("scan-weights", "true");
    if (!scan.equals("true") && !scan.equals("false")) {
      throw new UsageException("--scan-weights must be true or false, not '" + scan + "'");
    }
    if (scan.equals("true")) {
      WeightScan.requireFinite(c, "--scan-weights false");
    }
    Map<String, Object> d = describe(c);
    if (a.flag("json")) {
      out.println(SummaryJson.json(d));
      return;
    }
    out.print(table(c, d));
  }

  /**
   * @return the description as an aligned two-column table (one row per fact, one per config key)
   */
  @SuppressWarnings("unchecked")
  static String table(Checkpoint c, Map<String, Object> d) {
    ScoreSummary.ModelInfo model = (ScoreSummary.ModelInfo) d.get("model");
    List<String[]> rows = new ArrayList<>();
    rows.add(new String[] {"model", c.dir().toString()});
    rows.add(new String[] {"fingerprint", c.fingerprint()});
    rows.add(new String[] {"layout", c.config().layout().id()});
    rows.add(
        new String[] {
          "parameters",
          String.format(
              Locale.ROOT,
              "%,d (distinct tensors: %d)",
              c.parameterCount(),
              c.loadedTensors().size())
        });
    if (model.experts() != null) {
      rows.add(new String[] {"experts", model.experts().toString()});
    }
    if (c.tying().tied()) {
      rows.add(new String[] {"tied group", c.tying().roles() + " <- " + c.tying().tiedGroup()});
    } else {
      rows.add(
          new String[] {
            "tied group",
            "none (untied: embedding "
                + c.tying().embeddingTensor()
                + ", output "
                + c.tying().outputTensor()
                + ")"
          });
    }
    if (model.ignoredTensor() != null) {
      rows.add(new String[] {"ignored", model.ignoredTensor()});
    }
    ((Map<String, Long>) d.get("bytes_per_dtype"))
        .forEach(
            (k, v) -> rows.add(new String[] {"bytes " + k, String.format(Locale.ROOT, "%,d", v)}));
    rows.add(
        new String[] {"bytes unique", String.format(Locale.ROOT, "%,d", c.uniqueWeightBytes())});
    ((Map<String, Map<String, Long>>) d.get("memory"))
        .forEach(
            (k, v) ->
                rows.add(
                    new String[] {
                      "memory " + k,
                      String.format(
                          Locale.ROOT,
                          "%s (weights %s + activations %s)",
                          gib(v.get("total_bytes")),
                          gib(v.get("weight_bytes")),
                          gib(v.get("activation_bytes")))
                    }));
    ((Map<String, Object>) d.get("config"))
        .forEach((k, v) -> rows.add(new String[] {"config " + k, String.valueOf(v)}));
    for (Object w : (List<Object>) d.get("warnings")) {
      rows.add(new String[] {"warning", String.valueOf(w)});
    }
    int width = rows.stream().mapToInt(r -> r[0].length()).max().orElse(0);
    StringBuilder b = new StringBuilder();
    for (String[] r : rows) {
      b.append(String.format(Locale.ROOT, "%-" + width + "s  %s%n", r[0], r[1]));
    }
    return b.toString();
  }

  static Map<String, Object> describe(Checkpoint c) {
    OlmoConfig k = c.config();
    Map<String, Object> d = new LinkedHashMap<>();
    d.put("model", Summary.model(c));
    Map<String, Object> cfg = new LinkedHashMap<>();
    cfg.put("hidden_size", k.hiddenSize());
    cfg.put("layers", k.numHiddenLayers());
    cfg.put("heads", k.numAttentionHeads());
    cfg.put("kv_heads", k.numKeyValueHeads());
    cfg.put("head_dim", k.headDim());
    cfg.put("intermediate_size", k.intermediateSize());
    cfg.put("vocab_rows", k.vocabRows());
    cfg.put("tokenizer_size", c.tokenizerSize());
    cfg.put("max_positions", k.maxPositionEmbeddings());
    cfg.put("rope_theta", k.ropeTheta());
    cfg.put("layer_kinds", k.attention().describeKinds());
    if (k.attention().count(AttentionKind.SLIDING) > 0) {
      cfg.put("sliding_window", k.attention().slidingWindow());
      cfg.put("rope_sliding", k.attention().slidingRope().describe());
    }
    cfg.put("rope_full", k.attention().fullRope().describe());
    cfg.put("clip_qkv", k.clipQkv());
    cfg.put(
        "norm",
        k.normType().name().toLowerCase()
            + " eps "
            + k.normEps()
            + (k.normAfter() ? " after sublayers" : " before sublayers")
            + (k.qkNorm() ? ", qk-norm" : ""));
    cfg.put(k.tyingKey(), k.tied());
    cfg.put("tying_key_present", k.tyingKeyPresent());
    cfg.put("eos_token_id", k.eosTokenId());
    cfg.put("bos_token_id", k.bosTokenId());
    d.put("config", cfg);
    d.put("parameters", c.parameterCount());
    Map<String, Long> bytes = new TreeMap<>();
    for (String n : c.loadedTensors()) {
      var info = c.tensors().get(n).info();
      bytes.merge(info.dtype().name(), info.byteLength(), Long::sum);
    }
    d.put("bytes_per_dtype", bytes);
    d.put("unique_weight_bytes", c.uniqueWeightBytes());
    d.put("memory", memory(c));
    d.put("stored_tensors", c.tensors().size());
    List<String> warnings = new ArrayList<>(k.warnings());
    warnings.addAll(c.tying().warnings());
    d.put("warnings", warnings);
    return d;
  }

  /**
   * @return the memory scoring needs, per device: on CPU float32 weights (every matrix widened) and
   *     one pass's activations; on a GPU fp16 weights ({@code --precision fp16}) and the
   *     activations of a default batch ({@link MemoryBudget}'s estimates, upper bounds)
   */
  static Map<String, Map<String, Long>> memory(Checkpoint c) {
    Map<String, Map<String, Long>> m = new LinkedHashMap<>();
    m.put("cpu fp32", memory(4 * c.parameterCount(), MemoryBudget.cpuActivationBytes(c.config())));
    m.put(
        "gpu fp16",
        memory(
            2 * c.parameterCount(),
            MemoryBudget.gpuActivationBytes(c.config(), ScoringOptions.BATCH_TOKENS_DEFAULT)));
    return m;
  }

  private static Map<String, Long> memory(long weights, long activations) {
    Map<String, Long> m = new LinkedHashMap<>();
    m.put("total_bytes", weights + activations);
    m.put("weight_bytes", weights);
    m.put("activation_bytes", activations);
    return m;
  }

  private static String gib(long bytes) {
    return bytes >= 1L << 30
        ? String.format(Locale.ROOT, "%.2f GiB", bytes / (double) (1L << 30))
        : String.format(Locale.ROOT, "%.1f MiB", bytes / (double) (1L << 20));
  }
}
