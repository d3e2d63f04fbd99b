package io.olmoppl.job.report;

import java.util.List;

/**
 * The "Example documents" section of the report ({@link Report}): per list, each document's
 * perplexity, tokens, bucket, id and group, and its text's first characters, escaped.
 */
final class ReportExamples {
  private ReportExamples() {}

  static void append(StringBuilder b, ScoreSummary.Examples ex) {
    if (ex == null) {
      return;
    }
    b.append("<h2 id=\"examples\">Example documents</h2>\n<p>Documents with status ok, ")
        .append(ex.perList())
        .append(" per list; each shows the first ")
        .append(Numbers.count(ex.excerptChars()))
        .append(" characters of its text (&hellip; marks a longer one).</p>\n");
    list(b, "Lowest perplexity", ex.lowest());
    list(b, "Highest perplexity", ex.highest());
    for (ScoreSummary.Sample s : ex.samples()) {
      list(
          b,
          s.bucket() == null
              ? "A sample of the run"
              : "Bucket " + Report.esc(s.bucket()) + ": a sample",
          s.documents());
    }
    for (ScoreSummary.CutoffExamples c : ex.cutoffs()) {
      b.append("<h3>Next to the cut-off between ")
          .append(Report.esc(c.bucket()))
          .append(" and ")
          .append(Report.esc(c.nextBucket()))
          .append(" (perplexity ")
          .append(Numbers.perplexity(c.maxPerplexity()))
          .append(")</h3>\n");
      documents(b, c.below());
      b.append("<p class=\"cut\">&#9472;&#9472; cut-off: perplexity &le; ")
          .append(Numbers.perplexity(c.maxPerplexity()))
          .append(" is ")
          .append(Report.esc(c.bucket()))
          .append(", above is ")
          .append(Report.esc(c.nextBucket()))
          .append(" &#9472;&#9472;</p>\n");
      documents(b, c.above());
    }
  }

  private static void list(StringBuilder b, String title, List<ScoreSummary.Example> docs) {
    b.append("<h3>").append(title).append("</h3>\n");
    documents(b, docs);
  }

  private static void documents(StringBuilder b, List<ScoreSummary.Example> docs) {
    if (docs.isEmpty()) {
      b.append("<p><i>none</i></p>\n");
      return;
    }
    for (ScoreSummary.Example e : docs) {
      b.append("<div class=\"ex\"><div class=\"meta\">perplexity <b>")
          .append(Numbers.perplexity(e.perplexity()))
          .append("</b> &middot; ")
          .append(Numbers.count(e.tokens()))
          .append(e.tokens() == 1 ? " token" : " tokens");
      if (e.bucket() != null) {
        b.append(" &middot; bucket ").append(Report.esc(e.bucket()));
      }
      if (e.id() != null) {
        b.append(" &middot; id ").append(Report.esc(e.id()));
      }
      if (e.group() != null) {
        b.append(" &middot; group ").append(Report.esc(e.group()));
      }
      b.append("</div><div class=\"text\">")
          .append(Report.esc(e.text()))
          .append(e.truncated() ? "&hellip;" : "")
          .append("</div></div>\n");
    }
  }
}
