package io.olmoppl.job.report;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import javax.imageio.ImageIO;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.StandardXYBarPainter;
import org.jfree.chart.renderer.xy.XYBarRenderer;
import org.jfree.data.xy.XYIntervalSeries;
import org.jfree.data.xy.XYIntervalSeriesCollection;

/**
 * The run report next to the output: {@code _report.html} (one self-contained file: the histogram
 * is embedded as a base64 PNG, no script, no external resource) and {@code _perplexity_hist.png},
 * both drawn from the summary.
 */
public final class Report {
  public static final String HTML = "_report.html";
  public static final String PNG = "_perplexity_hist.png";

  private Report() {}

  /** Writes the PNG and the HTML report into {@code dir}. */
  public static void write(FileSystem fs, Path dir, ScoreSummary summary) throws IOException {
    byte[] png = histogramPng(summary);
    try (OutputStream o = fs.create(new Path(dir, PNG), false)) {
      o.write(png);
    }
    try (OutputStream o = fs.create(new Path(dir, HTML), false)) {
      o.write(html(summary, png).getBytes(StandardCharsets.UTF_8));
    }
  }

  /**
   * @return the histogram of log10(document perplexity) as a PNG, drawn headless with JFreeChart
   */
  static byte[] histogramPng(ScoreSummary summary) throws IOException {
    System.setProperty("java.awt.headless", "true");
    ScoreSummary.Histogram h = summary.analysis().histogram();
    XYIntervalSeries series = new XYIntervalSeries("documents");
    if (h.min() != null) {
      double lo = h.min();
      double w = h.binWidth();
      long[] counts = h.counts();
      for (int i = 0; i < counts.length; i++) {
        double x0 = lo + i * w;
        series.add(x0 + w / 2, x0, x0 + w, counts[i], 0, counts[i]);
      }
    }
    XYIntervalSeriesCollection data = new XYIntervalSeriesCollection();
    data.addSeries(series);
    JFreeChart chart =
        ChartFactory.createXYBarChart(
            "Document perplexity (" + summary.analysis().documentsOk() + " ok documents)",
            "log10(perplexity)",
            false,
            "documents",
            data,
            PlotOrientation.VERTICAL,
            false,
            false,
            false);
    chart.setBackgroundPaint(Color.WHITE);
    XYPlot plot = chart.getXYPlot();
    plot.setBackgroundPaint(Color.WHITE);
    plot.setDomainGridlinePaint(Color.LIGHT_GRAY);
    plot.setRangeGridlinePaint(Color.LIGHT_GRAY);
    XYBarRenderer r = (XYBarRenderer) plot.getRenderer();
    r.setBarPainter(new StandardXYBarPainter());
    r.setShadowVisible(false);
    r.setSeriesPaint(0, new Color(0x3b6ea5));
    r.setDrawBarOutline(true);
    r.setSeriesOutlinePaint(0, Color.WHITE);
    r.setSeriesOutlineStroke(0, new BasicStroke(0.5f));
    BufferedImage img = chart.createBufferedImage(800, 400);
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    ImageIO.write(img, "png", bytes);
    return bytes.toByteArray();
  }

