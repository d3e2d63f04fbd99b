package io.olmoppl.job.report;

import static org.apache.spark.sql.functions.array;
import static org.apache.spark.sql.functions.coalesce;
import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.count;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.log10;
import static org.apache.spark.sql.functions.max;
import static org.apache.spark.sql.functions.min;
import static org.apache.spark.sql.functions.octet_length;
import static org.apache.spark.sql.functions.percentile_approx;
import static org.apache.spark.sql.functions.sum;
import static org.apache.spark.sql.functions.when;

import io.olmoppl.job.cli.Args;
import io.olmoppl.job.cli.JobException;
import io.olmoppl.job.cli.UsageException;
import io.olmoppl.scoring.Perplexity;
import io.olmoppl.scoring.Status;
import io.olmoppl.spark.ScoreColumns;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.StructType;

/**
 * What {@code score} does besides scoring: progress, buckets, per-group aggregates, filtering, and
 * the distribution statistics of the report. Parsed from the command line with the other options.
 *
 * @param buckets {@code --buckets} (null without)
 * @param cutoffsFile {@code --cutoffs} (null without)
 * @param groupBy {@code --group-by} column (null without)
 * @param keepBuckets {@code --keep-bucket} names (empty without)
 * @param maxPerplexity {@code --max-perplexity} (null without)
 * @param rejected {@code --rejected} path (null without)
 * @param cutoffsFromOtherModel {@code --cutoffs-from-other-model}: apply {@code --cutoffs} of a run
 *     with another {@code ppl_model} stamp (recorded)
 * @param examples {@code --examples}: example documents per list in the report (0: none)
 */
