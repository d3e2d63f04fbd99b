package io.olmoppl.job;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.count;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.octet_length;
import static org.apache.spark.sql.functions.size;
import static org.apache.spark.sql.functions.split;
import static org.apache.spark.sql.functions.sum;
import static org.apache.spark.sql.functions.when;

import com.google.gson.GsonBuilder;
import io.olmoppl.checkpoint.Checkpoint;
import io.olmoppl.scoring.Perplexity;
import io.olmoppl.scoring.Status;
import io.olmoppl.spark.OlmoPerplexity;
import io.olmoppl.spark.ScoreColumns;
import io.olmoppl.spark.ScoreMetrics;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;

/**
 * The run summary: corpus micro-averages over documents with status ok ({@code exp(Σnll /
 * Σtokens)}, {@code Σnll / (Σbytes ln 2)}, word perplexity with lm-eval's word count), the model
 * and the options used.
 */
final class Summary {
  private Summary() {}

  static Map<String, Object> build(
      Dataset<Row> scored,
      OlmoPerplexity.Plan plan,
      ScoreCommand.Request req,
      ScoreMetrics metrics,
      double secondsSoFar) {
    long t0 = System.nanoTime();
    Row t = totals(scored, req.textColumn());
    long docs = t.getLong(0);
    long tokens = t.isNullAt(1) ? 0 : t.getLong(1);
    double nll = t.isNullAt(2) ? 0 : t.getDouble(2);
    long bytes = t.isNullAt(3) ? 0 : t.getLong(3);
    long words = t.isNullAt(4) ? 0 : t.getLong(4);
    long windows = t.isNullAt(5) ? 0 : t.getLong(5);
    Map<String, Object> s = new LinkedHashMap<>();
    s.put("documents", docs);
    s.put("status", statusCounts(scored));
    s.put("tokens", tokens);
    s.put("windows", windows);
    s.put("nll", nll);
    s.put("bytes", bytes);
    s.put("words", words);
    s.put("perplexity", Perplexity.perplexity(nll, tokens));
    s.put("bits_per_byte", Perplexity.bitsPerByte(nll, tokens, bytes));
    s.put("word_perplexity", tokens == 0 ? null : Perplexity.perplexity(nll, words));
    double seconds =
        secondsSoFar + (System.nanoTime() - t0) / 1e9; // reading, scoring, writing + totals
    s.put("seconds", seconds);
    s.put("tokens_per_second", seconds > 0 ? tokens / seconds : null);
    s.put("model", model(plan.checkpoint()));
    Map<String, Object> opts = req.options().describe(plan.window(), plan.stride(), plan.prefix());
    opts.put("text_column", req.textColumn());
    opts.put("input_format", req.inputFormat());
    opts.put("output_format", req.outputFormat());
    s.put("options", opts);
    s.put("input", req.input());
    s.put("output", req.output());
    s.put("distribution", plan.spec().distribution());
    s.put("model_loads", metrics.modelLoads());
    s.put("unique_weight_bytes", plan.checkpoint().uniqueWeightBytes());
    s.put("broadcast_bytes", plan.broadcastBytes());
    s.put("executors", executors(metrics));
    return s;
  }