  /**
   * @return the report page for {@code summary} with {@code png} embedded
   */
  static String html(ScoreSummary summary, byte[] png) {
    ScoreSummary.Corpus s = summary.corpus();
    ScoreSummary.Findings a = summary.analysis();
    StringBuilder b = new StringBuilder();
    b.append(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                + "<meta name=\"viewport\" content=\"width=device-width\"><title>olmo-ppl report: ")
        .append(esc(s.output()))
        .append("</title>\n<style>\n")
        .append(
            "body{font-family:system-ui,sans-serif;margin:2em auto;padding:0 1em;max-width:60em;"
                + "color:#222;overflow-wrap:anywhere}")
        .append(
            "h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em;border-bottom:1px solid #ccc}")
        .append("h3{font-size:1em;margin:1.2em 0 .4em}")
        .append("table{border-collapse:collapse;margin:.5em 0;max-width:100%}")
        .append("td,th{padding:.2em .8em;text-align:left;vertical-align:top;")
        .append("border-bottom:1px solid #eee}td.n,th.n{text-align:right;")
        .append("font-variant-numeric:tabular-nums;white-space:nowrap}")
        .append("td.l{white-space:pre-line}")
        .append("img{max-width:100%;height:auto;border:1px solid #ddd}code{font-size:.95em}")
        .append(".ex{margin:.4em 0 .8em;padding:.3em .6em;border-left:3px solid #3b6ea5;")
        .append("background:#f7f9fc}.ex .meta{font-size:.9em;color:#555}")
        .append(".ex .text{white-space:pre-wrap;font-family:ui-monospace,monospace;")
        .append("font-size:.85em;margin-top:.2em}.cut{color:#a33;font-size:.9em}")
        .append("\n</style></head><body>\n");
    b.append("<h1>olmo-ppl report</h1>\n<p><code>")
        .append(esc(s.input()))
        .append("</code> &rarr; <code>")
        .append(esc(s.output()))
        .append("</code></p>\n");
    b.append("<h2>Corpus</h2>\n<table>\n");
    row(b, "documents", Numbers.count(s.documents()));
    row(b, "status", Numbers.statuses(s.status()));
    row(b, "tokens (ok documents)", Numbers.count(s.tokens()));
    row(b, "perplexity", Numbers.perplexity(s.perplexity()));
    row(b, "bits per byte", Numbers.bitsPerByte(s.bitsPerByte()));
    row(b, "word perplexity", Numbers.perplexity(s.wordPerplexity()));
    row(b, "byte perplexity", Numbers.perplexity(a.bytePerplexity()));
    b.append(
        "</table>\n<p>Micro-averages over ok documents: perplexity = exp(&Sigma;nll / &Sigma;tokens), bits per"
            + " byte = &Sigma;nll / (&Sigma;bytes &middot; ln 2), byte perplexity = 2<sup>bits per byte</sup>.</p>\n");
    b.append(
            "<h2>Document perplexity</h2>\n<img alt=\"histogram of log10(document perplexity)\" src=\"data:image/png;")
        .append("base64,")
        .append(Base64.getEncoder().encodeToString(png))
        .append("\">\n<p>Also written as <a href=\"")
        .append(PNG)
        .append("\">")
        .append(PNG)
        .append("</a>.</p>\n");
    Map<String, Double> pct = a.percentiles();
    if (pct != null) {
      // one row per percentile: fits any width
      b.append("<table><tr><th>percentile</th><th class=\"n\">document perplexity</th></tr>\n");
      pct.forEach(
          (k, v) ->
              b.append("<tr><td>")
                  .append(esc(k))
                  .append("</td><td class=\"n\">")
                  .append(Numbers.perplexity(v))
                  .append("</td></tr>\n"));
      b.append("</table>\n<p>Approximate percentiles (Spark approxQuantile, relative rank error ")
          .append(num(a.percentilesRelativeError()))
          .append(").</p>\n");
    }
    ScoreSummary.BucketSummary buckets = a.buckets();
    if (buckets != null) {
      Map<String, Long> counts = buckets.documents();
      b.append("<h2>Buckets</h2>\n<p>Cut-offs: ")
          .append(esc(buckets.source()))
          .append(buckets.stamp() == null ? "" : " (ppl_model " + esc(buckets.stamp()) + ")")
          .append("</p>\n");
      if (Boolean.TRUE.equals(buckets.fromOtherModel())) {
        b.append(
            "<p><b>Applied with --cutoffs-from-other-model:</b> these cut-offs come from scores"
                + " with another ppl_model than this run's; the buckets are not percentiles of"
                + " this run.</p>\n");
      }
      b.append("<table>")
          .append(
              "<tr><th>bucket</th><th class=\"n\">up to percentile</th><th class=\"n\">max perplexity</th>")
          .append("<th class=\"n\">documents</th></tr>\n");
      for (ScoreSummary.Cutoff c : buckets.cutoffs()) {
        b.append("<tr><td>")
            .append(esc(c.bucket()))
            .append("</td><td class=\"n\">")
            .append(num(c.percentile()))
            .append("</td><td class=\"n\">")
            .append(c.maxPerplexity() == null ? "no cap" : Numbers.perplexity(c.maxPerplexity()))
            .append("</td><td class=\"n\">")
            .append(Numbers.count(counts == null ? null : counts.get(c.bucket())))
            .append("</td></tr>\n");
      }
      if (counts != null && counts.containsKey("none")) {
        b.append("<tr><td><i>no bucket</i> (no perplexity)</td><td></td><td></td><td class=\"n\">")
            .append(Numbers.count(counts.get("none")))
            .append("</td></tr>\n");
      }
      b.append("</table>\n");
    }
    ScoreSummary.Filter filter = a.filter();
    if (filter != null) {
      b.append("<h2>Filter</h2>\n<table>\n");
      row(
          b,
          "keep buckets",
          filter.keepBuckets() == null ? "any" : String.join(", ", filter.keepBuckets()));
      row(b, "max perplexity", Numbers.perplexity(filter.maxPerplexity()));
      row(b, "kept (written to the output)", Numbers.count(filter.kept()));
      row(b, "rejected", Numbers.count(filter.rejected()));
      row(
          b,
          "rejected rows written to",
          filter.rejectedPath() == null ? "nowhere" : filter.rejectedPath());
      b.append("</table>\n<p>").append(esc(filter.note())).append("</p>\n");
    }
    ScoreSummary.Groups groups = a.groups();
    if (groups != null) {
      b.append("<h2>By ")
          .append(esc(groups.column()))
          .append("</h2>\n<table><tr><th>group</th>")
          .append(
              "<th class=\"n\">documents</th><th class=\"n\">ok</th><th class=\"n\">tokens</th>")
          .append("<th class=\"n\">perplexity</th><th class=\"n\">bits per byte</th></tr>\n");
      for (ScoreSummary.Group g : groups.rows()) {
        b.append("<tr><td>").append(g.group() == null ? "<i>null</i>" : esc(g.group()));
        for (String v :
            new String[] {
              Numbers.count(g.documents()),
              Numbers.count(g.ok()),
              Numbers.count(g.tokens()),
              Numbers.perplexity(g.perplexity()),
              Numbers.bitsPerByte(g.bitsPerByte())
            }) {
          b.append("</td><td class=\"n\">").append(v);
        }
        b.append("</td></tr>\n");
      }
      b.append("</table>\n");
      if (groups.total() != groups.rows().size()) {
        b.append("<p>The ")
            .append(Numbers.count(groups.rows().size()))
            .append(" largest of ")
            .append(Numbers.count(groups.total()))
            .append(" groups.</p>\n");
      }
    }
    ReportExamples.append(b, a.examples());
    ScoreSummary.ModelInfo model = s.model();
    Map<String, Object> opts = s.options();
    b.append("<h2>Model and options</h2>\n<table>\n");
    if (model != null) {
      row(b, "fingerprint", model.fingerprint());
      row(b, "path", model.path());
      row(b, "layout", model.layout());
      row(b, "parameters", Numbers.count(model.parameters()));
      if (model.experts() != null) {
        row(b, "experts", model.experts().toString());
      }
      row(b, "tied groups", Numbers.tiedGroups(model.tiedGroups()));
    }
    if (opts != null) {
      for (String k :
          List.of(
              "precision",
              "device",
              "window",
              "stride",
              "bos",
              "prefix_token",
              "batch_tokens",
              "text_column")) {
        Object v = opts.get(k);
        row(b, k, v instanceof Number n ? Numbers.count(n) : v == null ? "n/a" : v.toString());
      }
    }
    b.append("</table>\n<h2>Timings</h2>\n<table>\n");
    ScoreSummary.Timings t = summary.timings();
    if (t != null) {
      row(b, "setup seconds", Numbers.seconds(t.setupSeconds()));
      row(b, "input count seconds", Numbers.seconds(t.inputCountSeconds()));
      row(b, "score and write seconds", Numbers.seconds(t.scoreAndWriteSeconds()));
      row(b, "summary seconds", Numbers.seconds(t.summarySeconds()));
      row(b, "total seconds", Numbers.seconds(t.totalSeconds()));
    }
    ScoreSummary.Throughput tp = summary.throughput();
    if (tp != null) {
      row(b, "documents per second (scoring and writing)", Numbers.rate(tp.documentsPerSecond()));
      row(b, "tokens per second (scoring and writing)", Numbers.rate(tp.tokensPerSecond()));
      row(b, "bytes per second (scoring and writing)", Numbers.rate(tp.bytesPerSecond()));
    }
    row(b, "tokens per second (whole run)", Numbers.rate(s.tokensPerSecond()));
    row(b, "model loads", Numbers.count(s.modelLoads()));
    b.append("</table>\n</body></html>\n");
    return b.toString();
  }

