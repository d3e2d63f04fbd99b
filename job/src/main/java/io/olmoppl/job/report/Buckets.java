package io.olmoppl.job.report;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.when;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import io.olmoppl.job.cli.JobException;
import io.olmoppl.job.cli.UsageException;
import io.olmoppl.scoring.Status;
import io.olmoppl.spark.ScoreColumns;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;

/**
 * Perplexity buckets ({@code --buckets head:30,middle:60,tail}): each named bucket but the last
 * holds the documents up to a percentile of document perplexity; the cut-offs are computed over the
 * scored {@code ok} documents with Spark's {@code approxQuantile} at relative error {@link
 * #RELATIVE_ERROR}, or read from an earlier run's summary ({@code --cutoffs FILE}), which must
 * record the same {@code ppl_model} stamp as this run's (or be applied with {@code
 * --cutoffs-from-other-model}, recorded). Documents without a perplexity get no bucket (null).
 */
public final class Buckets {
  /**
   * approxQuantile's relative error: a cut-off's rank is within 0.1% of the row count of the exact
   * percentile.
   */
  static final double RELATIVE_ERROR = 0.001;

  public static final String COLUMN = "ppl_bucket";

  /**
   * Bucket names in order; the percentile upper bounds of all but the last (0..100, increasing).
   */
  public record Spec(List<String> names, double[] percentiles) {
    public static Spec parse(String s) {
      List<String> names = new ArrayList<>();
      List<Double> pct = new ArrayList<>();
      String[] parts = s.split(",", -1);
      for (int i = 0; i < parts.length; i++) {
        String p = parts[i].trim();
        int colon = p.indexOf(':');
        String name = colon < 0 ? p : p.substring(0, colon).trim();
        if (!name.matches("[A-Za-z0-9_.-]+")) {
          throw new UsageException(
              "--buckets: bad bucket name '"
                  + name
                  + "' in '"
                  + s
                  + "'. Write"
                  + " NAME:PERCENTILE,...,NAME (e.g. head:30,middle:60,tail); names use letters, digits, _ . -");
        }
        if (names.contains(name)) {
          throw new UsageException(
              "--buckets: bucket '" + name + "' is named twice in '" + s + "'");
        }
        names.add(name);
        boolean last = i == parts.length - 1;
        if (last != (colon < 0)) {
          throw new UsageException(
              "--buckets: every bucket but the last needs an upper percentile (NAME:P) and the"
                  + " last takes the rest (NAME alone), as in head:30,middle:60,tail; got '"
                  + s
                  + "'");
        }
        if (!last) {
          double v;
          try {
            v = Double.parseDouble(p.substring(colon + 1).trim());
          } catch (NumberFormatException e) {
            throw new UsageException(
                "--buckets: '" + p + "' needs a percentile number after the colon");
          }
          if (!(v > 0 && v < 100) || (!pct.isEmpty() && v <= pct.get(pct.size() - 1))) {
            throw new UsageException(
                "--buckets: percentiles must increase strictly within (0, 100); got '" + s + "'");
          }
          pct.add(v);
        }
      }
      if (names.size() < 2) {
        throw new UsageException(
            "--buckets needs at least two buckets, as in head:30,tail; got '" + s + "'");
      }
      return new Spec(names, pct.stream().mapToDouble(Double::doubleValue).toArray());
    }
  }

