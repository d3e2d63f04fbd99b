package io.olmoppl.job.report;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.count;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.octet_length;
import static org.apache.spark.sql.functions.size;
import static org.apache.spark.sql.functions.split;
import static org.apache.spark.sql.functions.sum;
import static org.apache.spark.sql.functions.when;

import io.olmoppl.checkpoint.Checkpoint;
import io.olmoppl.checkpoint.Experts;
import io.olmoppl.scoring.Perplexity;
import io.olmoppl.scoring.ScoringOptions;
import io.olmoppl.scoring.Status;
import io.olmoppl.spark.OlmoPerplexity;
import io.olmoppl.spark.ScoreColumns;
import io.olmoppl.spark.ScoreMetrics;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;

/**
 * Builds the corpus part of the run summary ({@link ScoreSummary.Corpus}) from the scored rows and
 * prints the summary on the console.
 */
public final class Summary {
  private Summary() {}

  /**
   * What the run read and wrote, for the summary.
   *
   * @param options the scoring options
   */
  public record Run(
      String input,
      String output,
      String inputFormat,
      String outputFormat,
      String textColumn,
      ScoringOptions options) {}

  /**
   * @param scored the scored rows (counted again only for statuses outside {@link Status})
   * @param t the row of {@link #totals} over {@code scored}
   */
  public static ScoreSummary.Corpus build(
      Dataset<Row> scored,
      Row t,
      OlmoPerplexity.Plan plan,
      Run run,
      ScoreMetrics metrics,
      double secondsSoFar) {
    long t0 = System.nanoTime();
    long docs = t.getLong(0);
    long tokens = t.isNullAt(1) ? 0 : t.getLong(1);
    double nll = t.isNullAt(2) ? 0 : t.getDouble(2);
    long bytes = t.isNullAt(3) ? 0 : t.getLong(3);
    long words = t.isNullAt(4) ? 0 : t.getLong(4);
    long windows = t.isNullAt(5) ? 0 : t.getLong(5);
    Map<String, Long> status = statusCounts(scored, t, STATUS_FROM, docs);
    double seconds =
        secondsSoFar + (System.nanoTime() - t0) / 1e9; // reading, scoring, writing + totals
    Map<String, Object> opts = run.options().describe(plan.window(), plan.stride(), plan.prefix());
    opts.put("text_column", run.textColumn());
    opts.put("input_format", run.inputFormat());
    opts.put("output_format", run.outputFormat());
    return new ScoreSummary.Corpus(
        docs,
        status,
        tokens,
        windows,
        nll,
        bytes,
        words,
        Perplexity.perplexity(nll, tokens),
        Perplexity.bitsPerByte(nll, tokens, bytes),
        tokens == 0 ? null : Perplexity.perplexity(nll, words),
        seconds,
        seconds > 0 ? tokens / seconds : null,
        model(plan.checkpoint()),
        opts,
        run.input(),
        run.output(),
        plan.spec().distribution(),
        metrics.modelLoads(),
        plan.checkpoint().uniqueWeightBytes(),
        plan.broadcastBytes(),
        executors(metrics));
  }

  /**
   * @return the model description shared with {@code inspect}
   */
  public static ScoreSummary.ModelInfo model(Checkpoint c) {
    List<ScoreSummary.TiedGroup> groups =
        c.tying().tied()
            ? List.of(new ScoreSummary.TiedGroup(c.tying().roles(), c.tying().tiedGroup()))
            : List.of();
    return new ScoreSummary.ModelInfo(
        c.fingerprint(),
        c.dir().toAbsolutePath().toString(),
        c.config().layout().id(),
        c.tying().tied(),
        groups,
        c.tying().outputTensor(),
        c.tying().ignoredTensor(),
        c.parameterCount(),
        experts(c));
  }

  /**
   * @return the model's experts, or null for a dense model
   */
  private static ScoreSummary.ExpertsInfo experts(Checkpoint c) {
    Experts e = c.config().experts();
    return e == null
        ? null
        : new ScoreSummary.ExpertsInfo(
            e.count(),
            e.topK(),
            e.normTopkProb(),
            Experts.activeParameters(c.config(), c.parameterCount()));
  }

  /** Model loads per executor JVM, in the order of their first load. */
  private static List<ScoreSummary.ExecutorLoads> executors(ScoreMetrics metrics) {
    Map<String, ScoreSummary.ExecutorLoads> byExec = new LinkedHashMap<>();
    for (String line : metrics.loads()) {
      String[] f = line.split("\t");
      byExec.merge(
          f[0] + "/" + f[2],
          new ScoreSummary.ExecutorLoads(
              f[0], f[1], Long.parseLong(f[2]), 1, Double.parseDouble(f[3]), Long.parseLong(f[4])),
          (a, b) ->
              new ScoreSummary.ExecutorLoads(
                  a.executorId(),
                  a.host(),
                  a.pid(),
                  a.loads() + b.loads(),
                  a.loadSeconds() + b.loadSeconds(),
                  a.bytesReceived() + b.bytesReceived()));
    }
    return new ArrayList<>(byExec.values());
  }