  /** A row of a two-column table: the label and a formatted value (escaped here). */
  private static void row(StringBuilder b, String k, String v) {
    b.append("<tr><th>")
        .append(esc(k))
        .append("</th><td class=\"l\">")
        .append(esc(v))
        .append("</td></tr>\n");
  }

  /**
   * @return a number with grouping (integers) or 6 significant digits, anything else escaped; n/a
   *     for null (for values of no fixed quantity: percentiles, the relative error)
   */
  static String num(Object v) {
    if (v == null) {
      return "n/a";
    }
    if (v instanceof Long || v instanceof Integer) {
      return String.format(Locale.ROOT, "%,d", ((Number) v).longValue());
    }
    if (v instanceof Double d) {
      if (Double.isFinite(d) && d == Math.rint(d) && Math.abs(d) < 1e15) {
        return String.format(Locale.ROOT, "%,.0f", d);
      }
      // 6 significant digits without trailing zeros: 0.001, 5.52534, 3.03682e+06
      return String.format(Locale.ROOT, "%.6g", d)
          .replaceAll("(\\.\\d*?)0+(e|$)", "$1$2")
          .replace(".e", "e")
          .replaceAll("\\.$", "");
    }
    return esc(v);
  }

  static String esc(Object v) {
    return String.valueOf(v)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("\"", "&quot;");
  }
}