  /**
   * Cut-offs: bucket {@code i < n-1} holds perplexity ≤ {@code maxPerplexity[i]} (and above the
   * previous one).
   *
   * @param percentiles the percentile of each cut-off (null entries when read from a file without
   *     them)
   * @param source "computed" or the file they were read from
   * @param stamp the {@code ppl_model} stamp of the scores the cut-offs were computed from (null: a
   *     file that records none)
   * @param fromOtherModel applied with {@code --cutoffs-from-other-model} to a run whose stamp
   *     differs
   */
  public record Cutoffs(
      List<String> names,
      double[] maxPerplexity,
      Double[] percentiles,
      String source,
      String stamp,
      boolean fromOtherModel) {
    /**
     * Cut-offs are percentiles of one model's perplexities under one setting; applied to another
     * model's or another window's scores they put documents into the wrong buckets. Checked after
     * the model is opened and before any row is scored.
     *
     * @param runStamp this run's {@code ppl_model} stamp
     * @param allowOther {@code --cutoffs-from-other-model}: apply them anyway, recorded
     * @return these cut-offs, marked {@link #fromOtherModel} when the stamps differ and that is
     *     allowed
     * @throws JobException when the stamps differ and it is not allowed
     */
    public Cutoffs comparableWith(String runStamp, boolean allowOther) {
      if (runStamp.equals(stamp)) {
        return this;
      }
      if (allowOther) {
        return new Cutoffs(names, maxPerplexity, percentiles, source, stamp, true);
      }
      throw new JobException(
          "--cutoffs "
              + source
              + " "
              + mismatch(runStamp)
              + " Perplexities of another model or under other settings are on another scale, so"
              + " these cut-offs would put documents into the wrong buckets. Compute cut-offs"
              + " from this run (--buckets), score with the model and settings of that run, or"
              + " pass --cutoffs-from-other-model to apply them anyway (the summary and report"
              + " then say so).");
    }

    private String mismatch(String runStamp) {
      if (stamp == null) {
        return "records no ppl_model stamp (an older summary, or a bare buckets object), so"
            + " nothing shows that its cut-offs fit this run's scores (ppl_model "
            + runStamp
            + ").";
      }
      String theirs = stamp.split("-")[0];
      String ours = runStamp.split("-")[0];
      if (!theirs.equals(ours)) {
        return "was computed from the scores of another model: its ppl_model is "
            + stamp
            + " (model fingerprint "
            + theirs
            + "), this run's is "
            + runStamp
            + " (model fingerprint "
            + ours
            + ").";
      }
      return "was computed from this model's scores under other settings: its ppl_model is "
          + stamp
          + ", this run's is "
          + runStamp
          + " (after the model fingerprint, the stamp hashes the tying decision, precision,"
          + " prefix token, window and stride).";
    }

    /**
     * @return the warning for cut-offs applied with {@code --cutoffs-from-other-model}, or null
     */
    public String warning(String runStamp) {
      return fromOtherModel
          ? "--cutoffs-from-other-model: applying the cut-offs of "
              + source
              + " (ppl_model "
              + stamp
              + ") to scores with ppl_model "
              + runStamp
              + "; the buckets are not percentiles of this run"
          : null;
    }

    /**
     * @param documents documents per bucket
     * @return the summary entry ({@code --cutoffs} reads it back)
     */
    ScoreSummary.BucketSummary describe(Map<String, Long> documents) {
      List<ScoreSummary.Cutoff> list = new ArrayList<>();
      for (int i = 0; i < names.size(); i++) {
        list.add(
            new ScoreSummary.Cutoff(
                names.get(i),
                i < percentiles.length ? percentiles[i] : Double.valueOf(100),
                i < maxPerplexity.length && !Double.isNaN(maxPerplexity[i])
                    ? maxPerplexity[i]
                    : null));
      }
      return new ScoreSummary.BucketSummary(
          source,
          source.equals("computed") ? RELATIVE_ERROR : null,
          stamp,
          fromOtherModel ? Boolean.TRUE : null,
          list,
          documents);
    }

    /**
     * @return {@code ppl_bucket}: the first bucket whose cut-off is ≥ the perplexity; null without
     *     a perplexity
     */
    public Column label() {
      Column ppl = col(ScoreColumns.PERPLEXITY);
      Column c = when(ppl.isNull(), lit(null).cast("string"));
      for (int i = 0; i < maxPerplexity.length; i++) {
        c = c.when(ppl.leq(lit(maxPerplexity[i])), lit(names.get(i)));
      }
      return c.otherwise(lit(names.get(names.size() - 1)));
    }
  }

  private Buckets() {}