public record Analysis(
    Progress.Mode progress,
    double progressInterval,
    Buckets.Spec buckets,
    String cutoffsFile,
    String groupBy,
    List<String> keepBuckets,
    Double maxPerplexity,
    String rejected,
    boolean cutoffsFromOtherModel,
    int examples) {
  public static final Set<String> OPTIONS =
      Set.of(
          "progress",
          "progress-interval",
          "buckets",
          "cutoffs",
          "group-by",
          "keep-bucket",
          "max-perplexity",
          "rejected",
          "examples");
  public static final String HELP =
      String.join(
          "\n",
          "  --progress auto|terminal|log|off  progress line on stderr (default auto: redrawn on a terminal, else logged)",
          "  --progress-interval S  seconds between logged progress lines (default 30)",
          "  --buckets SPEC         add ppl_bucket by perplexity percentile, e.g. head:30,middle:60,tail",
          "  --cutoffs FILE         add ppl_bucket with the cut-offs of an earlier run (its _summary.json)",
          "  --cutoffs-from-other-model  apply --cutoffs although its ppl_model (model, window, ...) differs",
          "  --group-by COLUMN      per-group documents, tokens, perplexity, bits per byte in the summary and report",
          "  --keep-bucket B[,B]    write only rows in these buckets to --output (needs --buckets or --cutoffs)",
          "  --max-perplexity X     write only rows with perplexity <= X to --output",
          "  --rejected PATH        write the rows not kept (including rows without a score) there",
          Examples.HELP);

  /** Bins of the log10(perplexity) histogram. */
  static final int BINS = 40;

  /** At most this many groups are listed (the largest by documents). */
  static final int MAX_GROUPS = 1000;

  static final double[] PERCENTILES = {1, 5, 10, 25, 50, 75, 90, 95, 99};

  public static Analysis from(Args a) {
    double interval = number(a, "progress-interval", Progress.INTERVAL_DEFAULT);
    if (!(interval > 0)) {
      throw new UsageException(
          "--progress-interval must be a positive number of seconds, not " + interval);
    }
    String b = a.get("buckets");
    String cut = a.get("cutoffs");
    if (b != null && cut != null) {
      throw new UsageException(
          "give --buckets (cut-offs computed from this data) or --cutoffs (cut-offs of an"
              + " earlier run), not both");
    }
    List<String> keep =
        a.get("keep-bucket") == null
            ? List.of()
            : Arrays.stream(a.get("keep-bucket").split(",")).map(String::trim).toList();
    Buckets.Spec spec = b == null ? null : Buckets.Spec.parse(b);
    if (!keep.isEmpty()) {
      if (spec == null && cut == null) {
        throw new UsageException(
            "--keep-bucket needs buckets: add --buckets (e.g. head:30,middle:60,tail) or"
                + " --cutoffs FILE");
      }
      for (String k : keep) {
        if (spec != null && !spec.names().contains(k)) {
          throw new UsageException(
              "--keep-bucket " + k + " is not one of the buckets " + spec.names());
        }
      }
    }
    Double maxPpl = a.get("max-perplexity") == null ? null : number(a, "max-perplexity", 0);
    if (maxPpl != null && !(maxPpl > 0)) {
      throw new UsageException("--max-perplexity must be a positive number, not " + maxPpl);
    }
    String rejected = a.get("rejected");
    if (rejected != null && keep.isEmpty() && maxPpl == null) {
      throw new UsageException("--rejected needs a filter: --keep-bucket or --max-perplexity");
    }
    if (rejected != null && rejected.equals(a.get("output"))) {
      throw new UsageException("--rejected must differ from --output");
    }
    return new Analysis(
        Progress.Mode.parse(a.get("progress", "auto")),
        interval,
        spec,
        cut,
        a.get("group-by"),
        keep,
        maxPpl,
        rejected,
        otherModel(a, cut),
        Examples.perList(a));
  }

  private static boolean otherModel(Args a, String cutoffs) {
    boolean other = a.flag("cutoffs-from-other-model");
    if (other && cutoffs == null) {
      throw new UsageException(
          "--cutoffs-from-other-model applies to --cutoffs FILE; pass --cutoffs too, or drop it");
    }
    return other;
  }

  private static double number(Args a, String name, double def) {
    String v = a.get(name);
    if (v == null) {
      return def;
    }
    try {
      double d = Double.parseDouble(v.trim());
      if (!Double.isFinite(d)) {
        throw new NumberFormatException();
      }
      return d;
    } catch (NumberFormatException e) {
      throw new UsageException("--" + name + " must be a number, not '" + v + "'");
    }
  }

  /** Defaults: progress auto, nothing else. */
  public static Analysis none() {
    return new Analysis(
        Progress.Mode.AUTO,
        Progress.INTERVAL_DEFAULT,
        null,
        null,
        null,
        List.of(),
        null,
        null,
        false,
        Examples.DEFAULT);
  }

  public boolean filters() {
    return !keepBuckets.isEmpty() || maxPerplexity != null;
  }

  /** Checks what can be checked against the input schema, before any work. */
  public void validate(StructType input) {
    if (groupBy != null && !List.of(input.fieldNames()).contains(groupBy)) {
      throw new JobException(
          "--group-by column '"
              + groupBy
              + "' is not in the input. Its columns are: "
              + String.join(", ", input.fieldNames()));
    }
  }

  /** Checks {@code --keep-bucket} against cut-offs read from a file. */
  void validate(Buckets.Cutoffs cutoffs) {
    for (String k : keepBuckets) {
      if (!cutoffs.names().contains(k)) {
        throw new UsageException(
            "--keep-bucket "
                + k
                + " is not one of the buckets "
                + cutoffs.names()
                + " of --cutoffs "
                + cutoffsFile);
      }
    }
  }

  /**
   * @return true for a kept row, false otherwise (never null: a row without a perplexity is
   *     rejected)
   */
  public Column keep() {
    Column k = col(ScoreColumns.PERPLEXITY).isNotNull();
    if (!keepBuckets.isEmpty()) {
      k = k.and(col(Buckets.COLUMN).isin(keepBuckets.toArray()));
    }
    if (maxPerplexity != null) {
      k = k.and(col(ScoreColumns.PERPLEXITY).leq(lit(maxPerplexity)));
    }
    return coalesce(k, lit(false));
  }

  /**
   * @return the summary entry of the filter: its rule and the kept and rejected counts
   */
  ScoreSummary.Filter describeFilter(Dataset<Row> labelled) {
    Row r = labelled.agg(count(lit(1)), sum(when(keep(), 1L).otherwise(0L))).first();
    long all = r.getLong(0);
    long kept = r.isNullAt(1) ? 0 : r.getLong(1);
    return new ScoreSummary.Filter(
        keepBuckets.isEmpty() ? null : keepBuckets,
        maxPerplexity,
        kept,
        all - kept,
        rejected,
        "rows without a perplexity (status other than ok) are rejected; kept + rejected = documents");
  }

  /**
   * @return documents per bucket, in bucket order, plus {@code null} for rows without a bucket
   */
  static Map<String, Long> bucketCounts(Dataset<Row> labelled, Buckets.Cutoffs cutoffs) {
    Map<String, Long> m = new LinkedHashMap<>();
    cutoffs.names().forEach(n -> m.put(n, 0L));
    for (Row r : labelled.groupBy(Buckets.COLUMN).count().collectAsList()) {
      m.put(r.isNullAt(0) ? "none" : r.getString(0), r.getLong(1));
    }
    return m;
  }

  /**
   * Per-group aggregates (Paloma-style): documents, ok documents, tokens, nll, bytes, perplexity =
   * exp(Σnll/Σtokens) and bits per byte = Σnll/(Σbytes ln 2) over the group's ok documents; the
   * largest {@link #MAX_GROUPS} groups by documents.
   */
  static List<ScoreSummary.Group> groups(Dataset<Row> scored, String column, String textColumn) {
    Column ok = col(ScoreColumns.STATUS).equalTo(lit(Status.OK.id()));
    List<Row> rows =
        scored
            .groupBy(Columns.named(column).cast("string").as("group"))
            .agg(
                count(lit(1)).as("documents"),
                sum(when(ok, 1L).otherwise(0L)),
                sum(when(ok, col(ScoreColumns.TOKENS)).otherwise(0L)),
                sum(when(ok, col(ScoreColumns.NLL)).otherwise(0.0)),
                sum(when(ok, octet_length(Columns.named(textColumn))).otherwise(0L)))
            .orderBy(col("documents").desc(), col("group").asc_nulls_first())
            .limit(MAX_GROUPS)
            .collectAsList();
    List<ScoreSummary.Group> out = new ArrayList<>();
    for (Row r : rows) {
      long tokens = r.getLong(3);
      double nll = r.getDouble(4);
      long bytes = r.getLong(5);
      out.add(
          new ScoreSummary.Group(
              r.isNullAt(0) ? null : r.getString(0),
              r.getLong(1),
              r.getLong(2),
              tokens,
              nll,
              bytes,
              Perplexity.perplexity(nll, tokens),
              Perplexity.bitsPerByte(nll, tokens, bytes)));
    }
    return out;
  }

  /** The percentiles and the histogram of document perplexity. */
  record Distribution(Map<String, Double> percentiles, ScoreSummary.Histogram histogram) {}

  /** An ok document with a perplexity: the documents of the distribution. */
  private static Column okWithPerplexity() {
    return col(ScoreColumns.STATUS)
        .equalTo(lit(Status.OK.id()))
        .and(col(ScoreColumns.PERPLEXITY).isNotNull());
  }

  /**
   * The distribution's first pass, as aggregations over all scored rows that count the ok
   * documents' perplexity only: the minimum and maximum of log10(perplexity) and the approximate
   * percentiles (approxQuantile's algorithm at accuracy 1 / {@link Buckets#RELATIVE_ERROR}). The
   * caller computes them with its own aggregations in one Spark job ({@link Summary#totals}) and
   * passes the row to {@link #summarize}.
   */
  public static Column[] distributionAggregates() {
    Column ok = okWithPerplexity();
    Column lg = when(ok, log10(col(ScoreColumns.PERPLEXITY))); // null elsewhere: not aggregated
    Column[] probs = Arrays.stream(PERCENTILES).mapToObj(p -> lit(p / 100)).toArray(Column[]::new);
    return new Column[] {
      min(lg),
      max(lg),
      percentile_approx(
          when(ok, col(ScoreColumns.PERPLEXITY)),
          array(probs),
          lit((int) Math.round(1 / Buckets.RELATIVE_ERROR)))
    };
  }

  /**
   * Distribution of the document perplexity of ok documents: approximate percentiles (relative
   * error {@link Buckets#RELATIVE_ERROR}) and a histogram of log10(perplexity) in {@link #BINS}
   * equal bins.
   *
   * @param stats a row with the values of {@link #distributionAggregates} from column {@code from}
   */
  static Distribution distribution(Dataset<Row> scored, Row stats, int from) {
    Dataset<Row> ok = scored.filter(okWithPerplexity());
    Column lg = log10(col(ScoreColumns.PERPLEXITY));
    List<Double> q = stats.isNullAt(from + 2) ? null : stats.getList(from + 2);
    Map<String, Double> pct = new LinkedHashMap<>();
    for (int i = 0; i < PERCENTILES.length; i++) {
      pct.put(String.format(Locale.ROOT, "p%d", (int) PERCENTILES[i]), q == null ? null : q.get(i));
    }
    long[] counts = new long[BINS];
    if (!stats.isNullAt(from)) {
      double lo = stats.getDouble(from);
      double hi = stats.getDouble(from + 1);
      double width = hi > lo ? (hi - lo) / BINS : 1.0 / BINS;
      if (hi <= lo) {
        lo -= 0.5; // one value: centre it
      }
      // counted per partition and merged on the driver (RDD.aggregate): one job, no shuffle, and
      // no planning of an aggregation with a column per bin
      double start = lo;
      double w = width;
      counts =
          ok.select(lg)
              .javaRDD()
              .aggregate(
                  new long[BINS],
                  (c, r) -> {
                    c[bin(r.getDouble(0), start, w)]++;
                    return c;
                  },
                  (a, b) -> {
                    Arrays.setAll(a, i -> a[i] + b[i]);
                    return a;
                  });
      return new Distribution(
          pct, new ScoreSummary.Histogram("log10(perplexity)", lo, width, counts));
    }
    return new Distribution(
        pct, new ScoreSummary.Histogram("log10(perplexity)", null, null, counts));
  }

  /**
   * @return the histogram bin of {@code log10p}: equal bins of {@code width} from {@code lo}, the
   *     maximum in the last
   */
  static int bin(double log10p, double lo, double width) {
    return (int) Math.max(0, Math.min(BINS - 1, Math.floor((log10p - lo) / width)));
  }

  /**
   * @param stats a row with the values of {@link #distributionAggregates} from column {@code from}
   * @param idColumn the row key shown with example documents (null: none)
   * @param corpus the corpus part of the summary (its counts and micro-averages)
   * @return the summary entries of the analysis: ok documents, byte perplexity, percentiles and
   *     histogram, buckets, filter counts, groups, example documents
   */
  public ScoreSummary.Findings summarize(
      Dataset<Row> labelled,
      Row stats,
      int from,
      String textColumn,
      String idColumn,
      Buckets.Cutoffs cutoffs,
      ScoreSummary.Corpus corpus) {
    Distribution d = distribution(labelled, stats, from);
    ScoreSummary.BucketSummary buckets =
        cutoffs == null ? null : cutoffs.describe(bucketCounts(labelled, cutoffs));
    ScoreSummary.Groups groups =
        groupBy == null
            ? null
            : new ScoreSummary.Groups(
                groupBy,
                labelled.select(Columns.named(groupBy).cast("string")).distinct().count(),
                groups(labelled, groupBy, textColumn));
    return new ScoreSummary.Findings(
        corpus.status().getOrDefault(Status.OK.id(), 0L),
        corpus.bitsPerByte() == null ? null : Math.pow(2, corpus.bitsPerByte()),
        d.percentiles(),
        Buckets.RELATIVE_ERROR,
        d.histogram(),
        buckets,
        filters() ? describeFilter(labelled) : null,
        groups,
        examples == 0
            ? null
            : Examples.pick(labelled, textColumn, idColumn, groupBy, cutoffs, examples));
  }

  /**
   * Checks the outputs and reads the cut-offs file before any work.
   *
   * @return the cut-offs of {@code --cutoffs}, or null without
   */
  public Buckets.Cutoffs prepare(org.apache.hadoop.conf.Configuration hadoop)
      throws java.io.IOException {
    if (rejected != null) {
      org.apache.hadoop.fs.Path p = new org.apache.hadoop.fs.Path(rejected);
      if (p.getFileSystem(hadoop).exists(p)) {
        throw new JobException(
            "--rejected "
                + rejected
                + " already exists. olmo-ppl never overwrites results;"
                + " choose a new path or remove the old one.");
      }
    }
    if (cutoffsFile == null) {
      return null;
    }
    org.apache.hadoop.fs.Path f = new org.apache.hadoop.fs.Path(cutoffsFile);
    Buckets.Cutoffs c = Buckets.read(f.getFileSystem(hadoop), f);
    validate(c);
    return c;
  }
}
