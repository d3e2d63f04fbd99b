package io.olmoppl.job.report;

import static org.apache.spark.sql.functions.char_length;
import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.substring;
import static org.apache.spark.sql.functions.xxhash64;

import io.olmoppl.job.cli.Args;
import io.olmoppl.job.cli.UsageException;
import io.olmoppl.scoring.Status;
import io.olmoppl.spark.ScoreColumns;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;

/**
 * Picks the example documents of the report ({@code --examples N}) with Spark: each list is a
 * distributed top-N (an ordered {@code limit}; per bucket, of the bucket's rows), all of them in
 * one union, so the driver receives at most a few dozen rows with the text already cut to {@link
 * #EXCERPT_CHARS} characters. Ties are broken by a hash of the text, so the choice is the same on
 * every run of the same data.
 */
final class Examples {
  /** Characters of text kept per example. */
  static final int EXCERPT_CHARS = 300;

  static final int DEFAULT = 3;

  static final String HELP =
      "  --examples N           example documents per list in the report: lowest, highest, per"
          + " bucket,\n                         next to each cut-off (default "
          + DEFAULT
          + "; 0: none)";

  private static final String KIND = "__kind";
  private static final String HASH = "__hash";

  private Examples() {}

  /**
   * @return {@code --examples}: documents per list, 0 to 100 (default {@link #DEFAULT})
   */
  static int perList(Args a) {
    Integer n = a.integer("examples");
    if (n != null && (n < 0 || n > 100)) {
      throw new UsageException("--examples must be 0 to 100 documents per list, not " + n);
    }
    return n == null ? DEFAULT : n;
  }

  /**
   * @param labelled the scored rows, with {@link Buckets#COLUMN} when {@code cutoffs} is given
   * @param idColumn shown with each example (null: none)
   * @param groupBy shown with each example (null: none)
   * @param n documents per list (at least 1)
   */
  static ScoreSummary.Examples pick(
      Dataset<Row> labelled,
      String textColumn,
      String idColumn,
      String groupBy,
      Buckets.Cutoffs cutoffs,
      int n) {
    Column ppl = col(ScoreColumns.PERPLEXITY);
    Dataset<Row> ok =
        labelled
            .filter(col(ScoreColumns.STATUS).equalTo(lit(Status.OK.id())).and(ppl.isNotNull()))
            .select(
                ppl,
                col(ScoreColumns.TOKENS).cast("long").as("tokens"),
                (cutoffs == null ? lit(null) : col(Buckets.COLUMN)).cast("string").as("bucket"),
                (idColumn == null ? lit(null) : col(quote(idColumn))).cast("string").as("id"),
                (groupBy == null ? lit(null) : col(quote(groupBy))).cast("string").as("group"),
                substring(col(quote(textColumn)), 1, EXCERPT_CHARS).as("text"),
                char_length(col(quote(textColumn))).gt(EXCERPT_CHARS).as("truncated"),
                xxhash64(col(quote(textColumn))).as(HASH));
    List<Dataset<Row>> parts = new ArrayList<>();
    parts.add(tag(ok.orderBy(ppl.asc(), col(HASH)).limit(n), "lowest"));
    parts.add(tag(ok.orderBy(ppl.desc(), col(HASH)).limit(n), "highest"));
    if (cutoffs == null) {
      parts.add(tag(ok.orderBy(col(HASH), ppl).limit(n), "sample"));
    } else {
      for (String b : cutoffs.names()) { // a top-N per bucket: no shuffle of the rows
        parts.add(
            tag(
                ok.filter(col("bucket").equalTo(lit(b))).orderBy(col(HASH), ppl.asc()).limit(n),
                "sample"));
      }
      double[] max = cutoffs.maxPerplexity();
      for (int i = 0; i < max.length; i++) {
        if (Double.isNaN(max[i])) {
          continue;
        }
        parts.add(
            tag(ok.filter(ppl.leq(max[i])).orderBy(ppl.desc(), col(HASH)).limit(n), "below" + i));
        parts.add(
            tag(ok.filter(ppl.gt(max[i])).orderBy(ppl.asc(), col(HASH)).limit(n), "above" + i));
      }
    }
    Dataset<Row> all = parts.get(0);
    for (Dataset<Row> p : parts.subList(1, parts.size())) {
      all = all.union(p);
    }
    Map<String, List<ScoreSummary.Example>> byKind = new LinkedHashMap<>();
    for (Row r : all.collectAsList()) {
      byKind
          .computeIfAbsent(r.getAs(KIND), k -> new ArrayList<>())
          .add(
              new ScoreSummary.Example(
                  r.getAs("id"),
                  r.getAs("group"),
                  r.<Double>getAs(ScoreColumns.PERPLEXITY),
                  r.<Long>getAs("tokens"),
                  r.getAs("bucket"),
                  r.getAs("text"),
                  Boolean.TRUE.equals(r.getAs("truncated"))));
    }
    Comparator<ScoreSummary.Example> up =
        Comparator.comparingDouble(ScoreSummary.Example::perplexity);
    List<ScoreSummary.Sample> samples = new ArrayList<>();
    List<ScoreSummary.CutoffExamples> near = new ArrayList<>();
    List<ScoreSummary.Example> sampled = byKind.getOrDefault("sample", List.of());
    if (cutoffs == null) {
      samples.add(new ScoreSummary.Sample(null, sorted(sampled, up)));
    } else {
      List<String> names = cutoffs.names();
      for (String b : names) {
        samples.add(
            new ScoreSummary.Sample(
                b, sorted(sampled.stream().filter(e -> b.equals(e.bucket())).toList(), up)));
      }
      double[] max = cutoffs.maxPerplexity();
      for (int i = 0; i < max.length; i++) {
        if (!Double.isNaN(max[i])) {
          near.add(
              new ScoreSummary.CutoffExamples(
                  names.get(i),
                  names.get(i + 1),
                  max[i],
                  sorted(byKind.getOrDefault("below" + i, List.of()), up),
                  sorted(byKind.getOrDefault("above" + i, List.of()), up)));
        }
      }
    }
    return new ScoreSummary.Examples(
        n,
        EXCERPT_CHARS,
        sorted(byKind.getOrDefault("lowest", List.of()), up),
        sorted(byKind.getOrDefault("highest", List.of()), up.reversed()),
        samples,
        near);
  }

  private static Dataset<Row> tag(Dataset<Row> d, String kind) {
    return d.withColumn(KIND, lit(kind));
  }

  private static List<ScoreSummary.Example> sorted(
      List<ScoreSummary.Example> l, Comparator<ScoreSummary.Example> c) {
    return l.stream().sorted(c).toList();
  }

  private static String quote(String column) {
    return "`" + column.replace("`", "``") + "`";
  }
}