  /**
   * @return the model description shared with {@code inspect}
   */
  static Map<String, Object> model(Checkpoint c) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("fingerprint", c.fingerprint());
    m.put("path", c.dir().toAbsolutePath().toString());
    m.put("layout", c.config().layout().id());
    m.put("tied", c.tying().tied());
    List<Object> groups = new ArrayList<>();
    if (c.tying().tied()) {
      Map<String, Object> g = new LinkedHashMap<>();
      g.put("roles", c.tying().roles());
      g.put("tensors", c.tying().tiedGroup());
      groups.add(g);
    }
    m.put("tied_groups", groups);
    m.put("output_tensor", c.tying().outputTensor());
    if (c.tying().ignoredTensor() != null) {
      m.put("ignored_tensor", c.tying().ignoredTensor());
    }
    m.put("parameters", c.parameterCount());
    return m;
  }

  private static List<Object> executors(ScoreMetrics metrics) {
    Map<String, Map<String, Object>> byExec = new LinkedHashMap<>();
    for (String line : metrics.loads()) {
      String[] f = line.split("\t");
      Map<String, Object> e =
          byExec.computeIfAbsent(
              f[0] + "/" + f[2],
              k -> {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("executor_id", f[0]);
                m.put("host", f[1]);
                m.put("pid", Long.parseLong(f[2]));
                m.put("loads", 0L);
                m.put("load_seconds", 0.0);
                m.put("bytes_received", 0L);
                return m;
              });
      e.put("loads", (Long) e.get("loads") + 1);
      e.put("load_seconds", (Double) e.get("load_seconds") + Double.parseDouble(f[3]));
      e.put("bytes_received", (Long) e.get("bytes_received") + Long.parseLong(f[4]));
    }
    return new ArrayList<>(byExec.values());
  }

  static String json(Map<String, Object> s) {
    return new GsonBuilder()
        .setPrettyPrinting()
        .serializeNulls()
        .serializeSpecialFloatingPointValues()
        .create()
        .toJson(s);
  }

  static void write(FileSystem fs, Path path, Map<String, Object> s) throws IOException {
    try (OutputStream o = fs.create(path, false)) {
      o.write((json(s) + "\n").getBytes(StandardCharsets.UTF_8));
    }
  }

  static void print(Map<String, Object> s, PrintStream out) {
    @SuppressWarnings("unchecked")
    Map<String, Object> model = (Map<String, Object>) s.get("model");
    out.printf(
        "olmo-ppl: scored %d documents (%s), %d tokens in %.1f s (%.0f tokens/s)%n",
        s.get("documents"),
        s.get("status"),
        s.get("tokens"),
        ((Number) s.get("seconds")).doubleValue(),
        s.get("tokens_per_second") == null
            ? 0.0
            : ((Number) s.get("tokens_per_second")).doubleValue());
    out.printf("  perplexity      %s%n", fmt(s.get("perplexity")));
    out.printf("  bits_per_byte   %s%n", fmt(s.get("bits_per_byte")));
    out.printf("  word_perplexity %s%n", fmt(s.get("word_perplexity")));
    out.printf(
        "  model           %s (%s, %s)%n",
        model.get("fingerprint"),
        model.get("layout"),
        Boolean.TRUE.equals(model.get("tied"))
            ? "tied: one tensor stored as " + tiedNames(model)
            : "untied");
    out.printf("  output          %s (summary in _summary.json)%n", s.get("output"));
  }

  @SuppressWarnings("unchecked")
  private static Object tiedNames(Map<String, Object> model) {
    return ((Map<String, Object>) ((List<Object>) model.get("tied_groups")).get(0)).get("tensors");
  }

  private static String fmt(Object v) {
    return v == null ? "n/a" : String.format("%.6g", (Double) v);
  }

  /** Counts for the summary, from the scored rows. */
  static Row totals(Dataset<Row> scored, String textColumn) {
    var ok = col(ScoreColumns.STATUS).equalTo(lit(Status.OK.id()));
    return scored
        .agg(
            count(lit(1)),
            sum(when(ok, col(ScoreColumns.TOKENS)).otherwise(0)),
            sum(when(ok, col(ScoreColumns.NLL)).otherwise(0.0)),
            sum(when(ok, octet_length(col(textColumn))).otherwise(0)),
            // words as lm-eval counts them: len(re.split(r"\s+", doc)), Unicode whitespace, empty
            // edge fields kept
            sum(when(ok, size(split(col(textColumn), "(?U)\\s+", -1))).otherwise(0)),
            sum(when(ok, col(ScoreColumns.WINDOWS)).otherwise(0)))
        .first();
  }

  /**
   * @return documents per status
   */
  static Map<String, Long> statusCounts(Dataset<Row> scored) {
    Map<String, Long> m = new LinkedHashMap<>();
    for (Row r :
        scored.groupBy(ScoreColumns.STATUS).count().orderBy(ScoreColumns.STATUS).collectAsList()) {
      m.put(r.getString(0), r.getLong(1));
    }
    return m;
  }
}