  /**
   * Cut-offs at the spec's percentiles of the perplexity of {@code ok} documents (one pass over the
   * data).
   *
   * @param stamp the run's {@code ppl_model} stamp, recorded with the cut-offs
   */
  public static Cutoffs compute(Dataset<Row> scored, Spec spec, String stamp) {
    double[] probs = new double[spec.percentiles().length];
    for (int i = 0; i < probs.length; i++) {
      probs[i] = spec.percentiles()[i] / 100;
    }
    double[] q =
        scored
            .filter(col(ScoreColumns.STATUS).equalTo(lit(Status.OK.id())))
            .stat()
            .approxQuantile(ScoreColumns.PERPLEXITY, probs, RELATIVE_ERROR);
    double[] max = new double[probs.length];
    for (int i = 0; i < max.length; i++) {
      max[i] = q.length == max.length ? q[i] : Double.NaN; // no ok document: no cut-off, no bucket
    }
    Double[] pct = new Double[probs.length];
    for (int i = 0; i < pct.length; i++) {
      pct[i] = spec.percentiles()[i];
    }
    return new Cutoffs(spec.names(), max, pct, "computed", stamp, false);
  }

  /**
   * Reads cut-offs from an earlier run's {@code _summary.json} (its {@code buckets} entry) or that
   * entry alone.
   */
  static Cutoffs read(FileSystem fs, Path file) throws IOException {
    if (!fs.exists(file)) {
      throw new JobException(
          "--cutoffs "
              + file
              + " does not exist. Pass the _summary.json of a run made with"
              + " --buckets.");
    }
    JsonElement root;
    try (InputStream in = fs.open(file)) {
      root = JsonParser.parseString(new String(in.readAllBytes(), StandardCharsets.UTF_8));
    } catch (JsonParseException e) {
      throw new JobException("--cutoffs " + file + " is not JSON (" + e.getMessage() + ")");
    }
    String how = " Pass the _summary.json of a run made with --buckets, or its \"buckets\" object.";
    if (!root.isJsonObject()) {
      throw new JobException("--cutoffs " + file + " holds no cut-offs." + how);
    }
    JsonObject o = root.getAsJsonObject();
    if (o.has("buckets") && o.get("buckets").isJsonObject()) {
      o = o.getAsJsonObject("buckets");
    }
    if (!o.has("cutoffs") || !o.get("cutoffs").isJsonArray()) {
      throw new JobException("--cutoffs " + file + " has no \"cutoffs\" list." + how);
    }
    JsonArray a = o.getAsJsonArray("cutoffs");
    List<String> names = new ArrayList<>();
    double[] max = new double[Math.max(0, a.size() - 1)];
    Double[] pct = new Double[max.length];
    try {
      for (int i = 0; i < a.size(); i++) {
        JsonObject c = a.get(i).getAsJsonObject();
        names.add(c.get("bucket").getAsString());
        if (i < max.length) {
          JsonElement m = c.get("max_perplexity");
          if (m == null || m.isJsonNull() || !Double.isFinite(m.getAsDouble())) {
            throw new JobException(
                "--cutoffs "
                    + file
                    + ": bucket '"
                    + names.get(i)
                    + "' has no finite"
                    + " max_perplexity (was its run without any ok document?)."
                    + how);
          }
          max[i] = m.getAsDouble();
          pct[i] =
              c.has("percentile") && !c.get("percentile").isJsonNull()
                  ? c.get("percentile").getAsDouble()
                  : null;
          if (i > 0 && max[i] < max[i - 1]) {
            throw new JobException(
                "--cutoffs "
                    + file
                    + ": max_perplexity must not decrease from one bucket to"
                    + " the next");
          }
        }
      }
    } catch (IllegalStateException
        | UnsupportedOperationException
        | NullPointerException
        | NumberFormatException e) {
      throw new JobException(
          "--cutoffs "
              + file
              + ": every cut-off needs \"bucket\" (a name) and, but the last,"
              + " \"max_perplexity\" (a number)."
              + how);
    }
    if (names.size() < 2 || new HashSet<>(names).size() != names.size()) {
      throw new JobException(
          "--cutoffs " + file + " must name at least two distinct buckets." + how);
    }
    JsonElement stamp = o.get("stamp");
    return new Cutoffs(
        names,
        max,
        pct,
        file.toString(),
        stamp != null && stamp.isJsonPrimitive() ? stamp.getAsString() : null,
        false);
  }
}