  public static void print(ScoreSummary summary, PrintStream out) {
    ScoreSummary.Corpus s = summary.corpus();
    ScoreSummary.ModelInfo model = s.model();
    out.printf(
        "olmo-ppl: scored %s documents (%s), %s tokens in %s s (%s tokens/s)%n",
        Numbers.count(s.documents()),
        Numbers.statuses(s.status()),
        Numbers.count(s.tokens()),
        Numbers.seconds(s.seconds()),
        Numbers.rate(s.tokensPerSecond() == null ? 0.0 : s.tokensPerSecond()));
    out.printf("  perplexity      %s%n", Numbers.perplexity(s.perplexity()));
    out.printf("  bits_per_byte   %s%n", Numbers.bitsPerByte(s.bitsPerByte()));
    out.printf("  word_perplexity %s%n", Numbers.perplexity(s.wordPerplexity()));
    out.printf(
        "  model           %s (%s, %s)%n",
        model.fingerprint(),
        model.layout(),
        model.tied()
            ? "tied: one tensor stored as " + String.join(", ", model.tiedGroups().get(0).tensors())
            : "untied");
    if (model.experts() != null) {
      out.printf("  experts         %s%n", model.experts());
    }
    out.printf("  output          %s (summary in _summary.json)%n", s.output());
  }

  /** The column of {@link #totals} where the documents per {@link Status} start. */
  static final int STATUS_FROM = 6;

  /** The column of {@link #totals} where the caller's further aggregations start. */
  public static final int MORE_FROM = STATUS_FROM + Status.values().length;

  /**
   * Counts for the summary, from the scored rows, in one Spark job (each job of a local run costs
   * its planning and scheduling, 0.1 to 0.5 s): documents; the ok documents' tokens, NLL, bytes,
   * words and windows; then the documents of each {@link Status}, in declaration order (from {@link
   * #STATUS_FROM}); then {@code more} (from {@link #MORE_FROM}).
   *
   * @param more further aggregations over the same rows, computed in the same job
   */
  public static Row totals(Dataset<Row> scored, String textColumn, Column... more) {
    var ok = col(ScoreColumns.STATUS).equalTo(lit(Status.OK.id()));
    List<Column> rest =
        new ArrayList<>(
            List.of(
                sum(when(ok, col(ScoreColumns.TOKENS)).otherwise(0)),
                sum(when(ok, col(ScoreColumns.NLL)).otherwise(0.0)),
                sum(when(ok, octet_length(Columns.named(textColumn))).otherwise(0)),
                // words as lm-eval counts them: len(re.split(r"\s+", doc)), Unicode whitespace,
                // empty edge fields kept
                sum(when(ok, size(split(Columns.named(textColumn), "(?U)\\s+", -1))).otherwise(0)),
                sum(when(ok, col(ScoreColumns.WINDOWS)).otherwise(0))));
    for (Status st : Status.values()) {
      rest.add(sum(when(col(ScoreColumns.STATUS).equalTo(lit(st.id())), 1L).otherwise(0L)));
    }
    rest.addAll(List.of(more));
    return scored.agg(count(lit(1)), rest.toArray(Column[]::new)).first();
  }

  /**
   * @param totals the row of {@link #totals}, whose columns from {@code first} on count the
   *     documents of each {@link Status}
   * @return documents per status present, by status: from {@code totals}, or counted again where
   *     rows carry a status outside {@link Status} (rows carried from another version's output)
   */
  static Map<String, Long> statusCounts(Dataset<Row> scored, Row totals, int first, long docs) {
    Map<String, Long> m = new java.util.TreeMap<>();
    long counted = 0;
    for (Status st : Status.values()) {
      long n = totals.getLong(first + st.ordinal());
      counted += n;
      if (n > 0) {
        m.put(st.id(), n);
      }
    }
    return counted == docs ? new LinkedHashMap<>(m) : statusCounts(scored);
  }

  /**
   * @return documents per status
   */
  public static Map<String, Long> statusCounts(Dataset<Row> scored) {
    Map<String, Long> m = new LinkedHashMap<>();
    for (Row r :
        scored.groupBy(ScoreColumns.STATUS).count().orderBy(ScoreColumns.STATUS).collectAsList()) {
      m.put(r.getString(0), r.getLong(1));
    }
    return m;
  }

  /**
   * @param t0 start, {@code tCount} input count start, {@code tScore} scoring start, {@code
   *     tSummary} summary start ({@link System#nanoTime()})
   * @return the seconds per phase and the documents, tokens of ok documents and bytes per second of
   *     scoring and writing
   */
  public static Timings timings(
      ScoreSummary.Corpus corpus, long t0, long tCount, long tScore, long tSummary) {
    long now = System.nanoTime();
    double scoreSeconds = (tSummary - tScore) / 1e9;
    return new Timings(
        new ScoreSummary.Timings(
            (tCount - t0) / 1e9,
            (tScore - tCount) / 1e9,
            scoreSeconds,
            (now - tSummary) / 1e9,
            (now - t0) / 1e9),
        new ScoreSummary.Throughput(
            perSecond(corpus.documents(), scoreSeconds),
            perSecond(corpus.tokens(), scoreSeconds),
            perSecond(corpus.bytes(), scoreSeconds)));
  }

  /** The timings and the throughput of one run. */
  public record Timings(ScoreSummary.Timings timings, ScoreSummary.Throughput throughput) {}

  private static Double perSecond(long count, double seconds) {
    return seconds > 0 ? count / seconds : null;
  }
}
